/**
 * The pull-through mirror: named upstreams, a byte-bounded cache on disk, and at most one
 * upstream transfer per file at any time.
 *
 * A request looks in this order: a fill in progress for the file (join it: it is the freshest
 * source and costs the upstream nothing), a cached copy that is fresh (versioned paths always
 * are; mutable ones for `mutableMaxAge`), a remembered upstream 404, and otherwise starts a fill.
 * A fill for a stale mutable copy is a conditional request; its 304 refreshes the copy, its 200
 * replaces it, and an upstream failure serves the stale copy (stale-if-error). The check and the
 * start of a fill happen in one synchronous step, so concurrent requests can never start two.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { MirrorDefinition, MirrorSettings } from './config.ts';
import { publishedSha512 } from './digests.ts';
import { Fill, FillFailedError, writeWholeChunk, type FillContext, type FillOutcome, type Verifier } from './fill.ts';
import { FillReader } from './fill-reader.ts';
import { cacheKey, digestsPathFor, isImmutablePath, mirrorPathSegments, splitMirrorPath, upstreamUrl } from './paths.ts';
import { CacheIndex, newObjectId, ObjectStore, type CacheEntry, type EntryMeta, type Lease } from './store.ts';
import { UpstreamClient, type UpstreamResponse } from './upstream.ts';
import type { FileHandle } from 'node:fs/promises';

export interface MirrorLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const silent: MirrorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** An answer that is not a file: the status and a message for the client. */
export class MirrorError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'MirrorError';
    this.status = status;
  }
}

/** Where a request's bytes come from. The caller releases the lease or closes the reader. */
export type MirrorSource =
  | { kind: 'cached'; lease: Lease; immutable: boolean; stale: boolean }
  | { kind: 'filling'; reader: FillReader; immutable: boolean }
  /** The fill in progress lost its disk and can no longer give a newcomer the first bytes. */
  | { kind: 'passthrough'; url: string; immutable: boolean }
  | { kind: 'error'; status: number; message: string };

export interface MirrorStats {
  /** Requests answered from a complete cached file (including after a 304 revalidation). */
  hits: number;
  /** Requests that started an upstream transfer. */
  misses: number;
  /** Requests that joined a transfer another request had started. */
  coalesced: number;
  /** Body bytes received from upstreams. */
  upstreamBytes: number;
  /** Transfers that ended without a usable file (upstream error, broken body, digest mismatch). */
  failedFills: number;
  /** Files deleted to stay within the byte budget. */
  evictions: number;
  /** Requests answered with a stale copy because the upstream failed. */
  staleServed: number;
  /** Requests answered 404 from the remembered upstream 404. */
  notFoundCached: number;
  /** Conditional requests sent upstream for stale mutable files. */
  revalidations: number;
  /** Broken transfers continued with a Range request. */
  resumes: number;
  cachedFiles: number;
  cachedBytes: number;
  maxBytes: number;
  activeFills: number;
}

export interface CachedFileInfo {
  mirror: string;
  path: string;
  size: number;
  /** Seconds since the file was fetched. */
  age: number;
  hits: number;
  fetchedAt: string;
  validatedAt: string;
  lastUsedAt: string;
  immutable: boolean;
  sha512: string;
  digestVerified: boolean;
  readers: number;
}

export interface FillingFileInfo {
  mirror: string;
  path: string;
  bytes: number;
  total: number | null;
  startedAt: string;
}

export type WarmOutcome = 'filled' | 'cached' | 'not-found' | 'failed';

export interface WarmResult {
  /** As asked: `MIRROR/path`. */
  path: string;
  outcome: WarmOutcome;
  bytes: number;
  error?: string;
}

export type WarmEvent = { type: 'progress'; path: string; bytes: number; total: number | null } | { type: 'result'; result: WarmResult };

export interface WarmSummary {
  requested: number;
  filled: number;
  cached: number;
  notFound: number;
  failed: number;
  /** Bytes of the files now in the cache, fetched or already there. */
  bytes: number;
}

