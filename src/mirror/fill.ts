/**
 * A fill: the one upstream transfer of one file into a temp file in the cache, which every
 * client asking for that file meanwhile reads as it grows. This file is the transfer and its
 * lifecycle; the bytes and their readers are growing-file.ts, reading them is fill-reader.ts.
 *
 * The body is hashed on the way and handed to the growing file. A transfer that breaks is
 * resumed from the byte where it broke when the upstream allows it (strong ETag and byte
 * ranges): Range plus If-Match, and the 206's Content-Range must start exactly there. The fill
 * completes only when the byte count matches Content-Length (or a chunked body ended properly)
 * and the checks passed; only then do readers get the file's last byte, so a client of a fill
 * that fails never sees a complete response. Then the file is fsynced and renamed into the cache.
 *
 * A fill waits for an upstream slot before it sends anything (see fill-slots.ts) and gives the
 * slot back as soon as the body is in. It runs only while someone wants it: a reader, or a
 * request waiting for its answer (`hold`). When nobody does, it is stopped after
 * `abandonedFillTimeoutMs` (at once while it still waits for a slot) and its temp file removed.
 * Its state changes only inside this class; everyone else reads it through getters.
 */
import { createHash, type Hash } from 'node:crypto';
import { parseReprDigest } from '../assets/repr-digest.ts';
import { unlink, type FileHandle } from 'node:fs/promises';
import type { MirrorDefinition } from './config.ts';
import { FillFailedError } from './errors.ts';
import { GrowingFile, type GrowingFileReader } from './growing-file.ts';
import { asUpstreamError, conditionalHeaders, endToEndHeaders, isResumable, readFileHeaders, redirectPolicyFor, requestResume, type FileHeaders } from './fill-upstream.ts';
import type { EntryMeta, CacheDisk } from './cache-disk.ts';
import { initialAge, storability, type FreshnessPolicy } from './freshness.ts';
import { discardBody, headerValue, printableHeader, readBody, UpstreamError, UpstreamStalledError, type UpstreamClient, type UpstreamResponse } from './upstream.ts';

export { FillFailedError } from './errors.ts';
export { writeWholeChunk } from './growing-file.ts';

/** Asked of every upstream: a bootdepot origin then sends the digests a fill checks (SHA-512 first). */
export const WANT_REPR_DIGEST = 'sha-512=10, sha-256=5';

/** Resumes of one fill before it is given up. */
const MAX_RESUMES = 3;

export type FillState = 'requesting' | 'streaming' | 'verifying' | 'complete' | 'failed';

/** What the upstream's answer means for the requests waiting on it. */
export type FillOutcome =
  | { kind: 'streaming' }
  /** `headers`: the 304's end-to-end headers, which update the stored ones; times in ms. */
  | { kind: 'not-modified'; etag: string | undefined; lastModified: string | undefined; headers: Record<string, string>; requestTime: number; responseTime: number }
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

export type FillReaderLike = GrowingFileReader;

export interface FillCounters {
  upstreamBytes: number;
  digestMismatches: number;
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
  /** The normalised query the upstream is asked with ('' for none); `url` carries it too. */
  query: string;
  url: string;
  /** The mirror's freshness rules: whether an answer may be kept, and its age. */
  policy: FreshnessPolicy;
  /** The cached copy being revalidated: its validators make the request conditional. */
  revalidating?: { etag: string | undefined; lastModified: string | undefined };
  /** Another fill waits for this one (its DIGESTS): it goes ahead in the slot queue. */
  urgent?: boolean;
}

export class Fill {
  readonly key: string;
  readonly id: string;
  readonly mirror: MirrorDefinition;
  readonly path: string;
  readonly segments: readonly string[];
  readonly query: string;
  readonly url: string;
  readonly policy: FreshnessPolicy;
  readonly startedAt: number;
  readonly revalidation: boolean;
  readonly urgent: boolean;
  /** The temp file clients read as it grows: bytes, readers, the memory window. */
  readonly file: GrowingFile;

  readonly outcome: Promise<FillOutcome>;
  /** Resolves (never rejects) when the fill is over: committed or not. */
  readonly done: Promise<{ committed: boolean }>;

