/** The pruning loop: bounded steps until none is left, with other work running between them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPruner } from '../../src/state/pruner.ts';
import type { DeviceStore } from '../../src/state/store.ts';

function fakeStore(steps: number[]): { store: DeviceStore; calls: { before: Date; keep: number }[] } {
  const calls: { before: Date; keep: number }[] = [];
  const store = {
    prune(before: Date, keep: number) {
      calls.push({ before, keep });
      return Promise.resolve(steps.shift() ?? 0);
    },
  } as unknown as DeviceStore;
  return { store, calls };
}

describe('the pruner', () => {
  it('repeats the store’s bounded prune steps until one finds nothing, with a turn of the event loop between', async () => {
    const { store, calls } = fakeStore([2000, 2000, 700]);
    let turns = 0;
    const counting = setInterval(() => undefined, 1000);
    const tick = () => {
      turns += 1;
      if (calls.length < 4) setImmediate(tick);
    };
    setImmediate(tick);
    const now = Date.parse('2026-11-30T00:00:00.000Z');
    const removed = await createPruner(store, { retentionDays: 30, maxEventsPerDevice: 1000 }, () => now).runOnce();
    clearInterval(counting);
    assert.equal(removed, 4700);
    assert.equal(calls.length, 4, 'three steps with work, one that found none');
    assert.ok(turns >= 3, `other work ran between the steps (${turns} turns)`);
    assert.deepEqual(calls[0], { before: new Date('2026-10-31T00:00:00.000Z'), keep: 1000 });
  });

  it('runs one pass at a time, and stops after the current step when stopped', async () => {
    const { store, calls } = fakeStore([10, 10, 10, 10, 10]);
    const pruner = createPruner(store, { retentionDays: 1, maxEventsPerDevice: 10 });
    const first = pruner.runOnce();
    assert.equal(pruner.runOnce(), first, 'a second call joins the pass in progress');
    pruner.stop();
    assert.equal(await first, 10);
    assert.equal(calls.length, 1);
  });
});
