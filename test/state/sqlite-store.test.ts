import assert from 'node:assert/strict';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
  it('prunes a backlog of 200,000 expired events in statements of at most 2,000 rows, yielding between them', async (t) => {
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
