/**
 * The bytes a fill keeps in memory once the cache disk failed (see fill.ts): from `start` on,
 * in the chunks they arrived in. Whole chunks are dropped as the slowest reader passes them.
 */
export class MemoryWindow {
  private first: number;
  private readonly chunks: Buffer[];

  constructor(start: number, chunks: Buffer[] = []) {
    this.first = start;
    this.chunks = chunks;
  }

  /** Offset in the file of the first byte still held. */
  get start(): number {
    return this.first;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  /** Copies up to `length` bytes from file offset `position` (not before `start`) into `buffer`; returns how many. */
  copy(buffer: Buffer, offset: number, length: number, position: number): number {
    let chunkStart = this.first;
    let copied = 0;
    for (const chunk of this.chunks) {
      const chunkEnd = chunkStart + chunk.length;
      const from = position + copied;
      if (from < chunkEnd) {
        copied += chunk.copy(buffer, offset + copied, from - chunkStart, Math.min(chunk.length, from - chunkStart + length - copied));
        if (copied >= length) break;
      }
      chunkStart = chunkEnd;
    }
    return copied;
  }

  /** Drops the chunks that end at or before `floor`; an empty window starts at `received`. */
  dropBefore(floor: number, received: number): void {
    while (this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      if (this.first + first.length > floor) break;
      this.first += first.length;
      this.chunks.shift();
    }
    if (this.chunks.length === 0) this.first = received;
  }
}
