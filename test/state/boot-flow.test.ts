/** Boot state through the HTTP routes: a whole boot, installOnce, once, hold, reports, a dead store. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { DeviceStore } from '../../src/state/store.ts';
import { captureLogger, testApp } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const DATA = {
  'profiles/installer.yaml': 'linuxkit: {name: inst}\ninstallOnce: true\n',
  'profiles/rescue.yaml': 'linuxkit: {name: rescue}\n',
  'profiles/plain.yaml': 'boot: {kernel: /assets/plain/vmlinuz, initrd: [/assets/plain/initrd.img]}\n',
  'groups/mine.yaml': `profile: installer\nselector: {mac: "${MAC}"}\n`,
  'groups/default.yaml': 'profile: plain\n',
};
const ASSETS = {
  'linuxkit/inst-kernel': 'K'.repeat(1000),
  'linuxkit/inst-initrd.img': 'I'.repeat(2000),
  'linuxkit/inst-cmdline': 'console=ttyS0',
  'linuxkit/rescue-kernel': 'k',
  'linuxkit/rescue-initrd.img': 'i',
  'plain/vmlinuz': 'v',
  'plain/initrd.img': 'r',
};

async function setup(t: TestContext, store?: DeviceStore) {
  const { logger, lines } = captureLogger();
  const built = await testApp(t, { data: DATA, assets: ASSETS, logger, ...(store ? { store } : {}) });
  return { ...built, lines, store: built.store as DeviceStore };
}

/** The /b/<boot>/... URLs a script contains, as paths. */
function bootUrls(script: string): { assets: string[]; beacon: string | undefined } {
  const base = 'http://h:1';
  const kernelParams = /set base-url (\S+)/.exec(script)?.[1];
  const assets = [...script.matchAll(/\$\{base-url\}\/(\S+)/g)].map((m) => `${kernelParams}/${m[1]}`.replace(base, ''));
  const beacon = /imgfetch --name bootdepot-beacon (\S+)/.exec(script)?.[1]?.replace(base, '');
  return { assets: [...new Set(assets)], beacon };
}

describe('a whole boot', () => {
  it('is recorded stage by stage, and installOnce then boots the local disk', async (t) => {
    const { app, store } = await setup(t);
    const script = await app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios`, headers: { host: 'h:1', 'user-agent': 'iPXE/1.21.1' } });
    assert.equal(script.statusCode, 200);
    const { assets, beacon } = bootUrls(script.body);
    assert.equal(assets.length, 2);
    for (const url of assets) assert.match(url, /^\/b\/[0-9a-f]{32}\/assets\/linuxkit\/inst-(kernel|initrd\.img)$/);
    assert.ok(beacon);
    assert.equal((await store.getDevice(MAC))?.stage, 'script');

    for (const url of assets) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200);
    }
    assert.equal((await store.getDevice(MAC))?.stage, 'initrd');
    assert.equal((await app.inject({ url: beacon })).statusCode, 200);
    assert.equal((await store.getDevice(MAC))?.stage, 'booting');

    const running = await app.inject({ method: 'POST', url: `/events?mac=${MAC.replace(/:/g, '-')}`, payload: { state: 'running', code: 1000, message: 'installing' } });
    assert.equal(running.statusCode, 200, running.body);
    const done = await app.inject({ method: 'POST', url: `/api/v1/devices/${MAC}/state`, headers: { 'content-type': 'text/plain' }, payload: '{"state":"succeeded","code":1001}' });
    assert.equal(done.statusCode, 200, done.body);

    const device = await store.getDevice(MAC);
    assert.equal(device?.stage, 'succeeded');
    assert.equal(device?.bootCount, 1);
    assert.equal(device?.lastProfile, 'installer');
    assert.equal(device?.nextBoot?.action, 'local');
    assert.match(device?.nextBoot?.reason ?? '', /profile installer has installOnce and the device reported succeeded/);

    const history = (await store.listEvents(MAC, 50)).reverse();
    assert.deepEqual(
      history.map((e) => (e.detail.type === 'download' ? `download:${e.detail.role}:${e.detail.phase}` : e.detail.type === 'report' ? `report:${e.detail.state}` : e.detail.type)),
      ['script', 'download:kernel:started', 'download:kernel:completed', 'download:initrd:started', 'download:initrd:completed', 'beacon', 'report:running', 'report:succeeded', 'next-boot'],
    );
    const completed = history.find((e) => e.detail.type === 'download' && e.detail.phase === 'completed' && e.detail.role === 'initrd');
    assert.equal(completed?.detail.type === 'download' && completed.detail.bytes, 2000);

    // Always-PXE: the machine asks again and boots its disk instead of reinstalling.
    const again = await app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios`, headers: { host: 'h:1' } });
    assert.match(again.body, /^#!ipxe\n# bootdepot: local disk for 52:54:00:12:34:56: next boot set to local: profile installer has installOnce/);
    assert.match(again.body, /\nsanboot --no-describe --drive 0x80 \|\| goto bootdepot-local-failed\n:bootdepot-local-failed\n.*\nexit\n$/);
    const efi = await app.inject({ url: `/ipxe?mac=${MAC}&platform=efi`, headers: { host: 'h:1' } });
    assert.match(efi.body, /\nexit \|\| goto bootdepot-local-failed\n/);
    const after = await store.getDevice(MAC);
    assert.equal(after?.bootCount, 3);
    assert.equal(after?.lastAction, 'local');
    const script2 = (await store.listEvents(MAC, 1))[0];
    assert.equal(script2?.detail.type === 'script' && script2.detail.action, 'local');
  });
});

