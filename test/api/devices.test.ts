import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { testApp, waitFor } from '../helpers.ts';

const TOKEN = 'device-api-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAC = '52:54:00:12:34:56';
const DATA = {
  'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n',
  'profiles/rescue.yaml': 'boot: {kernel: /assets/rescue/vmlinuz}\n',
  'groups/default.yaml': 'profile: main\n',
};

async function setup(t: TestContext, token: string | null = TOKEN) {
  const built = await testApp(t, { data: DATA, assets: { 'main/vmlinuz': 'main', 'rescue/vmlinuz': 'rescue' }, overrides: token ? [{ key: 'adminToken', value: token, source: 'test' }] : [] });
  await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=efi`, remoteAddress: '10.0.0.7' });
  await built.app.inject({ url: '/ipxe?mac=52:54:00:00:00:02' });
  return built;
}

interface OpenApi {
  paths: Record<string, Record<string, unknown>>;
}

describe('admin API authentication', () => {
  it('answers 401 without the token or with a wrong one, on every route', async (t) => {
    const { app } = await setup(t);
    const doc = (await app.inject({ url: '/api/v1/openapi.json', headers: AUTH })).json<OpenApi>();
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })));
    // The walk covers the whole API: devices, events, assets.
    for (const expected of ['GET /api/v1/devices', 'GET /api/v1/devices/{id}', 'PUT /api/v1/devices/{id}/next-boot', 'DELETE /api/v1/devices/{id}/next-boot', 'DELETE /api/v1/devices/{id}', 'GET /api/v1/events/stream', 'PUT /api/v1/assets/{*}', 'DELETE /api/v1/assets/{*}']) {
      assert.ok(routes.some((r) => `${r.method} ${r.path}` === expected), `${expected} is documented`);
    }
    routes.push({ method: 'GET', path: '/api/v1/openapi.json' });
    const admin = routes.filter((r) => r.path !== '/api/v1/devices/{id}/state');
    for (const { method, path } of admin) {
      const url = path.replace('{id}', MAC).replace('{*}', 'x.bin');
      for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: TOKEN }]) {
        const res = await app.inject({ method: method as 'GET', url, headers, ...(method === 'PUT' ? { payload: '{}' } : {}) });
        assert.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`);
      }
    }
  });

  it('is off, and says so, when no token is configured', async (t) => {
    const { app } = await setup(t, null);
    const res = await app.inject({ url: '/api/v1/devices' });
    assert.equal(res.statusCode, 403);
    assert.match(res.json<{ error: string }>().error, /admin API is off/);
  });
});

describe('devices', () => {
  it('lists with filters and shows one with its events', async (t) => {
    const { app } = await setup(t);
    const all = (await app.inject({ url: '/api/v1/devices', headers: AUTH })).json<{ devices: { id: string; stage: string }[] }>();
    assert.deepEqual(all.devices.map((d) => d.id), ['52:54:00:00:00:02', MAC]);
    assert.equal((await app.inject({ url: '/api/v1/devices?profile=rescue', headers: AUTH })).json<{ devices: unknown[] }>().devices.length, 0);
    assert.equal((await app.inject({ url: '/api/v1/devices?stage=script', headers: AUTH })).json<{ devices: unknown[] }>().devices.length, 2);
    assert.equal((await app.inject({ url: '/api/v1/devices?stage=bogus', headers: AUTH })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/devices?seenSince=2999-01-01T00:00:00Z', headers: AUTH })).json<{ devices: unknown[] }>().devices.length, 0);

    const shown = await app.inject({ url: `/api/v1/devices/${MAC.replace(/:/g, '-')}?events=5`, headers: AUTH });
    assert.equal(shown.statusCode, 200);
    const body = shown.json<{ device: { id: string; lastIp: string; identity: { platform: string } }; events: { detail: { type: string; action: string } }[] }>();
    assert.equal(body.device.id, MAC);
    assert.equal(body.device.lastIp, '10.0.0.7');
    assert.equal(body.device.identity.platform, 'efi');
    assert.equal(body.events[0]?.detail.type, 'script');
    assert.equal(body.events[0]?.detail.action, 'boot');
    assert.equal((await app.inject({ url: '/api/v1/devices/52:54:00:99:99:99', headers: AUTH })).statusCode, 404);
    assert.equal((await app.inject({ url: '/api/v1/devices/not-a-mac', headers: AUTH })).statusCode, 400);
  });

  it('set and clear the next boot, with checks', async (t) => {
    const { app } = await setup(t);
    const put = (payload: object, id = MAC) => app.inject({ method: 'PUT', url: `/api/v1/devices/${id}/next-boot`, headers: AUTH, payload });
    assert.equal((await put({ action: 'once' })).statusCode, 400);
    assert.match((await put({ action: 'once', profile: 'nope' })).body, /unknown profile nope/);
    assert.equal((await put({ action: 'local', profile: 'rescue' })).statusCode, 400);
    assert.equal((await put({ action: 'reboot' })).statusCode, 400);
    assert.equal((await put({ action: 'hold', extra: 1 })).statusCode, 400);
    assert.equal((await put({ action: 'hold' }, '52:54:00:99:99:99')).statusCode, 404);

    const once = await put({ action: 'once', profile: 'rescue', reason: 'memtest' });
    assert.equal(once.statusCode, 200);
    assert.deepEqual(once.json<{ device: { nextBoot: { action: string; profile: string; reason: string } } }>().device.nextBoot.profile, 'rescue');
    assert.match((await app.inject({ url: `/ipxe?mac=${MAC}` })).body, /kernel \S*\/assets\/rescue\/vmlinuz/);

    const cleared = await app.inject({ method: 'DELETE', url: `/api/v1/devices/${MAC}/next-boot`, headers: AUTH });
    assert.equal(cleared.json<{ device: { nextBoot: null } }>().device.nextBoot, null);
    assert.match((await app.inject({ url: `/ipxe?mac=${MAC}` })).body, /kernel \S*\/assets\/main\/vmlinuz/);

    const pinned = await put({ action: 'profile', profile: 'rescue' });
    assert.equal(pinned.json<{ device: { nextBoot: { action: string } } }>().device.nextBoot.action, 'profile');
    assert.match((await app.inject({ url: `/ipxe?mac=${MAC}` })).body, /rescue\/vmlinuz/);
    const normal = await put({ action: 'profile' });
    assert.equal(normal.json<{ device: { nextBoot: null } }>().device.nextBoot, null);

    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/devices/${MAC}`, headers: AUTH })).statusCode, 204);
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/devices/${MAC}`, headers: AUTH })).statusCode, 404);
  });
});

describe('event stream', () => {
  it('delivers events live as Server-Sent Events, filtered by device', async (t) => {
    const { app } = await setup(t);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const controller = new AbortController();
    t.after(() => controller.abort());
    const res = await request(`${base}/api/v1/events/stream?device=${MAC}`, { headers: AUTH, signal: controller.signal });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    let text = '';
    res.body.on('data', (chunk: Buffer) => (text += chunk.toString()));
    res.body.on('error', () => undefined);
    await app.inject({ url: '/ipxe?mac=52:54:00:00:00:02' });
    await app.inject({ url: `/ipxe?mac=${MAC}` });
    await waitFor(() => text.includes('event: script'), 5000, 'a script event');
    const data = /event: script\ndata: (.*)\n/.exec(text)?.[1];
    const event = JSON.parse(data ?? '{}') as { deviceId: string; detail: { type: string } };
    assert.equal(event.deviceId, MAC);
    assert.doesNotMatch(text, /52:54:00:00:00:02/, 'other devices are filtered out');
  });
});
