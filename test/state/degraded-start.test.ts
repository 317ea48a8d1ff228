/**
 * A device store that cannot be opened at start (a corrupt bootdepot.db, PostgreSQL down) does
 * not keep machines from booting: the server starts degraded, says so loudly and on /readyz,
 * and opens the store as soon as it can.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/loader.ts';
import { startServer } from '../../src/server.ts';
import type { StoredEvent } from '../../src/state/model.ts';
import { ReconnectingDeviceStore } from '../../src/state/reconnecting-store.ts';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import type { DeviceStore } from '../../src/state/store.ts';
import { captureLogger, makeTree, silentLogger } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const DATA = { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'groups/g.yaml': 'profile: p\n' };

describe('a corrupt bootdepot.db at start', () => {
  it('boots machines from the data, reports degraded on /readyz, and becomes ready once the file is fixed', async (t) => {
    const dataDir = await makeTree(t, DATA);
    const assetsDir = await makeTree(t, { k: 'kernel' });
    const cacheDir = await makeTree(t, {});
    const dbFile = path.join(dataDir, 'bootdepot.db');
    await writeFile(dbFile, 'this is not an SQLite database, whatever its name says\n'.repeat(20));
    const overrides = Object.entries({ host: '127.0.0.1', port: '0', dataDir, assetsDir, cacheDir }).map(([key, value]) => ({ key: key as 'host', value, source: 'test' }));
    const { config } = loadConfig({ cwd: dataDir, overrides });
    assert.ok(config);
    const { logger, lines } = captureLogger();
    const server = await startServer(config, logger, { storeRetry: { initialDelayMs: 50, maxDelayMs: 200 } });
    t.after(() => server.close());

    const script = await fetch(`${server.url}/ipxe?mac=${MAC}`);
    assert.equal(script.status, 200);
    assert.match(await script.text(), /^#!ipxe\n[\s\S]*\nkernel \S+\/assets\/k/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    const degraded = await fetch(`${server.url}/readyz`);
    assert.equal(degraded.status, 503);
    const body = (await degraded.json()) as { status: string; reasons: string[] };
    assert.equal(body.status, 'degraded');
    assert.equal(body.reasons.length, 1);
    assert.match(body.reasons[0] ?? '', /^device store: file is not a database \(retrying, attempt \d+\)$/);

    const loud = lines.find((line) => line.level === 50 && line.msg.startsWith('cannot open the device store'));
    assert.ok(loud, 'an error-level line says the store cannot be opened');
    assert.ok(loud.msg.includes(dbFile), 'with the path');
    assert.match(loud.msg, /file is not a database/);
    assert.match(loud.msg, /Machines still boot, decided from the data alone/);
    assert.match(loud.msg, /move .*bootdepot\.db .*aside/, 'and what to do');

    await rm(dbFile);
    let ready: Response | undefined;
    for (let attempt = 0; attempt < 200; attempt++) {
      ready = await fetch(`${server.url}/readyz`);
      if (ready.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(ready?.status, 200, 'ready within the retry');
    assert.deepEqual(await ready.json(), { status: 'ready' });
    assert.ok(lines.some((line) => line.level === 30 && /device store .* is open: recording boots again/.test(line.msg)));

    // Recording works from now on.
    await fetch(`${server.url}/ipxe?mac=${MAC}`).then((res) => res.text());
    const reader = new SqliteDeviceStore(dbFile, { readOnly: true });
    await reader.migrate();
    t.after(() => reader.close());
    assert.equal((await reader.getDevice(MAC))?.lastProfile, 'p');
  });
});

/** A store that fails to open until `healthy` is set. */
function flakyOpener(events: StoredEvent[] = []) {
  const state = { healthy: false, attempts: 0, store: undefined as DeviceStore | undefined };
  const open = async () => {
    state.attempts += 1;
    if (!state.healthy) throw new Error('connection refused');
    const store = new SqliteDeviceStore(':memory:');
    await store.migrate();
    store.subscribe((event) => events.push(event));
    state.store = store;
    return store;
  };
  return { state, open };
}

describe('the store that opens later', () => {
  it('answers every call with "device store unavailable" (503) until it opens', async (t) => {
    const { open } = flakyOpener();
    const store = await ReconnectingDeviceStore.open({ kind: 'sqlite', location: 'test', remedy: '', open, log: silentLogger, initialDelayMs: 60_000 });
    t.after(() => store.close());
    await assert.rejects(store.getDevice(MAC), (error: Error & { statusCode?: number }) => error.message === 'device store unavailable: connection refused' && error.statusCode === 503);
    await assert.rejects(store.recordEvents([{ deviceId: MAC, at: new Date(), detail: { type: 'beacon', ip: '10.0.0.1' } }]), /device store unavailable/);
    assert.equal(store.unavailableReason, 'connection refused (retrying, attempt 1)');
  });

  it('retries with a doubling delay up to the maximum, then delegates, and keeps live-event listeners', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { state, open } = flakyOpener();
    const store = await ReconnectingDeviceStore.open({ kind: 'sqlite', location: 'test', remedy: '', open, log: silentLogger, initialDelayMs: 1000, maxDelayMs: 4000 });
    t.after(() => store.close());
    const heard: StoredEvent[] = [];
    store.subscribe((event) => heard.push(event));
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    // Delays 1 s, 2 s, 4 s, 4 s: attempts after 1, 3, 7 and 11 s.
    const attemptsAt: number[] = [];
    for (let second = 1; second <= 11; second++) {
      const before = state.attempts;
      t.mock.timers.tick(1000);
      await settle();
      if (state.attempts > before) attemptsAt.push(second);
    }
    assert.deepEqual(attemptsAt, [1, 3, 7, 11]);
    state.healthy = true;
    t.mock.timers.tick(4000);
    await settle();
    await settle();
    assert.equal(store.unavailableReason, undefined);
    await store.recordEvents([{ deviceId: MAC, at: new Date(), detail: { type: 'beacon', ip: '10.0.0.1' } }]);
    assert.equal((await store.getDevice(MAC))?.id, MAC);
    assert.deepEqual(heard.map((event) => event.deviceId), [MAC], 'a listener subscribed before the store opened hears its events');
  });
});