  private readonly ctx: FillContext;
  private readonly revalidating: FillRequest['revalidating'];
  private readonly abortController = new AbortController();
  private resolveOutcome!: (outcome: FillOutcome) => void;
  private outcomeSettled = false;
  private currentState: FillState = 'requesting';
  private failure: FillFailedError | undefined;
  private stopReason: FillStop | undefined;
  private slotPending = true;
  private verifiedByDigest = false;
  private headers: FileHeaders | undefined;
  private acceptRanges = false;
  private published: Map<'sha-256' | 'sha-512', string> | undefined;
  private readonly sha512: Hash = createHash('sha512');
  private readonly sha256: Hash = createHash('sha256');
  private isFinished = false;
  /** Requests waiting for this fill's answer (not yet readers). */
  private holds = 0;
  private abandonTimer: NodeJS.Timeout | undefined;
  private releaseSlot: (() => void) | undefined;
  private slowSinceAt: number | undefined;
  private discardRequested = false;
  private requestTime = 0;
  private responseTime = 0;
  private keepVerdict: { storable: true } | { storable: false; reason: string } = { storable: true };

  constructor(request: FillRequest, ctx: FillContext) {
    this.key = request.key;
    this.id = request.id;
    this.mirror = request.mirror;
    this.path = request.path;
    this.segments = request.segments;
    this.query = request.query;
    this.url = request.url;
    this.policy = request.policy;
    this.revalidating = request.revalidating;
    this.revalidation = request.revalidating !== undefined;
    this.urgent = request.urgent ?? false;
    this.ctx = ctx;
    this.startedAt = ctx.now();
    this.file = new GrowingFile({
      tempPath: ctx.store.tempPath(request.id),
      label: `${request.mirror.name}/${request.path}`,
      readerPatienceMs: ctx.bodyInactivityMs,
      writeChunk: (handle, chunk, position) => ctx.writeChunk(handle, chunk, position),
      warn: (fields, message) => ctx.log.warn(fields, message),
    });
    this.outcome = new Promise((resolve) => {
      this.resolveOutcome = resolve;
    });
    this.done = this.run();
  }

  get state(): FillState {
    return this.currentState;
  }

  /** Why the fill failed, once it did. */
  get error(): FillFailedError | undefined {
    return this.failure;
  }

  /** Set when the fill was stopped by the mirror rather than failed by the upstream. */
  get stoppedBy(): FillStop | undefined {
    return this.stopReason;
  }

  /** Still waiting for an upstream slot: nothing sent yet. */
  get waitingForSlot(): boolean {
    return this.slotPending;
  }

  get digestVerified(): boolean {
    return this.verifiedByDigest;
  }

  /** Body bytes received from the upstream. */
  get received(): number {
    return this.file.received;
  }

  /** Content-Length, or, for a chunked body, the byte count once it ended. */
  get expected(): number | undefined {
    return this.file.expected;
  }

  /**
   * The digests the upstream's Repr-Digest published (hex), which the body must match before its
   * last byte is released: safe to pass on to the fill's readers at once.
   */
  get publishedDigests(): { sha256?: string; sha512?: string } {
    const sha256 = this.published?.get('sha-256');
    const sha512 = this.published?.get('sha-512');
    return { ...(sha256 ? { sha256 } : {}), ...(sha512 ? { sha512 } : {}) };
  }

  get contentType(): string | undefined {
    return this.headers?.contentType;
  }

  get contentEncoding(): string | undefined {
    return this.headers?.contentEncoding;
  }

  get upstreamEtag(): string | undefined {
    return this.headers?.upstreamEtag;
  }

  /** The 200 carried an ETag or a Last-Modified. */
  get hasValidator(): boolean {
    return this.headers?.upstreamEtag !== undefined || this.headers?.upstreamLastModified !== undefined;
  }

  /** Whole seconds; set on the file before it is renamed, so validators predicted now hold later. */
  get mtimeSeconds(): number {
    return this.headers?.mtimeSeconds ?? 0;
  }

  /** When a version lookup found it slower than its budget (ms), so the next one need not wait again. */
  get slowSince(): number | undefined {
    return this.slowSinceAt;
  }

