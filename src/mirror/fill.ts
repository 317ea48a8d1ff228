/**
 * A fill: the one upstream transfer of one file into a temp file in the cache, which every
 * client asking for that file meanwhile reads as it grows (see fill-reader.ts).
 *
 * The body is written at its offset in the temp file and hashed on the way; readers wake on
 * each chunk and read from the same file descriptor, each at its own pace, so a slow client
 * never slows the transfer or the other clients. A transfer that breaks is resumed from the
 * byte where it broke when the upstream allows it (strong ETag and byte ranges): Range plus
 * If-Match, and the 206's Content-Range must start exactly there. The fill completes only when
 * the byte count matches Content-Length (or a chunked body ended properly) and the checks
 * passed; only then do readers get the file's last byte, so a client of a fill that fails
 * never sees a complete response. Then the file is fsynced and renamed into the cache.
 *
 * When the disk fails mid-fill (ENOSPC), the fill keeps going in memory for the clients that
 * are reading: bytes past the failure go to a window that is trimmed as the slowest reader
 * advances, and the transfer waits while the window is full. Nothing is cached then.
 *
 * A fill waits for an upstream slot before it sends anything (see fill-slots.ts) and gives the
 * slot back as soon as the body is in. It runs only while someone wants it: a reader, or a
 * request waiting for its answer (`hold`). When nobody does, it is stopped after
 * `abandonedFillTimeoutMs` (at once while it still waits for a slot) and its temp file removed.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { MirrorDefinition } from './config.ts';
import { FillFailedError } from './errors.ts';
import { MemoryWindow } from './fill-window.ts';
import { asUpstreamError, conditionalHeaders, isResumable, readFileHeaders, redirectPolicyFor, requestResume } from './fill-upstream.ts';
import type { EntryMeta, CacheDisk } from './cache-disk.ts';
import { discardBody, headerValue, printableHeader, readBody, UpstreamError, UpstreamStalledError, type UpstreamClient, type UpstreamResponse } from './upstream.ts';

export { FillFailedError } from './errors.ts';

/** Resumes of one fill before it is given up. */
const MAX_RESUMES = 3;
/** Bytes kept in memory past a disk failure for readers that lag behind the transfer. */
const WINDOW_LIMIT = 16 * 1024 * 1024;

export type FillState = 'requesting' | 'streaming' | 'verifying' | 'complete' | 'failed';

/** What the upstream's answer means for the requests waiting on it. */
export type FillOutcome =
  | { kind: 'streaming' }
  | { kind: 'not-modified'; etag: string | undefined; lastModified: string | undefined }
  | { kind: 'not-found' }
  /** `staleAllowed`: an upstream failure (5xx, timeout, network) rather than a refusal. */
  | { kind: 'upstream-error'; error: UpstreamError; staleAllowed: boolean };

/** `3 MiB`, `512 KiB`, `100 bytes`: sizes in one-line reasons. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  if (bytes < 1024 ** 3) return `${Number((bytes / 1024 ** 2).toFixed(1))} MiB`;
  return `${Number((bytes / 1024 ** 3).toFixed(1))} GiB`;
}

/** Why a fill was stopped from this side; such fills say nothing about the upstream. */
export type FillStop = 'abandoned' | 'shutdown';

export interface FillReaderLike {
  /** Next byte the reader will ask for; bytes before it are no longer needed in memory. */
  position: number;
  /** Cuts the reader off: its client lags too far behind a fill that cannot use the disk. */
  abort(error: Error): void;
}

export interface FillCounters {
  upstreamBytes: number;
  failedFills: number;
  resumes: number;
  abandonedFills: number;
}

export interface FillLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Checks a finished body; resolves true when a published digest matched, throws to refuse it. */
export type Verifier = (sha512: string) => Promise<boolean>;

