/**
 * The file half of a fill (see fill.ts): the temp file a transfer writes into while clients read
 * it as it grows. It knows bytes and readers, nothing of the upstream.
 *
 * Chunks are written at their offset; readers read what is on disk from the same descriptor,
 * each at its own pace. When the disk fails (ENOSPC and the like), the bytes past the failure go
 * to a memory window (fill-window.ts) that is trimmed as the slowest reader advances; the writer
 * waits while the window is full and finally cuts off readers that lag too far behind.
 *
 * The descriptor stays open while the writer or any reader holds it, so a reader that attached
 * before the fill ended can finish even after the temp file was renamed into the cache.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { FillFailedError } from './errors.ts';
import { MemoryWindow } from './fill-window.ts';

/** Bytes kept in memory past a disk failure for readers that lag behind the transfer. */
const WINDOW_LIMIT = 16 * 1024 * 1024;

const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EFBIG']);

export interface GrowingFileReader {
  /** Next byte the reader will ask for; bytes before it are no longer needed in memory. */
  readonly position: number;
  /** Cuts the reader off: its client lags too far behind a fill that cannot use the disk. */
  abort(error: Error): void;
}

export interface GrowingFileOptions {
  tempPath: string;
  /** `mirror/path`, for log lines. */
  label: string;
  /** How long the writer waits for a lagging reader before cutting it off (memory window full). */
  readerPatienceMs: number;
  /** Writes a whole chunk at a position of the temp file; tests replace it to fill the disk. */
  writeChunk(handle: FileHandle, chunk: Buffer, position: number): Promise<void>;
  warn(fields: object, message: string): void;
}

export async function writeWholeChunk(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    written += bytesWritten;
  }
}

export class GrowingFile {
  private readonly options: GrowingFileOptions;
  private fileHandle: FileHandle | undefined;
  private inode = 0n;
  private bytesReceived = 0;
  private bytesOnDisk = 0;
  private length: number | undefined;
  private failedDisk = false;
  private window: MemoryWindow | undefined;
  private readonly readers = new Set<GrowingFileReader>();
  /** Readers holding the descriptor open; the writer holds it too until it lets go. */
  private handleUsers = 0;
  private writerHoldsHandle = false;
  private progress = Promise.withResolvers<void>();
  private readerProgress = Promise.withResolvers<void>();

  constructor(options: GrowingFileOptions) {
    this.options = options;
  }

  get tempPath(): string {
    return this.options.tempPath;
  }

  /** Bytes written so far (on disk, or in memory past a disk failure). */
  get received(): number {
    return this.bytesReceived;
  }

  /** Bytes at the start of the temp file that are on disk (readers may read them). */
  get onDisk(): number {
    return this.bytesOnDisk;
  }

  /** Content-Length, or, for a chunked body, the byte count once it ended. */
  get expected(): number | undefined {
    return this.length;
  }

  /** The disk failed: bytes from `onDisk` on are only in memory and nothing may be cached. */
  get diskFailed(): boolean {
    return this.failedDisk;
  }

  get ino(): bigint {
    return this.inode;
  }

  /** The open temp file, while the writer or a reader holds it (undefined after a disk failure at open). */
  get handle(): FileHandle | undefined {
    return this.fileHandle;
  }

  get readerCount(): number {
    return this.readers.size;
  }

  /** Creates the temp file; without one (disk full, too many open files) bytes are relayed from memory. */
  async open(): Promise<void> {
    try {
      this.fileHandle = await open(this.tempPath, 'wx+', 0o644);
      this.writerHoldsHandle = true;
      this.inode = (await this.fileHandle.stat({ bigint: true })).ino;
    } catch (error) {
      this.options.warn({ path: this.options.label, err: error }, 'cannot create a temp file; relaying without caching');
      this.failedDisk = true;
      this.window = new MemoryWindow(0);
    }
  }

  /** The size the file will have; undefined until the body says (Content-Length) or ends. */
  setLength(bytes: number | undefined): void {
    this.length = bytes;
  }

  /**
   * Writes the next chunk. Past a disk failure it goes to memory, and this waits while the
   * memory window is full (cutting off readers that do not move within the patience).
   */
  async append(chunk: Buffer, signal: AbortSignal): Promise<void> {
    const position = this.bytesReceived;
    if (!this.failedDisk && this.fileHandle) {
      try {
        await this.options.writeChunk(this.fileHandle, chunk, position);
        this.bytesOnDisk = position + chunk.length;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (!DISK_ERRORS.has(code)) throw error;
        this.failedDisk = true;
        this.window = new MemoryWindow(position, [chunk]);
        this.options.warn({ path: this.options.label, code, at: position }, 'cache disk failed while filling; relaying the rest from memory, not caching');
      }
    } else this.window?.push(chunk);
    this.bytesReceived = position + chunk.length;
    this.notify();
    if (this.failedDisk) await this.makeWindowRoom(signal);
  }

