/**
 * Copying a byte range from an open file to an HTTP response, fast and with flat memory.
 *
 * Node's HTTP server has no sendfile, so throughput is set by the read size and by how little
 * else happens per chunk (each read and each socket write costs a fixed overhead on the event
 * loop, so big chunks matter most when hundreds of machines download at once). Each transfer
 * reads a chunk while the socket takes the one before, writes straight to the response, and
 * waits for the socket when both are in flight. Buffers are borrowed per chunk from a pool that
 * all downloads share, so memory is the pool's budget whatever the number of downloads.
 */
import type { BigIntStats } from 'node:fs';
import type { ServerResponse } from 'node:http';
import pLimit, { type LimitFunction } from 'p-limit';

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
 * Read buffers shared by all downloads, within a memory budget. A download holds a buffer only
 * for one chunk: from the read until the socket has taken the bytes, and only asks for one while
 * its socket has room. So a few full-size buffers serve hundreds of downloads at full speed in
 * turn (a storm's machines take their chunks first come, first served), and memory stays the
 * budget however many machines download at once. A download that finds every buffer busy waits
 * a moment for one, then reads into a small one instead, so a few clients that stop reading
 * with a buffer pinned in their socket cannot stall everyone else.
 *
 * The pool also owns the read slots: at most `concurrentReads` reads from disk are in flight
 * across all downloads, taken first come, first served. libuv runs only a few file reads at once
 * anyway (its thread pool), so more in flight buy no speed; but every read that completes is
 * handled, and its chunk written, in the same turn of the event loop, and libuv accepts one new
 * connection per turn. With hundreds of downloads each keeping a read in flight, a turn grew to
 * hundreds of milliseconds, and new connections (a machine's first script request) waited in
 * the listen queue for seconds. Bounding the reads bounds a turn's work, so the loop comes round
 * often and a script is answered at once while a storm downloads (docs/benchmarks.md).
 */
export class BufferPool {
  /** Size of the buffers handed out while the budget allows. */
  readonly size: number;
  /** Size handed out when no full-size buffer comes free in time. */
  readonly smallSize: number;
  private readonly budget: number;
  private readonly waitMs: number;
  private readonly idle: Buffer[] = [];
  private readonly idleSmall: Buffer[] = [];
  private readonly waiters: { grant: (buffer: Buffer | undefined) => void }[] = [];
  private allocated = 0;
  private readonly readSlots: LimitFunction;

  constructor(size: number, budgetBytes = 16 * 1024 * 1024, smallSize = 64 * 1024, waitMs = 20, concurrentReads = defaultConcurrentReads()) {
    this.readSlots = pLimit(concurrentReads);
    this.size = size;
    this.budget = Math.max(budgetBytes, size * 2);
    this.smallSize = Math.min(smallSize, size);
    this.waitMs = waitMs;
  }

  /** A full-size buffer if one is idle or the budget allows, else a small one: never waits. */
  acquire(): Buffer {
    return this.takeFull() ?? this.takeSmall();
  }

  /** A full-size buffer as soon as one comes free (first come, first served), or a small one after `waitMs`. */
  acquireShared(): Promise<Buffer> {
    const buffer = this.waiters.length === 0 ? this.takeFull() : undefined;
    if (buffer) return Promise.resolve(buffer);
    return new Promise((resolve) => {
      const waiter = {
        grant: (granted: Buffer | undefined) => {
          clearTimeout(timer);
          resolve(granted ?? this.takeSmall());
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.grant(undefined);
      }, this.waitMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Reads the next chunk when a read slot is free: a buffer from the pool (see
   * {@link acquireShared}) filled from `position`. The buffer is the caller's until released.
   */
  readChunk(file: ReadableContent, position: number, maxLength: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    return this.readSlots(async () => {
      const buffer = await this.acquireShared();
      try {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, maxLength), position);
        return { buffer, bytesRead };
      } catch (error) {
        this.release(buffer);
        throw error;
      }
    });
  }

  /** Reads waiting for a slot (for metrics and tests). */
  get readsWaiting(): number {
    return this.readSlots.pendingCount;
  }

  release(buffer: Buffer): void {
    if (buffer.length !== this.size) {
      if (buffer.length === this.smallSize && this.idleSmall.length < MAX_IDLE_SMALL) this.idleSmall.push(buffer);
      return;
    }
    const next = this.waiters.shift();
    if (next) next.grant(buffer);
    else this.idle.push(buffer);
  }

  /** Forgets a full-size buffer that cannot be reused (the socket may still hold it). */
  discard(buffer: Buffer): void {
    if (buffer.length !== this.size) return;
    this.allocated -= this.size;
    const next = this.waiters.shift();
    if (next) next.grant(this.takeFull());
  }

  /** Bytes of full-size buffers in use or idle. */
  get allocatedBytes(): number {
    return this.allocated;
  }

  private takeFull(): Buffer | undefined {
    const reused = this.idle.pop();
    if (reused) return reused;
    if (this.allocated + this.size > this.budget) return undefined;
    this.allocated += this.size;
    // Slow (unpooled) buffers: Node's small-buffer pool would pin memory for big reads.
    return Buffer.allocUnsafeSlow(this.size);
  }

  private takeSmall(): Buffer {
    return this.idleSmall.pop() ?? Buffer.allocUnsafeSlow(this.smallSize);
  }
}

/**
 * Twice libuv's file-read threads (UV_THREADPOOL_SIZE, 4 unless set): enough to keep every
 * thread busy while the event loop hands out the next reads.
 */
function defaultConcurrentReads(): number {
  const threads = Number(process.env.UV_THREADPOOL_SIZE);
  return 2 * (Number.isInteger(threads) && threads > 0 ? Math.min(threads, 1024) : 4);
}

/** Small buffers kept for reuse (64 KiB each by default: 4 MiB). */
const MAX_IDLE_SMALL = 64;

/** The client went away (or the socket broke) before the transfer finished. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
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
 *
 * Two chunks at most are in flight: the next is read while the socket takes the last. Each
 * chunk's buffer comes from the pool when the socket has room and a read slot is free, and goes
 * back once the socket took it.
 */
export async function streamRange(res: ServerResponse, file: ReadableContent, start: number, end: number, pool: BufferPool, sent?: { bytes: number }): Promise<number> {
  const inFlight: Promise<void>[] = [];
  let position = start;
  try {
    while (position <= end) {
      if (inFlight.length === 2) await inFlight.shift();
      const { buffer, bytesRead } = await pool.readChunk(file, position, end - position + 1);
      if (bytesRead === 0) {
        pool.release(buffer);
        throw new Error(`file ended at byte ${position}, before ${end + 1}`);
      }
      const written = writeChunk(res, bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead)).then(
        () => {
          pool.release(buffer);
          if (sent) sent.bytes += bytesRead;
        },
        (error: unknown) => {
          // The socket may still hold the buffer: leave it to the GC.
          pool.discard(buffer);
          throw error;
        },
      );
      // Keep a rejection from going unhandled while the next chunk is being read.
      written.catch(() => undefined);
      inFlight.push(written);
      position += bytesRead;
    }
    await Promise.all(inFlight);
    return position - start;
  } finally {
    await Promise.allSettled(inFlight);
  }
}