  /** A version lookup gave up waiting on this fill; the first time counts. */
  markSlow(at: number): void {
    this.slowSinceAt ??= at;
  }

  /** The upstream's end-to-end headers of the 200 (empty before it arrived). */
  get storedHeaders(): Readonly<Record<string, string>> {
    return this.headers?.stored ?? {};
  }

  /** The 200's age when it arrived, seconds. */
  get initialAgeSeconds(): number {
    return this.headers ? initialAge(this.headers.stored, this.requestTime, this.responseTime, this.policy) : 0;
  }

  /** When the 200's headers arrived (ms). */
  get respondedAt(): number {
    return this.responseTime;
  }

  /**
   * False when the upstream's answer may not be kept (no-store, private, Vary): it is served to
   * the request that started the fill and nothing is kept; `notKeptBecause` says why.
   */
  get storable(): boolean {
    return this.keepVerdict.storable;
  }

  get notKeptBecause(): string | undefined {
    return this.keepVerdict.storable ? undefined : this.keepVerdict.reason;
  }

  /** Purged while filling: serve the clients, keep nothing. */
  get discard(): boolean {
    return this.discardRequested;
  }

  discardResult(): void {
    this.discardRequested = true;
  }

  /** End (exclusive) of the bytes a reader may take now; the last byte only once complete. */
  availableEnd(): number {
    return this.file.availableEnd(this.currentState === 'complete');
  }

  /** Resolves at the next change: bytes arrived, the state moved, a reader was cut off. */
  changed(): Promise<void> {
    return this.file.changed();
  }

  /** True while a new reader can still get every byte from the first (false after disk trouble trimmed memory). */
  servesFromStart(): boolean {
    return this.currentState !== 'failed' && this.file.servesFromStart();
  }

  /**
   * Registers a reader; it keeps the temp file's handle open until it detaches. False when the
   * fill is over and its handle already closed: the caller then looks in the cache instead.
   */
  attach(reader: FillReaderLike): boolean {
    return this.file.attach(reader);
  }

  detach(reader: FillReaderLike): void {
    if (this.file.detach(reader)) this.checkInterest();
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
    return this.holds + this.file.readerCount > 0;
  }

  /** Stops the fill: clients are cut off and nothing is kept. */
  abort(reason: string): void {
    this.stop('shutdown', reason);
  }

  private checkInterest(): void {
    if (this.wanted || this.isFinished || (this.currentState !== 'requesting' && this.currentState !== 'streaming')) {
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      this.abandonTimer = undefined;
      return;
    }
    if (this.abandonTimer) return;
    // Nothing was sent yet: nobody loses anything if it never is.
    if (this.slotPending) {
      this.stop('abandoned', 'nobody waits for it any more');
      return;
    }
    this.abandonTimer = setTimeout(() => {
      this.abandonTimer = undefined;
      if (!this.wanted) this.stop('abandoned', `nobody read it for ${this.ctx.abandonedFillTimeoutMs / 1000} s`);
    }, this.ctx.abandonedFillTimeoutMs);
  }

  private stop(by: FillStop, reason: string): void {
    if (this.abortController.signal.aborted) return;
    this.stopReason = by;
    if (by === 'abandoned') this.ctx.counters.abandonedFills += 1;
    this.abortController.abort(new FillFailedError(`${this.mirror.name}/${this.path}: transfer stopped: ${reason}`, 503, `stopped: ${reason}`));
  }