export interface MirrorOptions {
  settings: MirrorSettings;
  log?: MirrorLogger;
  now?: () => number;
  /** Writes a chunk to a temp file; tests pass one that fails like a full disk. */
  writeChunk?: (handle: FileHandle, chunk: Buffer, position: number) => Promise<void>;
}

/** Largest DIGESTS or version.txt read through the mirror. */
const SMALL_FILE_LIMIT = 1024 * 1024;
const WARM_CONCURRENCY = 4;
const WARM_PROGRESS_INTERVAL_MS = 250;

export class PullThroughMirror {
  readonly settings: MirrorSettings;
  private readonly store: ObjectStore;
  private readonly index: CacheIndex;
  private readonly upstream: UpstreamClient;
  private readonly fills = new Map<string, Fill>();
  private readonly notFound: LRUCache<string, true> | undefined;
  private readonly log: MirrorLogger;
  private readonly now: () => number;
  private readonly fillContext: FillContext;
  private readonly counters = {
    hits: 0,
    misses: 0,
    coalesced: 0,
    upstreamBytes: 0,
    failedFills: 0,
    evictions: 0,
    staleServed: 0,
    notFoundCached: 0,
    revalidations: 0,
    resumes: 0,
  };
  private closing = false;

  private constructor(options: MirrorOptions) {
    this.settings = options.settings;
    this.log = options.log ?? silent;
    this.now = options.now ?? Date.now;
    this.store = new ObjectStore(options.settings.cacheDir);
    this.upstream = new UpstreamClient(options.settings);
    this.notFound = options.settings.notFoundTtlMs > 0 ? new LRUCache<string, true>({ max: 10_000, ttl: options.settings.notFoundTtlMs }) : undefined;
    this.index = new CacheIndex(this.store, options.settings.maxBytes, {
      evicted: (entry) => {
        this.counters.evictions += 1;
        this.log.info({ path: entry.key, bytes: entry.meta.size, readers: entry.readers }, 'mirror cache evicted a file');
      },
      fileError: (entry, action, error) => this.log.error({ path: entry.key, err: error }, `mirror cache: cannot ${action}`),
    });
    this.fillContext = {
      upstream: this.upstream,
      store: this.store,
      counters: this.counters,
      log: this.log,
      bodyInactivityMs: options.settings.bodyInactivityMs,
      headersTimeoutMs: options.settings.headersTimeoutMs,
      now: this.now,
      writeChunk: options.writeChunk ?? writeWholeChunk,
      startVerification: (fill) => this.startVerification(fill),
      commit: (fill, meta, handle) => this.commit(fill, meta, handle),
      finished: (fill) => {
        if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
      },
    };
  }

  /** Opens the cache: removes leftovers of interrupted fills and rebuilds the index from disk. */
  static async open(options: MirrorOptions): Promise<PullThroughMirror> {
    const mirror = new PullThroughMirror(options);
    await mirror.load();
    return mirror;
  }

  private async load(): Promise<void> {
    const strays = await this.store.prepare();
    if (strays.length > 0) this.log.warn({ files: strays }, 'removed temp files of interrupted mirror fills');
    const { entries, removed } = await this.store.scan((meta) => {
      const mirror = this.settings.mirrors[meta.mirror];
      const segments = mirrorPathSegments(meta.path);
      // A file from an upstream no longer configured for that name is not what the name serves now.
      return mirror !== undefined && segments !== undefined && meta.upstreamUrl === upstreamUrl(mirror.url, segments);
    });
    if (removed.length > 0) this.log.warn({ objects: removed.length }, 'removed incomplete or unconfigured mirror cache files');
    // Oldest use first, so the index's recency order survives the restart; newest copy of a path wins.
    entries.sort((a, b) => Date.parse(a.lastUsedAt) - Date.parse(b.lastUsedAt) || Date.parse(a.fetchedAt) - Date.parse(b.fetchedAt));
    for (const meta of entries) {
      const existing = this.index.peek(cacheKey(meta.mirror, meta.path));
      if (existing && Date.parse(existing.meta.fetchedAt) > Date.parse(meta.fetchedAt)) {
        await this.store.remove(meta.id);
        continue;
      }
      if (!this.index.insert(meta)) await this.store.remove(meta.id);
    }
    await this.index.settled();
    this.log.info({ cacheDir: this.settings.cacheDir, files: this.index.size, bytes: this.index.usedBytes, maxBytes: this.settings.maxBytes }, 'mirror cache ready');
  }

