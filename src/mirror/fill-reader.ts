/**
 * Reading a file that is still being filled: each read waits until its first byte has arrived
 * (woken by the fill's progress), then reads what is there from the temp file's descriptor,
 * or from memory past a disk failure. A failed fill makes every pending and later read throw.
 *
 * It is ReadableContent (stat and read at an offset), so a growing file is answered by the
 * same sendFile as a complete one: preconditions, ranges, multipart, HEAD.
 */
import type { BigIntStats } from 'node:fs';
import type { ReadableContent } from '../assets/file-stream.ts';
import { FillFailedError, type Fill, type FillReaderLike } from './fill.ts';

export class FillReader implements FillReaderLike, ReadableContent {
  readonly fill: Fill;
  position = 0;
  private aborted: Error | undefined;
  private closed = false;
  /** Resolves when the reader is cut off, so a read waiting for bytes wakes at once. */
  private readonly cutOff = Promise.withResolvers<void>();
  /** What cutting this reader off does to its client (destroying the socket). */
  onAbort: (() => void) | undefined;

  private constructor(fill: Fill) {
    this.fill = fill;
  }

  /** A reader on the fill, or undefined when the fill is already over and closed. */
  static attach(fill: Fill): FillReader | undefined {
    const reader = new FillReader(fill);
    return fill.attach(reader) ? reader : undefined;
  }

  /**
   * Size, inode and mtime of the file as it will be once committed (the temp file is renamed,
   * and its mtime set before that), so sendFile's validators now are the cached file's later.
   */
  stat(): Promise<Pick<BigIntStats, 'ino' | 'size' | 'mtimeNs'>> {
    const { fill } = this;
    if (fill.expected === undefined) return Promise.reject(new Error(`the size of ${fill.path} is not known yet`));
    return Promise.resolve({ ino: fill.file.ino, size: BigInt(fill.expected), mtimeNs: BigInt(fill.mtimeSeconds) * 1_000_000_000n });
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    const { fill } = this;
    let end: number;
    for (;;) {
      if (this.aborted) throw this.aborted;
      if (this.closed) throw new FillFailedError('reader closed');
      if (fill.state === 'failed') throw fill.error ?? new FillFailedError('fill failed');
      end = fill.availableEnd();
      if (position < end) break;
      if (fill.state === 'complete') return { bytesRead: 0, buffer };
      await Promise.race([fill.changed(), this.cutOff.promise]);
    }
    const bytesRead = await fill.file.readAt(buffer, offset, Math.min(length, end - position), position);
    this.position = position + bytesRead;
    fill.file.readerMoved();
    return { bytesRead, buffer };
  }

  /** Waits until the fill is over; throws when it failed. */
  async complete(): Promise<void> {
    const { fill } = this;
    for (;;) {
      if (this.aborted) throw this.aborted;
      if (fill.state === 'failed') throw fill.error ?? new FillFailedError('fill failed');
      if (fill.state === 'complete') return;
      await Promise.race([fill.changed(), this.cutOff.promise]);
    }
  }

  abort(error: Error): void {
    this.aborted = error;
    this.cutOff.resolve();
    this.onAbort?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fill.detach(this);
  }
}
