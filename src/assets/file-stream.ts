/**
 * Copying a byte range from an open file to an HTTP response, fast and with flat memory.
 *
 * Node's HTTP server has no sendfile, so throughput is set by the read size and by how little
 * else happens per chunk. Each transfer reads into two fixed buffers in turn (the next read
 * fills one while the socket drains the other), writes straight to the response, and waits for
 * the socket when it is full. Buffers return to a shared pool and are reused across downloads,
 * so memory is two buffers per active download whatever the file size.
 */
import type { BigIntStats } from 'node:fs';
import type { ServerResponse } from 'node:http';

/**
 * What serving bytes needs of its content, as Go's ServeContent asks for a ReadSeeker and a
 * size: an identity for validators (inode, size, modification time) and reads at an offset. An
 * open FileHandle is one; so is a mirror file that is still being filled (its reads wait for
 * bytes that have not arrived yet).
 */
export interface ReadableContent {
  stat(options: { bigint: true }): Promise<Pick<BigIntStats, 'ino' | 'size' | 'mtimeNs'>>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * Read buffers shared by all downloads, within a memory budget. While the budget allows, a
 * download gets full-size buffers (fast); past it, small ones, so memory stays bounded however
 * many machines download at once (the link is shared by then anyway, so the small reads cost
 * little throughput). Full-size buffers are kept for reuse.
 */
export class BufferPool {
  /** Size of the buffers handed out while the budget allows. */
  readonly size: number;
  /** Size handed out beyond the budget. */
  readonly smallSize: number;
  private readonly budget: number;
  private readonly idle: Buffer[] = [];
  private allocated = 0;

  constructor(size: number, budgetBytes = 16 * 1024 * 1024, smallSize = 64 * 1024) {
    this.size = size;
    this.budget = Math.max(budgetBytes, size * 2);
    this.smallSize = Math.min(smallSize, size);
  }

  acquire(): Buffer {
    const reused = this.idle.pop();
    if (reused) return reused;
    if (this.allocated + this.size <= this.budget) {
      this.allocated += this.size;
      // Slow (unpooled) buffers: Node's small-buffer pool would pin memory for big reads.
      return Buffer.allocUnsafeSlow(this.size);
    }
    return Buffer.allocUnsafeSlow(this.smallSize);
  }

  release(buffer: Buffer): void {
    if (buffer.length === this.size) this.idle.push(buffer);
  }

  /** Forgets a full-size buffer that cannot be reused (the socket may still hold it). */
  discard(buffer: Buffer): void {
    if (buffer.length === this.size) this.allocated -= this.size;
  }

  /** Bytes of full-size buffers in use or idle. */
  get allocatedBytes(): number {
    return this.allocated;
  }
}

/** The client went away (or the socket broke) before the transfer finished. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
}

function waitForDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', gone);
      resolve();
    };
    const gone = () => {
      res.off('drain', done);
      res.off('close', gone);
      reject(new ClientGoneError());
    };
    res.on('drain', done);
    res.on('close', gone);
  });
}

/** Writes a chunk and resolves once the socket has taken it, so its buffer can be reused. */
export function writeChunk(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) {
      reject(new ClientGoneError());
      return;
    }
    const onClose = () => reject(new ClientGoneError());
    res.once('close', onClose);
    res.write(chunk, (error) => {
      res.off('close', onClose);
      if (error) reject(new ClientGoneError());
      else resolve();
    });
  });
}

/**
 * Sends bytes `start..end` (inclusive) of the file. Resolves with the byte count; rejects with
 * {@link ClientGoneError} when the client leaves, or with the read error when the file fails
 * (for example, it was truncated while being sent).
 */
export async function streamRange(res: ServerResponse, file: ReadableContent, start: number, end: number, pool: BufferPool, sent?: { bytes: number }): Promise<number> {
  const buffers = [pool.acquire(), pool.acquire()] as const;
  const pending: (Promise<void> | undefined)[] = [undefined, undefined];
  let position = start;
  let slot = 0;
  let clean = false;
  try {
    while (position <= end) {
      const buffer = buffers[slot] as Buffer;
      await pending[slot];
      const want = Math.min(buffer.length, end - position + 1);
      const { bytesRead } = await file.read(buffer, 0, want, position);
      if (bytesRead === 0) throw new Error(`file ended at byte ${position}, before ${end + 1}`);
      pending[slot] = writeChunk(res, bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead)).then(() => {
        if (sent) sent.bytes += bytesRead;
      });
      // Keep a rejection from going unhandled while the other buffer is being filled.
      pending[slot]?.catch(() => undefined);
      position += bytesRead;
      slot ^= 1;
      if (res.writableNeedDrain) await waitForDrain(res);
    }
    await Promise.all(pending.filter((p) => p !== undefined));
    clean = true;
    return position - start;
  } finally {
    await Promise.allSettled(pending.filter((p) => p !== undefined));
    // After a broken write the socket may still hold a buffer: leave those to the GC.
    for (const buffer of buffers) {
      if (clean) pool.release(buffer);
      else pool.discard(buffer);
    }
  }
}