  mirrors(): MirrorDefinition[] {
    return Object.values(this.settings.mirrors);
  }

  /**
   * Finds the source for a request of `path` under mirror `name`: the cached file, the fill in
   * progress, or an error to answer with. Waits for the upstream's headers when it has to ask.
   * `counted: false` keeps internal reads (digests, warm, version lookups) out of the hit counts.
   */
  async lookup(name: string, relativePath: string, options: { counted?: boolean } = {}): Promise<MirrorSource> {
    const counted = options.counted ?? true;
    const mirror = this.settings.mirrors[name];
    if (!mirror) return { kind: 'error', status: 404, message: `no mirror named ${JSON.stringify(name)}` };
    const segments = mirrorPathSegments(relativePath);
    if (!segments) return { kind: 'error', status: 400, message: `invalid path ${JSON.stringify(relativePath)}: no empty, "." or ".." segments, dotfiles, backslashes or NUL` };
    const key = cacheKey(name, relativePath);
    const immutable = isImmutablePath(segments);

    // A fill can end between its outcome and a reader attaching; then the cache has the file.
    for (let attempt = 0; attempt < 3; attempt++) {
      const active = this.fills.get(key);
      if (active) {
        if (counted) this.counters.coalesced += 1;
        const source = await this.fromFill(active, immutable, counted);
        if (source) return source;
        continue;
      }
      const entry = this.index.get(key);
      if (entry && (immutable || this.now() - Date.parse(entry.meta.validatedAt) < this.settings.mutableMaxAgeMs)) {
        if (counted) this.counters.hits += 1;
        return this.leaseEntry(entry, immutable, false, counted);
      }
      if (!entry && this.notFound?.get(key)) {
        if (counted) this.counters.notFoundCached += 1;
        return { kind: 'error', status: 404, message: `not found upstream: ${upstreamUrl(mirror.url, segments)}` };
      }
      if (this.closing) return { kind: 'error', status: 503, message: 'the mirror is shutting down' };
      const fill = this.startFill(mirror, key, relativePath, segments, entry);
      if (entry) this.counters.revalidations += 1;
      else if (counted) this.counters.misses += 1;
      const source = await this.fromFill(fill, immutable, counted);
      if (source) return source;
    }
    return { kind: 'error', status: 503, message: `${name}/${relativePath} is changing too fast; try again` };
  }

  private startFill(mirror: MirrorDefinition, key: string, relativePath: string, segments: string[], stale: CacheEntry | undefined): Fill {
    const fill = new Fill(
      {
        key,
        id: newObjectId(),
        mirror,
        path: relativePath,
        segments,
        url: upstreamUrl(mirror.url, segments),
        ...(stale ? { revalidating: { etag: stale.meta.upstreamEtag, lastModified: stale.meta.upstreamLastModified } } : {}),
      },
      this.fillContext,
    );
    this.fills.set(key, fill);
    // Registered before any waiter's, so the cache reflects the answer by the time they look.
    void fill.outcome.then((outcome) => this.applyOutcome(fill, outcome));
    return fill;
  }

  private applyOutcome(fill: Fill, outcome: FillOutcome): void {
    if (outcome.kind === 'not-modified') {
      const entry = this.index.peek(fill.key);
      if (!entry) return;
      entry.meta.validatedAt = new Date(this.now()).toISOString();
      if (outcome.etag) entry.meta.upstreamEtag = outcome.etag;
      if (outcome.lastModified) entry.meta.upstreamLastModified = outcome.lastModified;
      this.index.persistMeta(entry);
    } else if (outcome.kind === 'not-found') {
      this.notFound?.set(fill.key, true);
      // A mutable file that is gone upstream is gone here too.
      this.index.delete(fill.key);
    } else if (outcome.kind === 'upstream-error' && !(outcome.staleAllowed && this.index.peek(fill.key))) {
      this.log.warn({ path: fill.key, reason: outcome.error.message }, 'mirror upstream failed');
    }
  }