describe('next boot', () => {
  it('once: boots the profile until its boot starts, then returns to normal', async (t) => {
    const { app, store } = await setup(t);
    await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    await store.setNextBoot(MAC, { action: 'once', profile: 'rescue', reason: 'debug', setAt: new Date().toISOString() }, 'api');
    const first = await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.match(first.body, /LinuxKit rescue/);
    // A retry before the boot starts (e.g. a failed download) still gets the one-time profile.
    const retry = await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.match(retry.body, /LinuxKit rescue/);
    const beacon = bootUrls(retry.body).beacon;
    assert.equal((await app.inject({ url: beacon })).statusCode, 200);
    assert.equal((await store.getDevice(MAC))?.nextBoot, null);
    const normal = await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.match(normal.body, /LinuxKit inst/);
  });

  it('hold: the machine waits and keeps asking until released', async (t) => {
    const { app, store } = await setup(t);
    await app.inject({ url: `/ipxe?mac=${MAC}` });
    await store.setNextBoot(MAC, { action: 'hold', reason: 'disk swap in progress', setAt: new Date().toISOString() }, 'api');
    const held = await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.match(held.body, /\necho bootdepot: held by the operator: next boot set to hold: disk swap in progress \(52:54:00:12:34:56\)\n/);
    assert.match(held.body, /\nchain --autofree http:\/\/h:1\/ipxe\?mac=52:54:00:12:34:56 \|\| goto bootdepot-wait\n/);
    await store.setNextBoot(MAC, null, 'api');
    assert.match((await app.inject({ url: `/ipxe?mac=${MAC}` })).body, /LinuxKit inst/);
  });
});