export interface FillContext {
  upstream: UpstreamClient;
  store: CacheDisk;
  counters: FillCounters;
  log: FillLogger;
  bodyInactivityMs: number;
  headersTimeoutMs: number;
  /** How long a fill nobody wants any more goes on before it is stopped. */
  abandonedFillTimeoutMs: number;
  now(): number;
  /** Waits for an upstream slot; resolves with its release. Rejects when the signal aborts first. */
  acquireSlot(fill: Fill, signal: AbortSignal): Promise<() => void>;
  /** Writes a whole chunk at a position of the temp file; tests replace it to fill the disk. */
  writeChunk(handle: FileHandle, chunk: Buffer, position: number): Promise<void>;
  /** Starts whatever checking the file needs (fetching its DIGESTS) as soon as the body starts. */
  startVerification(fill: Fill): Verifier;
  /** Makes the verified temp file a cache entry; false when it is not to be kept after all. */
  commit(fill: Fill, meta: EntryMeta, handle: FileHandle): Promise<boolean>;
  /** Called once, synchronously, as the fill stops being the source for new requests. */
  finished(fill: Fill): void;
}

export interface FillRequest {
  key: string;
  id: string;
  mirror: MirrorDefinition;
  path: string;
  segments: readonly string[];
  url: string;
  /** The cached copy being revalidated: its validators make the request conditional. */
  revalidating?: { etag: string | undefined; lastModified: string | undefined };
  /** Another fill waits for this one (its DIGESTS): it goes ahead in the slot queue. */
  urgent?: boolean;
}

const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EFBIG']);

export async function writeWholeChunk(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    written += bytesWritten;
  }
}

export class Fill {
  readonly key: string;
  readonly id: string;
  readonly mirror: MirrorDefinition;
  readonly path: string;
  readonly segments: readonly string[];
  readonly url: string;
  readonly startedAt: number;
  readonly revalidation: boolean;
  readonly urgent: boolean;
  /** Set when the fill was stopped by the mirror rather than failed by the upstream. */
  stoppedBy: FillStop | undefined;
  /** Still waiting for an upstream slot: nothing sent yet. */
  waitingForSlot = true;

  state: FillState = 'requesting';
  /** Body bytes received from the upstream. */
  received = 0;
  /** Bytes at the start of the temp file that are written (readers may read them). */
  onDisk = 0;
  /** Content-Length, or, for a chunked body, the byte count once it ended. */
  expected: number | undefined;
  error: FillFailedError | undefined;
  /** The disk failed: bytes from `onDisk` on are only in memory and nothing will be cached. */
  diskFailed = false;
  digestVerified = false;

  contentType: string | undefined;
  contentEncoding: string | undefined;
  upstreamEtag: string | undefined;
  upstreamLastModified: string | undefined;
  /** Whole seconds; set on the file before it is renamed, so validators predicted now hold later. */
  mtimeSeconds = 0;
  ino = 0n;
  handle: FileHandle | undefined;

  readonly outcome: Promise<FillOutcome>;
  /** Resolves (never rejects) when the fill is over: committed or not. */
  readonly done: Promise<{ committed: boolean }>;

  private readonly ctx: FillContext;
  private readonly revalidating: FillRequest['revalidating'];
  private readonly abortController = new AbortController();
  private resolveOutcome!: (outcome: FillOutcome) => void;
  private outcomeSettled = false;
  private progress = Promise.withResolvers<void>();
  private readerProgress = Promise.withResolvers<void>();
  private readonly readers = new Set<FillReaderLike>();
  /** Readers holding the temp file's handle open; the fill itself holds it until it ends. */
  private handleUsers = 0;
  private fillHoldsHandle = false;
  private window: MemoryWindow | undefined;
  private acceptRanges = false;
  private readonly sha512: Hash = createHash('sha512');
  private readonly sha256: Hash = createHash('sha256');
  private isFinished = false;
  /** Requests waiting for this fill's answer (not yet readers). */
  private holds = 0;
  private abandonTimer: NodeJS.Timeout | undefined;
  private releaseSlot: (() => void) | undefined;
  private slowSinceAt: number | undefined;
  private discardRequested = false;