  /** The source a fill's outcome gives one request; undefined when the fill ended under it (look again). */
  private async fromFill(fill: Fill, immutable: boolean, counted: boolean): Promise<MirrorSource | undefined> {
    const outcome = await fill.outcome;
    switch (outcome.kind) {
      case 'streaming': {
        if (fill.state === 'failed') return { kind: 'error', status: fill.error?.status ?? 502, message: fill.error?.message ?? 'upstream transfer failed' };
        if (!fill.servesFromStart()) return { kind: 'passthrough', url: fill.url, immutable };
        const reader = FillReader.attach(fill);
        return reader ? { kind: 'filling', reader, immutable } : undefined;
      }
      case 'not-modified': {
        const entry = this.index.get(fill.key);
        if (!entry) return undefined;
        if (counted) this.counters.hits += 1;
        return this.leaseEntry(entry, immutable, false, counted);
      }
      case 'not-found':
        return { kind: 'error', status: 404, message: `not found upstream: ${fill.url}` };
      case 'upstream-error': {
        const stale = this.index.get(fill.key);
        if (stale && outcome.staleAllowed) {
          this.counters.staleServed += 1;
          this.log.warn({ path: fill.key, reason: outcome.error.message, validatedAt: stale.meta.validatedAt }, 'mirror upstream failed; serving the stale copy');
          return this.leaseEntry(stale, immutable, true, counted);
        }
        return { kind: 'error', status: outcome.error.status, message: outcome.error.message };
      }
    }
  }

  private leaseEntry(entry: CacheEntry, immutable: boolean, stale: boolean, counted: boolean): MirrorSource {
    if (counted) this.index.recordUse(entry, this.now());
    return { kind: 'cached', lease: this.index.lease(entry), immutable, stale };
  }

  /** Starts fetching the file's DIGESTS as the body starts, so the check at the end rarely waits. */
  private startVerification(fill: Fill): Verifier {
    const digestsPath = fill.mirror.flatcarDigests ? digestsPathFor(fill.segments) : undefined;
    if (!digestsPath) return () => Promise.resolve(false);
    const digests = this.readText(fill.mirror.name, digestsPath, SMALL_FILE_LIMIT).then(
      (text) => ({ text, error: undefined }),
      (error: unknown) => ({ text: undefined, error: error as Error }),
    );
    const basename = fill.segments[fill.segments.length - 1] ?? '';
    return async (sha512) => {
      const { text, error } = await digests;
      if (text === undefined) {
        if (error instanceof MirrorError && error.status === 404) {
          this.log.info({ path: fill.key }, 'no DIGESTS published upstream; kept without a digest check');
          return false;
        }
        throw new FillFailedError(`cannot check ${fill.key} against ${digestsPath}: ${error?.message ?? 'unknown error'}`);
      }
      const published = publishedSha512(text, basename);
      if (published === undefined) {
        this.log.warn({ path: fill.key, digests: digestsPath }, 'DIGESTS lists no SHA-512 for this file; kept without a digest check');
        return false;
      }
      if (published !== sha512) throw new FillFailedError(`SHA-512 of ${fill.key} does not match ${digestsPath}: got ${sha512.slice(0, 16)}..., published ${published.slice(0, 16)}...`);
      return true;
    };
  }

  private async commit(fill: Fill, meta: EntryMeta, handle: FileHandle): Promise<boolean> {
    if (Math.max(1, meta.size) > this.settings.maxBytes) {
      this.log.warn({ path: fill.key, bytes: meta.size, maxBytes: this.settings.maxBytes }, 'mirrored file is larger than the whole cache; served but not kept');
      return false;
    }
    await this.store.commit(handle, meta);
    // Purged while the data was being synced: drop it again. (A close lets a verified file in.)
    if (fill.discard || !this.index.insert(meta)) {
      await this.store.remove(meta.id);
      return false;
    }
    this.log.info({ path: fill.key, bytes: meta.size, sha512: meta.sha512.slice(0, 16), digestVerified: meta.digestVerified, ms: Math.round(this.now() - fill.startedAt) }, 'mirror cached a file');
    return true;
  }