  /** Sets the mtime the cached file will have (whole seconds), so validators predicted now hold later. */
  async setMtime(seconds: number): Promise<void> {
    if (this.fileHandle && !this.failedDisk) await this.fileHandle.utimes(seconds, seconds);
  }

  /**
   * End (exclusive) of the bytes a reader may take now. Unless the file is `complete`, its last
   * byte is held back, so a response that ends has the whole, verified file.
   */
  availableEnd(complete: boolean): number {
    const end = this.failedDisk ? this.bytesReceived : this.bytesOnDisk;
    if (complete || this.length === undefined) return end;
    return Math.min(end, this.length - 1);
  }

  /** True while a new reader can still get every byte from the first (false once memory was trimmed). */
  servesFromStart(): boolean {
    return !this.failedDisk || (this.window !== undefined && this.window.start === this.bytesOnDisk);
  }

  /** Reads available bytes at `position` (before `availableEnd`) from disk or from memory. */
  async readAt(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (position < this.bytesOnDisk && this.fileHandle) {
      const { bytesRead } = await this.fileHandle.read(buffer, offset, Math.min(length, this.bytesOnDisk - position), position);
      return bytesRead;
    }
    const window = this.window;
    if (!window || position < window.start) throw new FillFailedError(`bytes from ${position} of ${this.options.label} are no longer available`);
    return window.copy(buffer, offset, length, position);
  }

  /** Resolves at the next change: bytes arrived, the fill's state moved, a reader was cut off. */
  changed(): Promise<void> {
    return this.progress.promise;
  }

  /** Wakes everyone waiting in `changed()`. */
  notify(): void {
    const current = this.progress;
    this.progress = Promise.withResolvers<void>();
    current.resolve();
  }

  /** Registers a reader, which holds the descriptor open. False when it is already closed. */
  attach(reader: GrowingFileReader): boolean {
    if (!this.fileHandle && !this.failedDisk) return false;
    this.readers.add(reader);
    this.handleUsers += 1;
    return true;
  }

  /** False when the reader was not attached. */
  detach(reader: GrowingFileReader): boolean {
    if (!this.readers.delete(reader)) return false;
    this.handleUsers -= 1;
    void this.closeHandleIfUnused();
    this.readerMoved();
    return true;
  }

  /** A reader advanced: memory past a disk failure may be trimmed and the writer go on. */
  readerMoved(): void {
    this.trimWindow();
    const waiting = this.readerProgress;
    this.readerProgress = Promise.withResolvers<void>();
    waiting.resolve();
  }

  /** The writer is done with the file; the descriptor closes once no reader holds it. */
  async release(): Promise<void> {
    this.writerHoldsHandle = false;
    await this.closeHandleIfUnused();
  }

  private async closeHandleIfUnused(): Promise<void> {
    if (this.writerHoldsHandle || this.handleUsers > 0 || !this.fileHandle) return;
    const handle = this.fileHandle;
    this.fileHandle = undefined;
    await handle.close().catch(() => undefined);
  }

  /** Drops memory no reader needs; waits (and finally cuts off laggards) while the window is full. */
  private async makeWindowRoom(signal: AbortSignal): Promise<void> {
    for (;;) {
      this.trimWindow();
      const window = this.window;
      if (!window || this.bytesReceived - window.start <= WINDOW_LIMIT) return;
      const moved = this.readerProgress.promise.then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.options.readerPatienceMs);
      });
      const progressed = await Promise.race([moved, timedOut]);
      clearTimeout(timer);
      if (signal.aborted) throw signal.reason as Error;
      if (!progressed) {
        const error = new FillFailedError(`client fell more than ${WINDOW_LIMIT} bytes behind a fill that cannot use the disk`);
        for (const reader of [...this.readers]) if (reader.position < this.bytesReceived - WINDOW_LIMIT) reader.abort(error);
        this.notify();
      }
    }
  }

  private trimWindow(): void {
    const window = this.window;
    if (!window) return;
    let floor = this.bytesReceived;
    for (const reader of this.readers) floor = Math.min(floor, Math.max(reader.position, this.bytesOnDisk));
    window.dropBefore(floor, this.bytesReceived);
  }
}