  constructor(request: FillRequest, ctx: FillContext) {
    this.key = request.key;
    this.id = request.id;
    this.mirror = request.mirror;
    this.path = request.path;
    this.segments = request.segments;
    this.url = request.url;
    this.revalidating = request.revalidating;
    this.revalidation = request.revalidating !== undefined;
    this.urgent = request.urgent ?? false;
    this.ctx = ctx;
    this.startedAt = ctx.now();
    this.outcome = new Promise((resolve) => {
      this.resolveOutcome = resolve;
    });
    this.done = this.run();
  }

  /** When a version lookup found it slower than its budget (ms), so the next one need not wait again. */
  get slowSince(): number | undefined {
    return this.slowSinceAt;
  }

  /** A version lookup gave up waiting on this fill; the first time counts. */
  markSlow(at: number): void {
    this.slowSinceAt ??= at;
  }

  /** Purged while filling: serve the clients, keep nothing. */
  get discard(): boolean {
    return this.discardRequested;
  }

  discardResult(): void {
    this.discardRequested = true;
  }

  get tempPath(): string {
    return this.ctx.store.tempPath(this.id);
  }

  /**
   * End (exclusive) of the bytes a reader may take now. The file's last byte is held back until
   * the fill is complete, so a response that ends has the whole, verified file.
   */
  availableEnd(): number {
    const end = this.diskFailed ? this.received : this.onDisk;
    if (this.state === 'complete' || this.expected === undefined) return end;
    return Math.min(end, this.expected - 1);
  }

  /** Resolves at the next change: bytes arrived, the state moved, a reader was cut off. */
  changed(): Promise<void> {
    return this.progress.promise;
  }

  /** True while a new reader can still get every byte from the first (false after disk trouble trimmed memory). */
  servesFromStart(): boolean {
    if (this.state === 'failed') return false;
    return !this.diskFailed || (this.window !== undefined && this.window.start === this.onDisk);
  }

  /**
   * Registers a reader; it keeps the temp file's handle open until it detaches. False when the
   * fill is over and its handle already closed: the caller then looks in the cache instead.
   */
  attach(reader: FillReaderLike): boolean {
    if (!this.handle && !this.diskFailed) return false;
    this.readers.add(reader);
    this.handleUsers += 1;
    return true;
  }

  detach(reader: FillReaderLike): void {
    if (!this.readers.delete(reader)) return;
    this.handleUsers -= 1;
    void this.closeHandleIfUnused();
    this.readerMoved();
    this.checkInterest();
  }

