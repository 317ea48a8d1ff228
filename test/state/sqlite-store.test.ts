import assert from 'node:assert/strict';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { createPruner } from '../../src/state/pruner.ts';
import { PRUNE_BATCH, SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { makeTree } from '../helpers.ts';
import { storeSuite } from './store-suite.ts';

storeSuite('SQLite', async (t, limits) => {
  const dir = await makeTree(t, {});
  const store = new SqliteDeviceStore(path.join(dir, 'state', 'bootdepot.db'), limits ? { limits } : {});
  await store.migrate();
  t.after(() => store.close());
  return store;
});

describe('SQLite device store pruning', () => {
  it('prunes a backlog of 200,000 expired events in statements of at most 1,000 rows, yielding between them', async (t) => {
    const dir = await makeTree(t, {});
    const store = new SqliteDeviceStore(path.join(dir, 'bootdepot.db'));
    await store.migrate();
    t.after(() => store.close());
    const old = new Date('2026-01-01T00:00:00.000Z');
    // 400 devices with 500 events each: within the per-device cap, so only retention removes them.
    for (let batch = 0; batch < 40; batch++) {
      await store.recordEvents(
        Array.from({ length: 5000 }, (_, i) => {
          const device = `52:54:00:00:${batch.toString(16).padStart(2, '0')}:${(i % 10).toString(16).padStart(2, '0')}`;
          return { deviceId: device, at: old, detail: { type: 'beacon' as const, ip: '10.0.0.1' } };
        }),
      );
    }
    assert.equal(store.counts().events, 200_000);
    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 1);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const removed = await createPruner(store, { retentionDays: 1, maxEventsPerDevice: 1000 }).runOnce();
    delay.disable();
    clearInterval(ticker);
    t.diagnostic(`pruned ${removed} rows in ${store.pruneStats.statements} statements; longest event-loop delay ${(delay.max / 1e6).toFixed(1)} ms`);
    assert.equal(store.counts().events, 0);
    assert.equal(store.counts().devices, 0, 'their devices expired with them');
    assert.ok(store.pruneStats.maxRows <= PRUNE_BATCH, `largest statement deleted ${store.pruneStats.maxRows} rows`);
    assert.ok(store.pruneStats.statements >= 200_000 / PRUNE_BATCH, `${store.pruneStats.statements} statements`);
    assert.ok(turns > 0, 'timers ran while it pruned');
  });
});

describe('SQLite device store upgrade', () => {
  it('a store written before the limits keeps its booted and steered devices, and trims a device past the cap on its next write', async (t) => {
    const dir = await makeTree(t, {});
    const file = path.join(dir, 'bootdepot.db');
    // Schema version 1 as it was shipped, with three devices: one booted long ago and asking
    // again (stage script), one with a next boot, one that only ever asked for a script.
    const db = new DatabaseSync(file);
    db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
      INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00.000Z');
      CREATE TABLE devices (id TEXT PRIMARY KEY, data TEXT NOT NULL, stage TEXT, last_profile TEXT, last_seen TEXT NOT NULL, last_ip TEXT);
      CREATE INDEX devices_last_ip ON devices (last_ip, last_seen);
      CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, boot_id TEXT, at TEXT NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL);
      CREATE INDEX events_device ON events (device_id, id);
      CREATE INDEX events_at ON events (at);
      CREATE TABLE boots (id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
      CREATE INDEX boots_created ON boots (created_at);`);
    const now = new Date().toISOString();
    const device = (id: string, fields: object) => JSON.stringify({ id, firstSeen: now, lastSeen: now, bootCount: 1, stage: 'script', lastAction: 'boot', lastProfile: 'p', lastGroup: null, lastIp: '10.0.0.1', lastBootId: 'b', identity: {}, nextBoot: null, lastReport: null, problem: null, ...fields });
    const insertDevice = db.prepare('INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)');
    insertDevice.run('52:54:00:00:00:01', device('52:54:00:00:00:01', {}), 'script', 'p', '2026-01-01T00:00:00.000Z', '10.0.0.1');
    insertDevice.run('52:54:00:00:00:02', device('52:54:00:00:00:02', { nextBoot: { action: 'local', reason: 'installed', setAt: now } }), 'script', 'p', '2026-01-01T00:00:01.000Z', '10.0.0.2');
    insertDevice.run('52:54:00:00:00:03', device('52:54:00:00:00:03', {}), 'script', 'p', now, '10.0.0.3');
    const insertEvent = db.prepare("INSERT INTO events (device_id, boot_id, at, type, detail) VALUES (?, 'b', ?, ?, ?)");
    insertEvent.run('52:54:00:00:00:01', '2026-01-01T00:00:00.000Z', 'beacon', JSON.stringify({ type: 'beacon', ip: '10.0.0.1' }));
    for (let i = 0; i < 1200; i++) insertEvent.run('52:54:00:00:00:03', now, 'config', JSON.stringify({ type: 'config', what: 'metadata', status: 200, ip: '10.0.0.3' }));
    db.close();

    const store = new SqliteDeviceStore(file, { limits: { maxUnknownDevices: 1, maxEventsPerDevice: 1000 } });
    await store.migrate();
    t.after(() => store.close());
    await store.recordEvents([{ deviceId: '52:54:00:00:00:03', at: new Date(), detail: { type: 'report', state: 'running', ip: '10.0.0.3', via: 'events' } }]);
    assert.equal((await store.listEvents('52:54:00:00:00:03', 5000)).length, 1000, 'trimmed to the cap on its next write');
    await store.recordEvents([{ deviceId: '52:54:00:00:00:04', at: new Date(), detail: { type: 'script', ip: '10.0.0.4', userAgent: 'iPXE', identity: {}, action: 'wait', reason: 'r' } }]);
    await store.recordEvents([{ deviceId: '52:54:00:00:00:05', at: new Date(), detail: { type: 'script', ip: '10.0.0.5', userAgent: 'iPXE', identity: {}, action: 'wait', reason: 'r' } }]);
    await createPruner(store, { retentionDays: 3650, maxEventsPerDevice: 1000 }).runOnce();
    assert.deepEqual(
      (await store.listDevices()).map((d) => d.id),
      ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03', '52:54:00:00:00:05'],
      'the booted (a beacon before the upgrade, a report after), the steered and the newest unknown device stay',
    );
  });
});
