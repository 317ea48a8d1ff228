/**
 * One decision per boot: everything a machine fetches during a boot (kernel, initrds, Ignition,
 * metadata) is answered from the decision its script was rendered with, and its secrets go only
 * to that boot. Run against a real server over a socket, as a booting machine would reach it.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { captureLogger, makeTree, startTestServer, testApp } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const TOKEN = 'one-decision-token-0123456789';
const DATA = {
  'profiles/install.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: install.ign\n',
  'profiles/rescue.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: rescue.ign\n',
  'ignition/install.ign': '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","passwordHash":"$6$install-secret"}]}}',
  'ignition/rescue.ign': '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"rescue"}]}}',
  'groups/default.yaml': 'profile: install\nmetadata: {role: installer}\n',
};
const ASSETS = {
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz': 'kernel',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe_image.cpio.gz': 'initrd',
};

async function server(t: TestContext, data: Record<string, string> = DATA) {
  const dataDir = await makeTree(t, data);
  const assetsDir = await makeTree(t, ASSETS);
  const cacheDir = await makeTree(t, {});
  const running = await startTestServer(t, { dataDir, assetsDir, cacheDir, adminToken: TOKEN });
  const get = async (path: string) => {
    const res = await fetch(`${running.url}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const setNext = async (action: string, profile?: string) => {
    const res = await fetch(`${running.url}/api/v1/devices/${MAC}/next-boot`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action, ...(profile ? { profile } : {}), reason: 'test' }),
    });
    assert.equal(res.status, 200, await res.text());
  };
  return { running, get, setNext, dataDir };
}

function ignitionUrlOf(script: string): string {
  const url = /ignition\.config\.url=(\S+)/.exec(script)?.[1];
  assert.ok(url, `no ignition.config.url in\n${script}`);
  return url.replace(/^http:\/\/[^/]+/, '');
}

describe('one decision per boot', () => {
  it('serves a pinned profile its own Ignition config, not the group\'s', async (t) => {
    const { get, setNext } = await server(t);
    await get(`/ipxe?mac=${MAC}`);
    await setNext('profile', 'rescue');
    const script = await get(`/ipxe?mac=${MAC}`);
    assert.match(script.body, /profile rescue/);
    const url = ignitionUrlOf(script.body);
    assert.match(url, /^\/b\/[0-9a-f]{32}\/ignition$/);
    const ignition = await get(url);
    assert.equal(ignition.status, 200);
    assert.match(ignition.body, /"name":"rescue"/);
    // matchbox's plain URL asks the same boot.
    const plain = await get(`/ignition?mac=${MAC}`);
    assert.equal(plain.status, 200);
    assert.match(plain.body, /"name":"rescue"/);
  });

  it('serves a once boot its profile\'s Ignition even after the boot has used up the once', async (t) => {
    const { get, setNext } = await server(t);
    await get(`/ipxe?mac=${MAC}`);
    await setNext('once', 'rescue');
    const script = await get(`/ipxe?mac=${MAC}`);
    const beacon = /imgfetch --name bootdepot-beacon (\S+)/.exec(script.body)?.[1]?.replace(/^http:\/\/[^/]+/, '');
    assert.ok(beacon);
    assert.equal((await get(beacon)).status, 200);
    const ignition = await get(ignitionUrlOf(script.body));
    assert.match(ignition.body, /"name":"rescue"/);
    assert.match((await get(`/ignition?mac=${MAC}`)).body, /"name":"rescue"/);
    // The next boot is the group's again.
    assert.match((await get(`/ipxe?mac=${MAC}`)).body, /profile install/);
  });

  it('answers a boot\'s metadata from its decision under /b/<boot>/metadata', async (t) => {
    const { get } = await server(t);
    const script = await get(`/ipxe?mac=${MAC}&rack=r7`);
    const boot = /\/b\/([0-9a-f]{32})\//.exec(script.body)?.[1];
    const metadata = await get(`/b/${boot}/metadata`);
    assert.equal(metadata.status, 200);
    // The request of a boot is its script request: its labels, as a query.
    assert.equal(metadata.body, 'REQUEST_QUERY_MAC=52:54:00:12:34:56\nREQUEST_QUERY_RACK=r7\nREQUEST_RAW_QUERY=mac=52:54:00:12:34:56&rack=r7\nROLE=installer\n');
  });
});

describe('secrets go only to the boot they belong to', () => {
  it('refuses the victim\'s Ignition to another address, and records the attempt on the device', async (t) => {
    const { app } = await testApp(t, { data: DATA, assets: ASSETS });
    await app.inject({ url: `/ipxe?mac=${MAC}`, remoteAddress: '10.0.0.5' });
    for (const path of [`/ignition?mac=${MAC}`, `/metadata?mac=${MAC}`]) {
      const stolen = await app.inject({ url: path, remoteAddress: '10.0.0.66' });
      assert.equal(stolen.statusCode, 403, path);
      assert.match(stolen.body, /asked from 10\.0\.0\.66, but this boot's script went to 10\.0\.0\.5/);
      assert.doesNotMatch(stolen.body, /install-secret/);
    }
    const own = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.0.0.5' });
    assert.equal(own.statusCode, 200);
    assert.match(own.body, /install-secret/);
  });

  it('refuses a plain Ignition request for a machine with no boot in progress', async (t) => {
    const { logger, lines } = captureLogger();
    const { app, store } = await testApp(t, { data: DATA, assets: ASSETS, logger });
    const res = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.0.0.66' });
    assert.equal(res.statusCode, 403);
    assert.ok(lines.some((line) => line.msg === 'ignition refused'));
    assert.equal(await store?.getDevice(MAC), undefined);
  });

  it('refuses unknown and guessed boot ids', async (t) => {
    const { app } = await testApp(t, { data: DATA, assets: ASSETS });
    for (const boot of ['0123456789abcdef', '0'.repeat(32), '../ignition']) {
      const res = await app.inject({ url: `/b/${boot}/ignition` });
      assert.equal(res.statusCode, 404, boot);
    }
  });

  it('serves a public group\'s configs to anyone, decided afresh', async (t) => {
    const { app } = await testApp(t, { data: { ...DATA, 'groups/default.yaml': 'profile: install\npublic: true\n' }, assets: ASSETS });
    const res = await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.0.0.66' });
    assert.equal(res.statusCode, 200);
  });

  it('records each config fetch on the device', async (t) => {
    const { app, store } = await testApp(t, { data: DATA, assets: ASSETS });
    const script = await app.inject({ url: `/ipxe?mac=${MAC}`, remoteAddress: '10.0.0.5' });
    await app.inject({ url: ignitionUrlOf(script.body), remoteAddress: '10.0.0.5' });
    await app.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.0.0.9' });
    const deadline = Date.now() + 5000;
    let configs: { status: number; ip: string }[] = [];
    while (Date.now() < deadline && configs.length < 2) {
      const events = (await store?.listEvents(MAC, 50)) ?? [];
      configs = events.flatMap((event) => (event.detail.type === 'config' ? [{ status: event.detail.status, ip: event.detail.ip }] : []));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(configs.sort((a, b) => a.status - b.status), [{ status: 200, ip: '10.0.0.5' }, { status: 403, ip: '10.0.0.9' }]);
  });
});