  private freeSlot(): void {
    this.releaseSlot?.();
    this.releaseSlot = undefined;
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
      this.slotPending = false;
      this.requestTime = this.ctx.now();
      response = await this.ctx.upstream.send(this.url, { ...conditionalHeaders(this.revalidating), 'want-repr-digest': WANT_REPR_DIGEST }, { signal: this.abortController.signal, redirects: redirectPolicyFor(this.mirror) });
    } catch (error) {
      this.slotPending = false;
      const upstreamError = asUpstreamError(error, this.url, this.abortController.signal);
      return this.end({ kind: 'upstream-error', error: upstreamError, staleAllowed: true }, upstreamError);
    }
    this.responseTime = this.ctx.now();
    const status = response.statusCode;
    if (status !== 200) {
      await discardBody(response.body, this.ctx.headersTimeoutMs);
      if (status === 304 && this.revalidating) {
        return this.end({
          kind: 'not-modified',
          etag: printableHeader(headerValue(response.headers, 'etag')),
          lastModified: printableHeader(headerValue(response.headers, 'last-modified')),
          headers: endToEndHeaders(response.headers),
          requestTime: this.requestTime,
          responseTime: this.responseTime,
        });
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
    let reprDigest: Map<'sha-256' | 'sha-512', string> | undefined;
    try {
      reprDigest = parseReprDigest(headerValue(response.headers, 'repr-digest'));
    } catch (error) {
      // A digest that cannot be read vouches for nothing: better no file than an unchecked one the upstream meant to check.
      response.body.once('error', () => undefined).destroy();
      const refused = new UpstreamError(502, `upstream ${this.url}: ${(error as Error).message}`, 'malformed Repr-Digest');
      return this.end({ kind: 'upstream-error', error: refused, staleAllowed: true }, refused);
    }
    this.headers = headers;
    this.keepVerdict = storability(headers.stored, this.policy);
    this.published = reprDigest;
    this.acceptRanges = headers.acceptRanges;
    this.file.setLength(headers.expected);
    await this.file.open();
    this.currentState = 'streaming';
    this.settleOutcome({ kind: 'streaming' });
    this.file.notify();
    const verify = this.ctx.startVerification(this);

    try {
      await this.receive(response);
      // The connection is done; the DIGESTS check that follows must not hold a slot another fill (its DIGESTS) needs.
      this.freeSlot();
      this.currentState = 'verifying';
      if (this.file.expected === undefined) this.file.setLength(this.file.received);
      const matchedReprDigest = this.checkReprDigest(reprDigest);
      this.verifiedByDigest = (await verify(this.sha512.copy().digest('hex'))) || matchedReprDigest;
      await this.file.setMtime(headers.mtimeSeconds);
    } catch (error) {
      return this.fail(error);
    }
    this.currentState = 'complete';
    this.file.notify();
    return this.keep();
  }

  /**
   * The body against the upstream's Repr-Digest (RFC 9530; a bootdepot origin sends one): true
   * when it named SHA-256 or SHA-512 and every one it named matched, false when it named neither.
   * Throws on a mismatch: the fill fails, so nothing is kept and no client gets the last byte.
   */
  private checkReprDigest(published: Map<'sha-256' | 'sha-512', string> | undefined): boolean {
    if (!published || published.size === 0) return false;
    const body = { 'sha-256': this.sha256.copy().digest('hex'), 'sha-512': this.sha512.copy().digest('hex') };
    for (const [algorithm, hex] of published) {
      if (body[algorithm] === hex) continue;
      this.ctx.counters.digestMismatches += 1;
      this.ctx.log.error({ path: `${this.mirror.name}/${this.path}`, upstream: this.url, algorithm, published: hex.slice(0, 16), received: body[algorithm].slice(0, 16), bytes: this.received }, 'mirrored file does not match the upstream\'s Repr-Digest; nothing kept, its clients cut off');
      throw new FillFailedError(`${algorithm} of ${this.mirror.name}/${this.path} does not match the upstream's Repr-Digest: got ${body[algorithm].slice(0, 16)}..., published ${hex.slice(0, 16)}...`, 502, `${algorithm} does not match the upstream's Repr-Digest`);
    }
    return true;
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
        const upstreamEtag = this.headers?.upstreamEtag;
        if (!isResumable({ acceptRanges: this.acceptRanges, expected: this.expected, upstreamEtag }, this.received) || this.abortController.signal.aborted || resumes >= MAX_RESUMES) throw failure;
        resumes += 1;
        this.ctx.counters.resumes += 1;
        this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, from: this.received, of: this.expected, attempt: resumes, reason: (failure as Error).message }, 'mirror transfer broke; resuming');
        try {
          response = await requestResume(this.ctx.upstream, { url: this.url, from: this.received, expected: this.expected ?? 0, etag: upstreamEtag ?? '' }, { signal: this.abortController.signal, headersTimeoutMs: this.ctx.headersTimeoutMs });
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
    this.sha512.update(chunk);
    this.sha256.update(chunk);
    this.ctx.counters.upstreamBytes += chunk.length;
    await this.file.append(chunk, this.abortController.signal);
  }