describe('reports from the booted OS', () => {
  it('refuse bad input with a message', async (t) => {
    const { app } = await setup(t);
    await app.inject({ url: `/ipxe?mac=${MAC}` });
    const cases: [string, string, number, RegExp][] = [
      [`/events?mac=${MAC}`, '{"state":', 400, /not valid JSON/],
      [`/events?mac=${MAC}`, '{"state":"exploded"}', 400, /state must be equal to one of the allowed values/],
      [`/events?mac=${MAC}`, '{"state":"running","code":2000}', 400, /code must be <= 1099/],
      [`/events?mac=${MAC}`, '{"state":"running","code":999}', 400, /code must be >= 1000/],
      [`/events?mac=${MAC}`, '{"code":1000}', 400, /must have required property 'state'/],
      [`/events?mac=${MAC}`, JSON.stringify({ state: 'running', message: 'x'.repeat(20_000) }), 413, /./],
      [`/events?mac=zz`, '{"state":"running"}', 400, /invalid mac/],
      ['/events?mac=52:54:00:99:99:99', '{"state":"running"}', 404, /unknown device/],
      ['/api/v1/devices/nope/state', '{"state":"running"}', 400, /invalid device id/],
      ['/api/v1/devices/52:54:00:99:99:99/state', '{"state":"running"}', 404, /unknown device/],
    ];
    for (const [url, payload, status, pattern] of cases) {
      const res = await app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, status, `${url} ${payload.slice(0, 40)}: ${res.body}`);
      assert.match(res.body, pattern, url);
    }
  });

  it('find the device by the address it booted from when no MAC is given', async (t) => {
    const { app, store } = await setup(t);
    await app.inject({ url: `/ipxe?mac=${MAC}`, remoteAddress: '10.1.2.3' });
    await app.inject({ url: '/ipxe?mac=52:54:00:00:00:02', remoteAddress: '10.1.2.4' });
    const res = await app.inject({ method: 'POST', url: '/events', payload: { state: 'failed', code: 1050, message: 'disk not found' }, remoteAddress: '10.1.2.3' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ device: string }>().device, MAC);
    assert.deepEqual((await store.getDevice(MAC))?.lastReport?.message, 'disk not found');
    assert.equal((await store.getDevice('52:54:00:00:00:02'))?.lastReport, null);
    const unknown = await app.inject({ method: 'POST', url: '/events', payload: { state: 'failed' }, remoteAddress: '10.9.9.9' });
    assert.equal(unknown.statusCode, 404);
  });

  it('cannot change a next boot: only installOnce profiles turn succeeded into local', async (t) => {
    const { app, store } = await setup(t);
    await app.inject({ url: '/ipxe?mac=52:54:00:00:00:02' });
    const res = await app.inject({ method: 'POST', url: '/events?mac=52:54:00:00:00:02', payload: { state: 'succeeded', nextBoot: { action: 'hold' }, action: 'local' } });
    assert.equal(res.statusCode, 200);
    assert.equal((await store.getDevice('52:54:00:00:00:02'))?.nextBoot, null);
  });
});

/** A store whose every call fails, like a database that went away. */
function deadStore(): DeviceStore {
  const fail = () => Promise.reject(new Error('connection refused'));
  return {
    kind: 'dead',
    migrate: () => Promise.resolve(),
    recordEvents: fail,
    getBootPlan: fail,
    getDevice: fail,
    listDevices: fail,
    listEvents: fail,
    findDeviceByIp: fail,
    setNextBoot: fail,
    deleteDevice: fail,
    prune: fail,
    eventsAfter: fail,
    latestEventId: fail,
    outboxCursor: fail,
    advanceOutboxCursor: fail,
    recordSiteHeartbeat: fail,
    recordSiteEvents: fail,
    listSites: fail,
    listSiteEvents: fail,
    subscribe: () => () => undefined,
    close: () => Promise.resolve(),
  };
}

describe('with the store down', () => {
  it('machines still boot; lost events are logged and counted; reports ask to retry', async (t) => {
    const { app, lines, bootState } = await setup(t, deadStore());
    const script = await app.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.equal(script.statusCode, 200);
    assert.match(script.body, /LinuxKit inst/);
    const kernel = bootUrls(script.body).assets[0];
    assert.equal((await app.inject({ url: kernel })).statusCode, 200, 'downloads are served');
    await bootState?.recorder.flush();
    assert.ok((bootState?.recorder.stats.lost ?? 0) >= 1);
    assert.ok(lines.some((l) => l.msg === 'device store unavailable: events lost (machines keep booting)' && l.level === 50));
    const report = await app.inject({ method: 'POST', url: `/api/v1/devices/${MAC}/state`, payload: { state: 'running' } });
    assert.equal(report.statusCode, 503);
    assert.match(report.json<{ error: string }>().error, /report again later/);
  });

  it('says the store is down once, not on every request', async (t) => {
    const { app, lines } = await setup(t, deadStore());
    for (let i = 0; i < 50; i++) assert.equal((await app.inject({ url: `/ipxe?mac=${MAC}` })).statusCode, 200);
    const said = lines.filter((l) => l.msg === 'device store unavailable: deciding without recorded state');
    assert.equal(said.length, 1);
  });
});
