import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DownloadLog } from '../../src/assets/download-log.ts';

function recorder() {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  return { lines, log: { info: (fields: object, message: string) => lines.push({ fields: fields as Record<string, unknown>, message }) } };
}

describe('download summaries', () => {
  it('logs a whole-file download once, when it ends', () => {
    const { lines, log } = recorder();
    const downloads = new DownloadLog(log);
    downloads.record({ client: '10.0.0.9', path: 'linuxkit/a-kernel', status: 200, bytes: 1000, total: 1000, complete: true, durationMs: 12.5, ranged: false });
    // The speed is the whole transfer's: 1000 bytes in 12.5 ms.
    assert.deepEqual(lines, [{ message: 'download', fields: { path: 'linuxkit/a-kernel', client: '10.0.0.9', status: 200, bytes: 1000, total: 1000, ms: 13, bytesPerSecond: 80000, outcome: 'complete' } }]);
  });

  it('gathers a client\'s range requests for a file into one line after it goes quiet', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { lines, log } = recorder();
    const downloads = new DownloadLog(log, { idleMs: 5000, now: () => Date.now() });
    for (let i = 0; i < 300; i++) {
      downloads.record({ client: '10.0.0.9', path: 'disk.img', status: 206, bytes: 512, complete: true, durationMs: 1, ranged: true });
      t.mock.timers.tick(10);
    }
    downloads.record({ client: '10.0.0.7', path: 'disk.img', status: 206, bytes: 100, complete: false, durationMs: 1, ranged: true });
    assert.equal(lines.length, 0, 'nothing while requests keep coming');
    t.mock.timers.tick(5000);
    assert.equal(lines.length, 2);
    const first = lines.find((l) => l.fields.client === '10.0.0.9');
    assert.equal(first?.message, 'ranged download');
    assert.equal(first?.fields.requests, 300);
    assert.equal(first?.fields.bytes, 300 * 512);
    assert.equal(first?.fields.outcome, 'complete');
    assert.equal(lines.find((l) => l.fields.client === '10.0.0.7')?.fields.outcome, '1 aborted');
  });

  it('flushes open sessions at shutdown', () => {
    const { lines, log } = recorder();
    const downloads = new DownloadLog(log, { idleMs: 60_000 });
    downloads.record({ client: 'c', path: 'p', status: 206, bytes: 1, complete: true, durationMs: 0, ranged: true });
    downloads.flush();
    assert.equal(lines.length, 1);
  });
});

describe('read buffer pool', () => {
  it('hands out full-size buffers within the budget and small ones beyond', async () => {
    const { BufferPool } = await import('../../src/assets/file-stream.ts');
    const pool = new BufferPool(1024 * 1024, 4 * 1024 * 1024, 64 * 1024);
    const full = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    assert.deepEqual(full.map((b) => b.length), Array(4).fill(1024 * 1024));
    const beyond = pool.acquire();
    assert.equal(beyond.length, 64 * 1024);
    assert.equal(pool.allocatedBytes, 4 * 1024 * 1024);
    pool.release(beyond);
    pool.release(full[0] as Buffer);
    assert.equal(pool.acquire(), full[0], 'released full-size buffers are reused');
    pool.discard(full[1] as Buffer);
    assert.equal(pool.acquire().length, 1024 * 1024, 'a discarded buffer frees its share of the budget');
  });

  it('shares full-size buffers in turn: a waiting download gets the next one released, or a small one after the wait', async () => {
    const { BufferPool } = await import('../../src/assets/file-stream.ts');
    const pool = new BufferPool(1024 * 1024, 2 * 1024 * 1024, 64 * 1024, 50);
    const first = await pool.acquireShared();
    const second = await pool.acquireShared();
    assert.equal(pool.allocatedBytes, 2 * 1024 * 1024);
    const waiting = pool.acquireShared();
    const alsoWaiting = pool.acquireShared();
    pool.release(second);
    assert.equal(await waiting, second, 'the first waiter gets the buffer released first');
    const fallback = await alsoWaiting;
    assert.equal(fallback.length, 64 * 1024, 'nobody released another in time: a small buffer');
    pool.release(fallback);
    assert.equal(pool.acquire().length, 64 * 1024, 'the small buffer is reused: the budget is spent');
    pool.discard(first);
    assert.equal((await pool.acquireShared()).length, 1024 * 1024, 'a discarded buffer frees its share of the budget');
  });
});