  /** Ends a fill that never got to streaming (304, 404, upstream error). */
  private end(outcome: FillOutcome, error?: UpstreamError): { committed: boolean } {
    this.freeSlot();
    this.settleOutcome(outcome);
    if (error) {
      this.failure = new FillFailedError(error.message, error.statusCode, error.brief);
      this.currentState = 'failed';
      if (!this.stopReason) this.ctx.counters.failedFills += 1;
    } else this.currentState = 'complete';
    this.checkInterest();
    this.finish();
    this.file.notify();
    return { committed: false };
  }

  private async fail(error: unknown): Promise<{ committed: boolean }> {
    this.freeSlot();
    const reason: unknown = this.abortController.signal.reason;
    // A stopped fill fails with the reason it was stopped, not with what the abort broke.
    const cause = this.stopReason && reason instanceof FillFailedError ? reason : error;
    const status = cause instanceof UpstreamError || cause instanceof FillFailedError ? cause.statusCode : 502;
    let brief = cause instanceof UpstreamError || cause instanceof FillFailedError ? cause.brief : (cause as Error).message;
    if (cause instanceof UpstreamStalledError) brief = `stalled after ${formatSize(this.received)}`;
    const failure = new FillFailedError((cause as Error).message, status, brief);
    this.failure = failure;
    this.currentState = 'failed';
    if (!this.stopReason) this.ctx.counters.failedFills += 1;
    this.checkInterest();
    this.settleOutcome({ kind: 'upstream-error', error: new UpstreamError(status === 504 ? 504 : 502, failure.message, brief), staleAllowed: true });
    // Out of the map first, so the very next request starts a fresh fill.
    this.finish();
    this.file.notify();
    this.ctx.log.warn({ path: `${this.mirror.name}/${this.path}`, received: this.received, expected: this.expected, readers: this.file.readerCount, reason: failure.message }, 'mirror fill failed; nothing cached');
    await unlink(this.file.tempPath).catch(() => undefined);
    await this.file.release();
    return { committed: false };
  }

  /** After a complete, verified body: commit it to the cache unless the disk failed or it was purged. */
  private async keep(): Promise<{ committed: boolean }> {
    let committed = false;
    const handle = this.file.handle;
    try {
      if (!this.file.diskFailed && !this.discard && handle) {
        committed = await this.ctx.commit(this, this.meta(), handle);
      }
    } catch (error) {
      this.ctx.log.error({ path: `${this.mirror.name}/${this.path}`, err: error }, 'cannot keep a mirrored file in the cache; it was served but not kept');
    }
    this.finish();
    if (!committed) await unlink(this.file.tempPath).catch(() => undefined);
    await this.file.release();
    return { committed };
  }

  private finish(): void {
    if (this.isFinished) return;
    this.isFinished = true;
    if (this.abandonTimer) clearTimeout(this.abandonTimer);
    this.abandonTimer = undefined;
    this.ctx.finished(this);
  }

  private meta(): EntryMeta {
    const now = new Date(this.ctx.now()).toISOString();
    const headers = this.headers;
    return {
      version: 1,
      id: this.id,
      mirror: this.mirror.name,
      path: this.path,
      upstreamUrl: this.url,
      ...(this.query !== '' ? { query: this.query } : {}),
      size: this.received,
      contentType: headers?.contentType ?? '',
      ...(headers?.contentEncoding ? { contentEncoding: headers.contentEncoding } : {}),
      ...(headers?.upstreamEtag ? { upstreamEtag: headers.upstreamEtag } : {}),
      ...(headers?.upstreamLastModified ? { upstreamLastModified: headers.upstreamLastModified } : {}),
      headers: { ...(headers?.stored ?? {}) },
      initialAge: this.initialAgeSeconds,
      fetchedAt: now,
      // Freshness counts from the answer's arrival, not from the end of a long body.
      validatedAt: new Date(this.responseTime).toISOString(),
      lastUsedAt: now,
      hits: 0,
      sha256: this.sha256.digest('hex'),
      sha512: this.sha512.digest('hex'),
      digestVerified: this.verifiedByDigest,
    };
  }
}