  /**
   * Marks someone as waiting for this fill (a request before it becomes a reader, a warm, a
   * DIGESTS check). The fill is stopped only while nobody holds it and no reader reads it.
   */
  hold(): () => void {
    this.holds += 1;
    this.checkInterest();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.checkInterest();
    };
  }

  /** Someone wants the fill: a reader or a hold. */
  get wanted(): boolean {
    return this.holds + this.readers.size > 0;
  }

  private checkInterest(): void {
    if (this.wanted || this.isFinished || (this.state !== 'requesting' && this.state !== 'streaming')) {
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      this.abandonTimer = undefined;
      return;
    }
    if (this.abandonTimer) return;
    // Nothing was sent yet: nobody loses anything if it never is.
    if (this.waitingForSlot) {
      this.stop('abandoned', 'nobody waits for it any more');
      return;
    }
    this.abandonTimer = setTimeout(() => {
      this.abandonTimer = undefined;
      if (!this.wanted) this.stop('abandoned', `nobody read it for ${this.ctx.abandonedFillTimeoutMs / 1000} s`);
    }, this.ctx.abandonedFillTimeoutMs);
  }

  /** A reader advanced: memory past a disk failure may be trimmed and the transfer go on. */
  readerMoved(): void {
    this.trimWindow();
    const waiting = this.readerProgress;
    this.readerProgress = Promise.withResolvers<void>();
    waiting.resolve();
  }

  /** Copies bytes kept in memory (past a disk failure) into `buffer`; throws when they are gone. */
  copyFromWindow(buffer: Buffer, offset: number, length: number, position: number): number {
    const window = this.window;
    if (!window || position < window.start) throw new FillFailedError(`bytes from ${position} of ${this.path} are no longer available`);
    return window.copy(buffer, offset, length, position);
  }

  /** Stops the fill: clients are cut off and nothing is kept. */
  abort(reason: string): void {
    this.stop('shutdown', reason);
  }

  private stop(by: FillStop, reason: string): void {
    if (this.abortController.signal.aborted) return;
    this.stoppedBy = by;
    if (by === 'abandoned') this.ctx.counters.abandonedFills += 1;
    this.abortController.abort(new FillFailedError(`${this.mirror.name}/${this.path}: transfer stopped: ${reason}`, 503, `stopped: ${reason}`));
  }

  private freeSlot(): void {
    this.releaseSlot?.();
    this.releaseSlot = undefined;
  }

  private notify(): void {
    const current = this.progress;
    this.progress = Promise.withResolvers<void>();
    current.resolve();
  }

  private settleOutcome(outcome: FillOutcome): void {
    if (this.outcomeSettled) return;
    this.outcomeSettled = true;
    this.resolveOutcome(outcome);
  }

  private async run(): Promise<{ committed: boolean }> {
    let response: UpstreamResponse;
    try {
      // One tick first: the request that started the fill holds it before it can look abandoned.
      await Promise.resolve();
      this.releaseSlot = await this.ctx.acquireSlot(this, this.abortController.signal);
      this.waitingForSlot = false;
      response = await this.ctx.upstream.send(this.url, conditionalHeaders(this.revalidating), { signal: this.abortController.signal, redirects: redirectPolicyFor(this.mirror) });
    } catch (error) {
      this.waitingForSlot = false;
      const upstreamError = asUpstreamError(error, this.url, this.abortController.signal);
      return this.end({ kind: 'upstream-error', error: upstreamError, staleAllowed: true }, upstreamError);
    }
    const status = response.statusCode;
    if (status !== 200) {
      await discardBody(response.body, this.ctx.headersTimeoutMs);
      if (status === 304 && this.revalidating) {
        return this.end({ kind: 'not-modified', etag: printableHeader(headerValue(response.headers, 'etag')), lastModified: printableHeader(headerValue(response.headers, 'last-modified')) });
      }
      if (status === 404 || status === 410) return this.end({ kind: 'not-found' });
      const error = new UpstreamError(502, `upstream ${this.url} answered ${status}`, `HTTP ${status}`);
      return this.end({ kind: 'upstream-error', error, staleAllowed: status >= 500 }, error);
    }

    const headers = readFileHeaders(response, this.url, () => this.ctx.now());
    if (headers instanceof UpstreamError) {
      response.body.destroy();
      return this.end({ kind: 'upstream-error', error: headers, staleAllowed: true }, headers);
    }
    this.expected = headers.expected;
    this.contentType = headers.contentType;
    this.contentEncoding = headers.contentEncoding;
    this.upstreamEtag = headers.upstreamEtag;
    this.upstreamLastModified = headers.upstreamLastModified;
    this.acceptRanges = headers.acceptRanges;
    this.mtimeSeconds = headers.mtimeSeconds;
    await this.openTemp();
    this.state = 'streaming';
    this.settleOutcome({ kind: 'streaming' });
    this.notify();
    const verify = this.ctx.startVerification(this);

    try {
      await this.receive(response);
      // The connection is done; the DIGESTS check that follows must not hold a slot another fill (its DIGESTS) needs.
      this.freeSlot();
      this.state = 'verifying';
      if (this.expected === undefined) this.expected = this.received;
      this.digestVerified = await verify(this.sha512.copy().digest('hex'));
      if (this.handle && !this.diskFailed) await this.handle.utimes(this.mtimeSeconds, this.mtimeSeconds);
    } catch (error) {
      return this.fail(error);
    }
    this.state = 'complete';
    this.notify();
    return this.keep();
  }

  private async openTemp(): Promise<void> {
    try {
      this.handle = await open(this.tempPath, 'wx+', 0o644);
      this.fillHoldsHandle = true;
      this.ino = (await this.handle.stat({ bigint: true })).ino;
    } catch (error) {
      // No temp file at all (disk full, too many open files): relay from memory, keep nothing.
      this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, err: error }, 'cannot create a temp file; relaying without caching');
      this.diskFailed = true;
      this.window = new MemoryWindow(0);
    }
  }

  private async receive(first: UpstreamResponse): Promise<void> {
    let response = first;
    let resumes = 0;
    for (;;) {
      let failure: unknown;
      try {
        await readBody(response.body, this.url, this.ctx.bodyInactivityMs, (chunk) => this.accept(chunk));
        if (this.expected === undefined || this.received === this.expected) return;
        failure = new UpstreamError(502, `upstream ${this.url} ended the body at ${this.received} of ${this.expected} bytes`, `body ended after ${this.received} of ${this.expected} bytes`);
      } catch (error) {
        if (!(error instanceof UpstreamError)) throw error;
        failure = error;
      }
      // Resume from where it broke; each failed attempt to resume counts too.
      for (;;) {
        if (!isResumable({ acceptRanges: this.acceptRanges, expected: this.expected, upstreamEtag: this.upstreamEtag }, this.received) || this.abortController.signal.aborted || resumes >= MAX_RESUMES) throw failure;
        resumes += 1;
        this.ctx.counters.resumes += 1;
        this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, from: this.received, of: this.expected, attempt: resumes, reason: (failure as Error).message }, 'mirror transfer broke; resuming');
        try {
          response = await requestResume(this.ctx.upstream, { url: this.url, from: this.received, expected: this.expected ?? 0, etag: this.upstreamEtag ?? '' }, { signal: this.abortController.signal, headersTimeoutMs: this.ctx.headersTimeoutMs });
          break;
        } catch (error) {
          if (error instanceof FillFailedError) throw error;
          failure = error;
        }
      }
    }
  }

  private async accept(chunk: Buffer): Promise<void> {
    if (this.abortController.signal.aborted) throw this.abortController.signal.reason as Error;
    if (this.expected !== undefined && this.received + chunk.length > this.expected) {
      throw new FillFailedError(`upstream ${this.url} sent more than its Content-Length of ${this.expected}`, 502, `body longer than its Content-Length of ${this.expected}`);
    }
    const position = this.received;
    this.sha512.update(chunk);
    this.sha256.update(chunk);
    if (!this.diskFailed && this.handle) {
      try {
        await this.ctx.writeChunk(this.handle, chunk, position);
        this.onDisk = position + chunk.length;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (!DISK_ERRORS.has(code)) throw error;
        this.diskFailed = true;
        this.window = new MemoryWindow(position, [chunk]);
        this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, code, at: position }, 'cache disk failed while filling; relaying the rest from memory, not caching');
      }
    } else this.window?.push(chunk);
    this.received = position + chunk.length;
    this.ctx.counters.upstreamBytes += chunk.length;
    this.notify();
    if (this.diskFailed) await this.makeWindowRoom();
  }

  /** Drops memory no reader needs; waits (and finally cuts off laggards) while the window is full. */
  private async makeWindowRoom(): Promise<void> {
    for (;;) {
      this.trimWindow();
      const window = this.window;
      if (!window || this.received - window.start <= WINDOW_LIMIT) return;
      const moved = this.readerProgress.promise.then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.ctx.bodyInactivityMs);
      });
      const progressed = await Promise.race([moved, timedOut]);
      clearTimeout(timer);
      if (this.abortController.signal.aborted) throw this.abortController.signal.reason as Error;
      if (!progressed) {
        const error = new FillFailedError(`client fell more than ${WINDOW_LIMIT} bytes behind a fill that cannot use the disk`);
        for (const reader of [...this.readers]) if (reader.position < this.received - WINDOW_LIMIT) reader.abort(error);
        this.notify();
      }
    }
  }

  private trimWindow(): void {
    const window = this.window;
    if (!window) return;
    let floor = this.received;
    for (const reader of this.readers) floor = Math.min(floor, Math.max(reader.position, this.onDisk));
    window.dropBefore(floor, this.received);
  }

  /** Ends a fill that never got to streaming (304, 404, upstream error). */
  private end(outcome: FillOutcome, error?: UpstreamError): { committed: boolean } {
    this.freeSlot();
    this.settleOutcome(outcome);
    if (error) {
      this.error = new FillFailedError(error.message, error.statusCode, error.brief);
      this.state = 'failed';
      if (!this.stoppedBy) this.ctx.counters.failedFills += 1;
    } else this.state = 'complete';
    this.checkInterest();
    this.finish();
    this.notify();
    return { committed: false };
  }

  private async fail(error: unknown): Promise<{ committed: boolean }> {
    this.freeSlot();
    const reason: unknown = this.abortController.signal.reason;
    // A stopped fill fails with the reason it was stopped, not with what the abort broke.
    const cause = this.stoppedBy && reason instanceof FillFailedError ? reason : error;
    const status = cause instanceof UpstreamError || cause instanceof FillFailedError ? cause.statusCode : 502;
    let brief = cause instanceof UpstreamError || cause instanceof FillFailedError ? cause.brief : (cause as Error).message;
    if (cause instanceof UpstreamStalledError) brief = `stalled after ${formatSize(this.received)}`;
    this.error = new FillFailedError((cause as Error).message, status, brief);
    this.state = 'failed';
    if (!this.stoppedBy) this.ctx.counters.failedFills += 1;
    this.checkInterest();
    this.settleOutcome({ kind: 'upstream-error', error: new UpstreamError(status === 504 ? 504 : 502, this.error.message, brief), staleAllowed: true });
    // Out of the map first, so the very next request starts a fresh fill.
    this.finish();
    this.notify();
    this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, received: this.received, expected: this.expected, readers: this.readers.size, reason: this.error.message }, 'mirror fill failed; nothing cached');
    await unlink(this.tempPath).catch(() => undefined);
    await this.releaseHandle();
    return { committed: false };
  }

  /** After a complete, verified body: commit it to the cache unless the disk failed or it was purged. */
  private async keep(): Promise<{ committed: boolean }> {
    let committed = false;
    try {
      if (!this.diskFailed && !this.discard && this.handle) {
        committed = await this.ctx.commit(this, this.meta(), this.handle);
      }
    } catch (error) {
      this.ctx.log.error({ path: `${this.mirror.name}/${this.path}`, err: error }, 'cannot keep a mirrored file in the cache; it was served but not kept');
    }
    this.finish();
    if (!committed) await unlink(this.tempPath).catch(() => undefined);
    await this.releaseHandle();
    return { committed };
  }

  private finish(): void {
    if (this.isFinished) return;
    this.isFinished = true;
    if (this.abandonTimer) clearTimeout(this.abandonTimer);
    this.abandonTimer = undefined;
    this.ctx.finished(this);
  }

  private async releaseHandle(): Promise<void> {
    this.fillHoldsHandle = false;
    await this.closeHandleIfUnused();
  }

  private async closeHandleIfUnused(): Promise<void> {
    if (this.fillHoldsHandle || this.handleUsers > 0 || !this.handle) return;
    const handle = this.handle;
    this.handle = undefined;
    await handle.close().catch(() => undefined);
  }

  private meta(): EntryMeta {
    const now = new Date(this.ctx.now()).toISOString();
    return {
      version: 1,
      id: this.id,
      mirror: this.mirror.name,
      path: this.path,
      upstreamUrl: this.url,
      size: this.received,
      contentType: this.contentType ?? '',
      ...(this.contentEncoding ? { contentEncoding: this.contentEncoding } : {}),
      ...(this.upstreamEtag ? { upstreamEtag: this.upstreamEtag } : {}),
      ...(this.upstreamLastModified ? { upstreamLastModified: this.upstreamLastModified } : {}),
      fetchedAt: now,
      validatedAt: now,
      lastUsedAt: now,
      hits: 0,
      sha256: this.sha256.digest('hex'),
      sha512: this.sha512.digest('hex'),
      digestVerified: this.digestVerified,
    };
  }
}
