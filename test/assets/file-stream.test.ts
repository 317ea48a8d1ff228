import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool, type ReadableContent } from '../../src/assets/file-stream.ts';

/** A file whose reads finish only when the test says so, recording how many run at once. */
function heldFile() {
  const pending: { position: number; finish: (error?: Error) => void }[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const file: ReadableContent = {
    stat: () => Promise.resolve({ ino: 1n, size: 1n << 30n, mtimeNs: 0n }),
    read: (buffer, offset, length, position) =>
      new Promise((resolve, reject) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        pending.push({
          position,
          finish: (error) => {
            running--;
            if (error) reject(error);
            else resolve({ bytesRead: buffer.fill(position % 251, offset, offset + length) && length });
          },
        });
      }),
  };
  return { file, pending, mostAtOnce: () => mostAtOnce };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('read slots shared by all downloads', () => {
  it('runs at most concurrentReads reads at once and hands the slots out first come, first served', async () => {
    const { file, pending, mostAtOnce } = heldFile();
    const pool = new BufferPool(64 * 1024, 64 * 1024 * 64, 16 * 1024, 20, 3);
    const reads = Array.from({ length: 10 }, (_, i) => pool.readChunk(file, i * 1000, 4096));
    await settle();
    assert.equal(pending.length, 3, 'three reads started');
    assert.equal(pool.readsWaiting, 7);
    const order: number[] = [];
    while (pending.length > 0) {
      const next = pending.shift();
      order.push(next?.position ?? -1);
      next?.finish();
      await settle();
    }
    const results = await Promise.all(reads);
    assert.equal(mostAtOnce(), 3);
    assert.deepEqual(order, Array.from({ length: 10 }, (_, i) => i * 1000), 'slots in arrival order');
    for (const [i, { buffer, bytesRead }] of results.entries()) {
      assert.equal(bytesRead, 4096);
      assert.equal(buffer[0], (i * 1000) % 251, 'each read filled its own buffer');
      pool.release(buffer);
    }
    assert.equal(pool.readsWaiting, 0);
  });

  it('frees the slot and the buffer of a read that fails', async () => {
    const { file, pending } = heldFile();
    const pool = new BufferPool(64 * 1024, 128 * 1024, 16 * 1024, 20, 1);
    const failing = pool.readChunk(file, 0, 100);
    const next = pool.readChunk(file, 100, 100);
    await settle();
    assert.equal(pending.length, 1);
    pending.shift()?.finish(new Error('EIO'));
    await assert.rejects(failing, /EIO/);
    await settle();
    assert.equal(pending.length, 1, 'the waiting read got the slot');
    pending.shift()?.finish();
    const { buffer } = await next;
    assert.equal(buffer.length, 64 * 1024, 'a full-size buffer: the failed read gave its own back');
    pool.release(buffer);
    assert.equal(pool.allocatedBytes, 64 * 1024, 'one buffer allocated in all, reused');
  });
});