  /** Opens a request straight to the upstream for a client that cannot ride the current fill. */
  passthrough(url: string, method: 'GET' | 'HEAD'): Promise<UpstreamResponse> {
    return this.upstream.send(url, {}, { method });
  }

  /**
   * A small file's text through the cache (DIGESTS, version.txt): fetched and kept like any
   * other file. Throws a {@link MirrorError} when it cannot be had, or is larger than `maxBytes`.
   */
  async readText(name: string, relativePath: string, maxBytes = SMALL_FILE_LIMIT): Promise<string> {
    const source = await this.lookup(name, relativePath, { counted: false });
    switch (source.kind) {
      case 'error':
        throw new MirrorError(source.status, source.message);
      case 'passthrough':
        throw new MirrorError(503, `${name}/${relativePath} cannot be read while the cache disk is failing`);
      case 'cached': {
        try {
          if (source.lease.entry.meta.size > maxBytes) throw new MirrorError(502, `${name}/${relativePath} is larger than ${maxBytes} bytes`);
          const handle = await open(source.lease.file, 'r');
          try {
            return (await handle.readFile()).toString('utf8');
          } finally {
            await handle.close();
          }
        } finally {
          source.lease.release();
        }
      }
      case 'filling': {
        const { reader } = source;
        try {
          await reader.complete();
          const size = reader.fill.expected ?? 0;
          if (size > maxBytes) throw new MirrorError(502, `${name}/${relativePath} is larger than ${maxBytes} bytes`);
          const buffer = Buffer.alloc(size);
          let position = 0;
          while (position < size) {
            const { bytesRead } = await reader.read(buffer, position, size - position, position);
            if (bytesRead === 0) break;
            position += bytesRead;
          }
          return buffer.subarray(0, position).toString('utf8');
        } catch (error) {
          if (error instanceof MirrorError) throw error;
          throw new MirrorError((error as FillFailedError).status ?? 502, (error as Error).message);
        } finally {
          reader.close();
        }
      }
    }
  }

