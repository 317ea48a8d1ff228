/** The forwarder over a real SQLite store and an origin that fails on demand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewEvent } from '../../src/state/model.ts';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import type { OriginClient } from '../../src/site/origin-client.ts';
import { SiteReporter } from '../../src/site/reporter.ts';
import { silentLogger } from '../helpers.ts';

const MAC = '52:54:00:00:00:01';
const at = new Date('2026-12-01T10:00:00.000Z');
const download = (phase: 'started' | 'progress' | 'completed', path = '/assets/k'): NewEvent => ({
  deviceId: MAC,
  bootId: 'b1',
  at,
  detail: { type: 'download', path, role: 'kernel', phase, bytes: 10, status: 200, ip: '10.0.0.9' },
});

function fakeOrigin() {
  const batches: number[][] = [];
  let down = false;
  const client = {
    origin: 'http://origin.invalid',
    post: (suffix: string, payload: unknown) => {
      if (down) return Promise.reject(new Error('cannot reach the origin http://origin.invalid: ECONNREFUSED'));
      if (suffix === '/events') batches.push((payload as { events: { id: number }[] }).events.map((e) => e.id));
      return Promise.resolve({});
    },
  } as unknown as OriginClient;
  return { client, batches, setDown: (value: boolean) => (down = value) };
}

describe('the event forwarder', () => {
  it('sends in batches, skips transient progress, and moves the cursor only after the origin answered', async (t) => {
    const store = new SqliteDeviceStore(':memory:');
    await store.migrate();
    t.after(() => store.close());
    const origin = fakeOrigin();
    const reporter = new SiteReporter({ client: origin.client, store, log: silentLogger, forwardEvents: true, heartbeat: () => ({}) as never, batchSize: 2 });
    const stored = await store.recordEvents([download('started'), download('progress', '/assets/i'), download('started', '/assets/j'), download('completed', '/assets/j')]);
    const ids = stored.map((e) => e.id);
    assert.equal(await reporter.forward(), 3);
    assert.deepEqual(origin.batches, [[ids[0]], [ids[2], ids[3]]], 'the progress event is not sent');
    assert.equal(reporter.behind, 0);

    origin.setDown(true);
    const more = await store.recordEvents([download('completed')]);
    assert.equal(await reporter.forward(), 0);
    assert.equal(reporter.behind, 1);
    assert.match(reporter.status().lastError ?? '', /ECONNREFUSED/);
    assert.equal(await store.outboxCursor('origin http://origin.invalid'), ids[3]);

    origin.setDown(false);
    // A reporter started afresh (a restart) reads the cursor from the store.
    const again = new SiteReporter({ client: origin.client, store, log: silentLogger, forwardEvents: true, heartbeat: () => ({}) as never });
    assert.equal(await again.forward(), 1);
    assert.deepEqual(origin.batches.at(-1), [more[0]?.id]);
    assert.deepEqual(origin.batches.flat().sort((a, b) => a - b), [ids[0], ids[2], ids[3], more[0]?.id]);
  });

  it('keeps each request within the byte budget, however large the events', async (t) => {
    const store = new SqliteDeviceStore(':memory:');
    await store.migrate();
    t.after(() => store.close());
    const origin = fakeOrigin();
    const reporter = new SiteReporter({ client: origin.client, store, log: silentLogger, forwardEvents: true, heartbeat: () => ({}) as never });
    const large = (n: number) => download('started', `/assets/${String(n).repeat(200_000)}`);
    const stored = await store.recordEvents([large(1), large(2), large(3), download('completed')]);
    assert.equal(await reporter.forward(), 4);
    // About 200 KB each: two fit in 512 KiB, the third starts the next request.
    assert.deepEqual(origin.batches, [[stored[0]?.id, stored[1]?.id], [stored[2]?.id, stored[3]?.id]]);
    assert.equal(reporter.behind, 0);
  });

  it('forwards nothing when forwarding is off', async (t) => {
    const store = new SqliteDeviceStore(':memory:');
    await store.migrate();
    t.after(() => store.close());
    const origin = fakeOrigin();
    await store.recordEvents([download('started')]);
    const reporter = new SiteReporter({ client: origin.client, store, log: silentLogger, forwardEvents: false, heartbeat: () => ({}) as never });
    assert.equal(await reporter.forward(), 0);
    assert.deepEqual(origin.batches, []);
  });
});