  /**
   * Fills the cache with `MIRROR/path` files ahead of boots, a few at a time. Reports progress
   * and each result through `onEvent`; never throws for a single file.
   */
  async warm(paths: readonly string[], onEvent: (event: WarmEvent) => void = () => undefined): Promise<{ results: WarmResult[]; summary: WarmSummary }> {
    const results: WarmResult[] = new Array<WarmResult>(paths.length);
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const index = next++;
        const asked = paths[index] ?? '';
        const result = await this.warmOne(asked, onEvent);
        results[index] = result;
        onEvent({ type: 'result', result });
      }
    };
    await Promise.all(Array.from({ length: Math.min(WARM_CONCURRENCY, paths.length) }, worker));
    const summary: WarmSummary = { requested: paths.length, filled: 0, cached: 0, notFound: 0, failed: 0, bytes: 0 };
    for (const result of results) {
      if (result.outcome === 'filled') summary.filled += 1;
      else if (result.outcome === 'cached') summary.cached += 1;
      else if (result.outcome === 'not-found') summary.notFound += 1;
      else summary.failed += 1;
      summary.bytes += result.bytes;
    }
    return { results, summary };
  }

  private async warmOne(asked: string, onEvent: (event: WarmEvent) => void): Promise<WarmResult> {
    const parsed = splitMirrorPath(asked);
    if (!parsed) return { path: asked, outcome: 'failed', bytes: 0, error: 'expected MIRROR/path, e.g. flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz' };
    const source = await this.lookup(parsed.mirror, parsed.path, { counted: false });
    switch (source.kind) {
      case 'error':
        return { path: asked, outcome: source.status === 404 ? 'not-found' : 'failed', bytes: 0, error: source.message };
      case 'passthrough':
        return { path: asked, outcome: 'failed', bytes: 0, error: 'the cache disk is failing; nothing can be kept' };
      case 'cached': {
        const bytes = source.lease.entry.meta.size;
        source.lease.release();
        return { path: asked, outcome: 'cached', bytes };
      }
      case 'filling': {
        const { fill } = source.reader;
        source.reader.close();
        let reported = 0;
        // One pass per change of the fill; it ends when the fill does.
        while (fill.state === 'requesting' || fill.state === 'streaming' || fill.state === 'verifying') {
          await Promise.race([fill.changed(), fill.done]);
          const now = this.now();
          if (now - reported >= WARM_PROGRESS_INTERVAL_MS) {
            reported = now;
            onEvent({ type: 'progress', path: asked, bytes: fill.received, total: fill.expected ?? null });
          }
        }
        const { committed } = await fill.done;
        if (fill.state === 'failed') return { path: asked, outcome: 'failed', bytes: 0, error: fill.error?.message ?? 'transfer failed' };
        if (!committed) return { path: asked, outcome: 'failed', bytes: 0, error: 'fetched but not kept (disk full, purged, or larger than the cache)' };
        onEvent({ type: 'progress', path: asked, bytes: fill.received, total: fill.received });
        return { path: asked, outcome: 'filled', bytes: fill.received };
      }
    }
  }

  /** Cached files, most recently used first. */
  list(): CachedFileInfo[] {
    const now = this.now();
    return this.index.entries().map(({ meta, readers }) => ({
      mirror: meta.mirror,
      path: meta.path,
      size: meta.size,
      age: Math.max(0, Math.round((now - Date.parse(meta.fetchedAt)) / 1000)),
      hits: meta.hits,
      fetchedAt: meta.fetchedAt,
      validatedAt: meta.validatedAt,
      lastUsedAt: meta.lastUsedAt,
      immutable: isImmutablePath(meta.path.split('/')),
      sha512: meta.sha512,
      digestVerified: meta.digestVerified,
      readers,
    }));
  }

  filling(): FillingFileInfo[] {
    return [...this.fills.values()].map((fill) => ({
      mirror: fill.mirror.name,
      path: fill.path,
      bytes: fill.received,
      total: fill.expected ?? null,
      startedAt: new Date(fill.startedAt).toISOString(),
    }));
  }

  /**
   * Forgets a file: deletes the cached copy (once its readers are done), the remembered 404,
   * and makes a fill in progress serve its clients without keeping the result. False when there
   * was nothing to forget.
   */
  purge(name: string, relativePath: string): boolean {
    const key = cacheKey(name, relativePath);
    const fill = this.fills.get(key);
    if (fill) fill.discard = true;
    const notFound = this.notFound?.delete(key) ?? false;
    return this.index.delete(key) || fill !== undefined || notFound;
  }

  /** Forgets every file; returns how many cached files were dropped. */
  purgeAll(): number {
    for (const fill of this.fills.values()) fill.discard = true;
    this.notFound?.clear();
    return this.index.clear();
  }

  stats(): MirrorStats {
    return { ...this.counters, cachedFiles: this.index.size, cachedBytes: this.index.usedBytes, maxBytes: this.settings.maxBytes, activeFills: this.fills.size };
  }

  /** Resolves when no fill is running and deferred deletes and sidecar writes have finished. */
  async settled(): Promise<void> {
    // Each pass waits for the fills running at its start; fills end, so this ends.
    while (this.fills.size > 0) await Promise.all([...this.fills.values()].map((fill) => fill.done));
    await this.index.settled();
  }

  /** Stops every fill (their clients are cut off, nothing partial is kept) and closes connections. */
  async close(): Promise<void> {
    this.closing = true;
    const fills = [...this.fills.values()];
    for (const fill of fills) fill.abort('the mirror is shutting down');
    await Promise.all(fills.map((fill) => fill.done));
    this.index.saveUse();
    await this.index.settled();
    await this.upstream.destroy();
  }

  /** The cache directory's object file for a cached path (tests and diagnostics). */
  objectFile(name: string, relativePath: string): string | undefined {
    const entry = this.index.peek(cacheKey(name, relativePath));
    return entry ? path.join(this.store.objectsDir, entry.meta.id) : undefined;
  }
}
