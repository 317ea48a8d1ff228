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
 *
 * The mirror is not an amplifier for whoever can reach it: upstream transfers run in a bounded
 * number of slots (queued beyond, refused beyond the queue), a transfer nobody wants any more
 * is stopped, HEAD never starts one, a mirror may accept only its own path patterns, and
 * redirects go only where the mirror's policy allows. It also remembers what just failed, so a
 * script can be told at once (`knownProblem`) instead of waiting on an upstream.
 */
import type { LookupFunction } from 'node:net';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { DEFAULT_FILLS_PER_MIRROR, freshnessPolicyFor, type MirrorDefinition, type MirrorSettings } from './config.ts';
import { evaluateFreshness, initialAge, storedResponseOf, type FreshnessVerdict } from './freshness.ts';
import { publishedSha512 } from './digests.ts';
import { Fill, FillFailedError, writeWholeChunk, type FillContext, type FillOutcome, type Verifier } from './fill.ts';
import { FillReader } from './fill-reader.ts';
import { redirectPolicyFor } from './fill-upstream.ts';
import { FillSlots, SlotsFullError } from './fill-slots.ts';
import { MirrorError } from './errors.ts';
import { acceptsPath, cacheKey, digestsPathFor, isImmutableFor, mirrorPathSegments, mirrorTarget, upstreamUrl, type MirrorTarget } from './paths.ts';
import { SMALL_FILE_LIMIT, SmallFiles, type TextResult } from './small-files.ts';
import { CacheIndex, newObjectId, CacheDisk, type CacheEntry, type EntryMeta, type Lease } from './cache-disk.ts';
import { UpstreamClient, withoutCredentials, type UpstreamResponse } from './upstream.ts';
import { warm, type WarmEvent, type WarmResult, type WarmSummary, type WarmTarget } from './warming.ts';
import { AdminViews, type CachedFileInfo, type FillFailureInfo, type FillingFileInfo, type MirrorCounters, type MirrorStats } from './admin-views.ts';
import type { FileHandle } from 'node:fs/promises';

export type { CachedFileInfo, FillFailureInfo, FillingFileInfo, MirrorStats } from './admin-views.ts';
export type { TextResult } from './small-files.ts';
export type { WarmEvent, WarmOutcome, WarmResult, WarmSummary } from './warming.ts';

export interface MirrorLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const silent: MirrorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export { MirrorError } from './errors.ts';

/** What the mirror knows right now about why a request for a file would fail. */
export interface MirrorProblem {
  /** The upstream URL of that file, credentials stripped. */
  upstream: string;
  /** One human line, e.g. `connect ECONNREFUSED 127.0.0.1:9`, `HTTP 404`, `stalled after 3 MiB`. */
  error: string;
  /** When the mirror learned it. */
  since: Date;
}

/** How long a failed fill is remembered as the file's problem (a 404 is remembered for `notFoundTtl`). */
export const FAILURE_MEMORY_MS = 60_000;

export interface LookupOptions {
  /** false keeps internal reads (digests, warm, version lookups) out of the hit counts. */
  counted?: boolean;
  /** HEAD never starts a fill: a cold file is asked upstream with a HEAD of its own. */
  method?: string;
  /** A fill another fill waits for (its DIGESTS): it goes first in the slot queue. */
  urgent?: boolean;
  /** The client left: stop waiting (and stop wanting the fill). */
  signal?: AbortSignal;
  /** The request's query string (without `?`): part of the cache key and of the upstream URL. */
  query?: string;
}


/** Where a request's bytes come from. The caller releases the lease or closes the reader. */
export type MirrorSource =
  /** `freshness`: for a mutable file, its age and lifetime now (the served Age and Cache-Control follow it). */
  | { kind: 'cached'; lease: Lease; immutable: boolean; stale: boolean; freshness?: FreshnessVerdict }
  | { kind: 'filling'; reader: FillReader; immutable: boolean }
  /** The fill in progress lost its disk and can no longer give a newcomer the first bytes. */
  | { kind: 'passthrough'; mirror: string; url: string; immutable: boolean }
  /** `retryAfter`: seconds, when the answer is a 503 for a full transfer queue. */
  | { kind: 'error'; status: number; message: string; retryAfter?: number };

export interface MirrorOptions {
  settings: MirrorSettings;
  log?: MirrorLogger;
  now?: () => number;
  /** Writes a chunk to a temp file; tests pass one that fails like a full disk. */
  writeChunk?: (handle: FileHandle, chunk: Buffer, position: number) => Promise<void>;
  /**
   * Look, never touch: the cache directory is not created, nothing in it is written or deleted
   * (temp files of a live mirror stay), files are not fetched into it. Small text files
   * (`readText`) not cached are read from the upstream without being kept. For `render`, `check`.
   */
  readOnly?: boolean;
  /**
   * Files the fleet needs (e.g. what loaded profiles boot): evicted only when nothing else is
   * left. Warmed files and files passed to `protect()` are protected as well.
   */
  isProtected?: (mirror: string, relativePath: string) => boolean;
  /** Name resolution for upstream connections; tests map names to loopback. */
  lookup?: LookupFunction;
}


export class PullThroughMirror {
  readonly settings: MirrorSettings;
  private readonly store: CacheDisk;
  private readonly index: CacheIndex;
  private readonly upstream: UpstreamClient;
  private readonly fills = new Map<string, Fill>();
  /** Remembered upstream 404s: when each was seen (ms). */
  private readonly notFound: LRUCache<string, number> | undefined;
  /** The last failed fill of each file, for `knownProblem` and stale-copy notes. */
  private readonly problems = new LRUCache<string, MirrorProblem>({ max: 10_000 });
  private readonly protectedKeys = new Set<string>();
  private readonly slots: FillSlots;
  private readonly readOnly: boolean;
  private readonly log: MirrorLogger;
  private readonly now: () => number;
  private readonly fillContext: FillContext;
  private readonly smallFiles: SmallFiles;
  private readonly warmTarget: WarmTarget;
  private readonly adminViews: AdminViews;
  private readonly counters: MirrorCounters = {
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
    abandonedFills: 0,
    rejectedFills: 0,
    digestMismatches: 0,
  };
  private closing = false;

  private constructor(options: MirrorOptions) {
    this.settings = options.settings;
    this.log = options.log ?? silent;
    this.now = options.now ?? Date.now;
    this.readOnly = options.readOnly ?? false;
    this.store = new CacheDisk(options.settings.cacheDir);
    this.upstream = new UpstreamClient({ ...options.settings, ...(options.lookup ? { lookup: options.lookup } : {}) });
    this.slots = new FillSlots(options.settings.maxConcurrentFills, options.settings.maxQueuedFills);
    this.notFound = options.settings.notFoundTtlMs > 0 ? new LRUCache<string, number>({ max: 10_000, ttl: options.settings.notFoundTtlMs }) : undefined;
    const isProtected = options.isProtected;
    this.index = new CacheIndex(
      this.store,
      options.settings.maxBytes,
      {
        evicted: (entry) => {
          this.counters.evictions += 1;
          this.log.info({ path: entry.key, bytes: entry.meta.size, readers: entry.readers, protected: this.isProtectedEntry(entry, isProtected) }, 'mirror cache evicted a file');
        },
        fileError: (entry, action, error) => this.log.error({ path: entry.key, err: error }, `mirror cache: cannot ${action}`),
      },
      { readOnly: this.readOnly, isProtected: (entry) => this.isProtectedEntry(entry, isProtected) },
    );
    this.fillContext = {
      upstream: this.upstream,
      store: this.store,
      counters: this.counters,
      log: this.log,
      bodyInactivityMs: options.settings.bodyInactivityMs,
      headersTimeoutMs: options.settings.headersTimeoutMs,
      abandonedFillTimeoutMs: options.settings.abandonedFillTimeoutMs,
      acquireSlot: (fill, signal) => this.slots.acquire(fill.mirror.name, this.fillLimit(fill.mirror), { urgent: fill.urgent, signal }),
      now: this.now,
      writeChunk: options.writeChunk ?? writeWholeChunk,
      startVerification: (fill) => this.startVerification(fill),
      commit: (fill, meta, handle) => this.commit(fill, meta, handle),
      finished: (fill) => {
        if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
        // Before the next request can look: a failed transfer is the file's known problem now.
        if (fill.state === 'failed' && fill.error) this.rememberProblem(fill, fill.error.brief);
      },
    };
    this.smallFiles = new SmallFiles({
      settings: this.settings,
      readOnly: this.readOnly,
      upstream: this.upstream,
      index: this.index,
      problems: this.problems,
      now: this.now,
      lookup: (name, relativePath, lookupOptions) => this.lookup(name, relativePath, lookupOptions),
      fillFor: (key) => this.fills.get(key),
    });
    this.warmTarget = {
      now: this.now,
      lookup: (name, relativePath, lookupOptions) => this.lookup(name, relativePath, lookupOptions),
      cachedEntry: (key) => this.index.peek(key),
      markWarmed: (entry) => this.markWarmed(entry),
    };
    this.adminViews = new AdminViews({
      index: this.index,
      fills: this.fills,
      notFound: this.notFound,
      problems: this.problems,
      counters: this.counters,
      maxBytes: options.settings.maxBytes,
      queuedFills: () => this.slots.queued,
      now: this.now,
      freshnessOf: (entry) => {
        const mirror = this.settings.mirrors[entry.meta.mirror];
        const segments = mirrorPathSegments(entry.meta.path);
        return mirror && segments && !isImmutableFor(mirror, segments) ? this.freshnessOf(entry, mirror) : undefined;
      },
    });
  }

  /**
   * Opens the cache: removes leftovers of interrupted fills and rebuilds the index from disk.
   * Read-only (`readOnly: true`): reads the index and changes nothing on disk.
   */
  static async open(options: MirrorOptions): Promise<PullThroughMirror> {
    const mirror = new PullThroughMirror(options);
    await mirror.load();
    return mirror;
  }

  private isProtectedEntry(entry: CacheEntry, isProtected: MirrorOptions['isProtected']): boolean {
    return entry.meta.warmed === true || this.protectedKeys.has(entry.key) || (isProtected?.(entry.meta.mirror, entry.meta.path) ?? false);
  }

  private fillLimit(mirror: MirrorDefinition): number {
    return mirror.maxConcurrentFills ?? DEFAULT_FILLS_PER_MIRROR;
  }

  private async load(): Promise<void> {
    if (!this.readOnly) {
      const strays = await this.store.prepare();
      if (strays.length > 0) this.log.warn({ files: strays }, 'removed temp files of interrupted mirror fills');
    }
    const targetOf = (meta: EntryMeta) => {
      const mirror = this.settings.mirrors[meta.mirror];
      return mirror ? mirrorTarget(mirror, meta.path, meta.query ?? '') : undefined;
    };
    const { entries, removed } = await this.store.scan(
      // A file from an upstream no longer configured for that name is not what the name serves now.
      (meta) => targetOf(meta)?.url === meta.upstreamUrl,
      { readOnly: this.readOnly },
    );
    if (removed.length > 0) this.log.warn({ objects: removed.length }, 'removed incomplete or unconfigured mirror cache files');
    // Oldest use first, so the index's recency order survives the restart; newest copy of a path wins.
    entries.sort((a, b) => Date.parse(a.lastUsedAt) - Date.parse(b.lastUsedAt) || Date.parse(a.fetchedAt) - Date.parse(b.fetchedAt));
    for (const meta of entries) {
      // The key as the mirror's ignoreQueryParams make it now.
      const key = targetOf(meta)?.key ?? cacheKey(meta.mirror, meta.path);
      const existing = this.index.peek(key);
      if (existing && Date.parse(existing.meta.fetchedAt) > Date.parse(meta.fetchedAt)) {
        if (!this.readOnly) await this.store.remove(meta.id);
        continue;
      }
      if (!this.index.insert(meta, key) && !this.readOnly) await this.store.remove(meta.id);
    }
    await this.index.settled();
    this.log.info({ cacheDir: this.settings.cacheDir, files: this.index.size, bytes: this.index.usedBytes, maxBytes: this.settings.maxBytes }, 'mirror cache ready');
  }

  mirrors(): MirrorDefinition[] {
    return Object.values(this.settings.mirrors);
  }

  /**
   * Finds the source for a request of `path` under mirror `name`: the cached file, the fill in
   * progress, or an error to answer with. Waits for the upstream's headers when it has to ask
   * (and for a slot before that, when many transfers run).
   */
  async lookup(name: string, relativePath: string, options: LookupOptions = {}): Promise<MirrorSource> {
    const counted = options.counted ?? true;
    const head = options.method === 'HEAD';
    const mirror = this.settings.mirrors[name];
    if (!mirror) return { kind: 'error', status: 404, message: `no mirror named ${JSON.stringify(name)}` };
    const target = mirrorTarget(mirror, relativePath, options.query);
    if (!target) return { kind: 'error', status: 400, message: `invalid path ${JSON.stringify(relativePath)}: no empty, "." or ".." segments, dotfiles, backslashes or NUL` };
    if (!acceptsPath(mirror, relativePath)) return { kind: 'error', status: 404, message: `mirror ${name} does not serve ${JSON.stringify(relativePath)}: not one of its paths` };
    const { key } = target;
    const immutable = isImmutableFor(mirror, target.segments);

    // A fill can end between its outcome and a reader attaching; then the cache has the file.
    for (let attempt = 0; attempt < 3; attempt++) {
      const active = this.fills.get(key);
      if (active && !this.mayJoin(active, immutable)) {
        // Its body is in but its answer is stale already: once it is kept, the copy is revalidated like any other.
        if (options.signal) {
          const aborted = PullThroughMirror.whenAborted(options.signal);
          const first = await Promise.race([active.done, aborted.promise]);
          aborted.cleanup();
          if (first === 'aborted') return { kind: 'error', status: 503, message: 'the client left' };
        } else await active.done;
        continue;
      }
      if (active) {
        if (counted) this.counters.coalesced += 1;
        const source = await this.fromFill(active, immutable, counted, options.signal);
        if (source) return source;
        continue;
      }
      const entry = this.index.get(key);
      const freshness = entry && !immutable ? this.freshnessOf(entry, mirror) : undefined;
      const fresh = entry !== undefined && (immutable || freshness?.fresh === true);
      // HEAD and a read-only mirror answer from any copy on disk: neither may start a fill.
      if (entry && (fresh || head || this.readOnly)) {
        if (counted) this.counters.hits += 1;
        return this.leaseEntry(entry, immutable, !fresh, counted);
      }
      if (!entry && this.notFound?.get(key) !== undefined) {
        if (counted) this.counters.notFoundCached += 1;
        return { kind: 'error', status: 404, message: `not found upstream: ${target.url}` };
      }
      if (this.closing) return { kind: 'error', status: 503, message: 'the mirror is shutting down' };
      if (head) return { kind: 'passthrough', mirror: name, url: target.url, immutable };
      if (this.readOnly) return { kind: 'error', status: 503, message: `${name}/${relativePath} is not cached, and this mirror is open read-only` };
      try {
        this.slots.checkRoom(name, this.fillLimit(mirror), options.urgent);
      } catch (error) {
        if (!(error instanceof SlotsFullError)) throw error;
        // A stale copy is a better answer than "come back later", within its stale-if-error window.
        if (entry && this.mayServeStale(entry, mirror)) {
          this.counters.staleServed += 1;
          this.log.warn({ path: key, reason: error.message, validatedAt: entry.meta.validatedAt }, 'mirror transfer queue full; serving the stale copy');
          return this.leaseEntry(entry, immutable, true, counted);
        }
        this.counters.rejectedFills += 1;
        return { kind: 'error', status: 503, message: error.message, retryAfter: error.retryAfterSeconds };
      }
      const fill = this.startFill(mirror, target, entry, options.urgent ?? false);
      if (entry) this.counters.revalidations += 1;
      else if (counted) this.counters.misses += 1;
      const source = await this.fromFill(fill, immutable, counted, options.signal, true);
      if (source) return source;
    }
    return { kind: 'error', status: 503, message: `${name}/${relativePath} is changing too fast; try again` };
  }

  /** A mutable copy's freshness now, by its mirror's rules. */
  private freshnessOf(entry: CacheEntry, mirror: MirrorDefinition): FreshnessVerdict {
    return evaluateFreshness(storedResponseOf(entry.meta), freshnessPolicyFor(mirror, this.settings), this.now());
  }

  /**
   * A request may ride a fill while the upstream's answer is awaited (collapsed requests) or its
   * body still arrives (the newest bytes there are), and after that only while the answer is
   * fresh: a later request for a `no-cache` answer whose body is in waits for it to be kept and
   * then revalidates it.
   */
  private mayJoin(fill: Fill, immutable: boolean): boolean {
    if (immutable || fill.state === 'requesting' || fill.state === 'streaming' || fill.state === 'failed') return true;
    const stored = { headers: fill.storedHeaders, responseTime: fill.respondedAt, initialAgeSeconds: fill.initialAgeSeconds, hasValidator: fill.hasValidator };
    return evaluateFreshness(stored, fill.policy, this.now()).fresh;
  }

  /** A copy may stand in for a failing upstream: immutable, or within its stale-if-error window. */
  private mayServeStale(entry: CacheEntry, mirror: MirrorDefinition): boolean {
    const segments = mirrorPathSegments(entry.meta.path);
    if (segments && isImmutableFor(mirror, segments)) return true;
    return this.now() < this.freshnessOf(entry, mirror).staleIfErrorUntil;
  }

  private startFill(mirror: MirrorDefinition, target: MirrorTarget, stale: CacheEntry | undefined, urgent: boolean): Fill {
    const { key } = target;
    const fill = new Fill(
      {
        key,
        id: newObjectId(),
        mirror,
        path: target.path,
        segments: target.segments,
        query: target.query,
        url: target.url,
        policy: freshnessPolicyFor(mirror, this.settings),
        urgent,
        ...(stale ? { revalidating: { etag: stale.meta.upstreamEtag, lastModified: stale.meta.upstreamLastModified } } : {}),
      },
      this.fillContext,
    );
    this.fills.set(key, fill);
    // Registered before any waiter's, so the cache reflects the answer by the time they look.
    void fill.outcome.then((outcome) => this.applyOutcome(fill, outcome));
    return fill;
  }

  private rememberProblem(fill: Fill, error: string): void {
    if (fill.stoppedBy) return;
    this.problems.set(fill.key, { upstream: withoutCredentials(fill.url), error, since: new Date(this.now()) });
  }

  private applyOutcome(fill: Fill, outcome: FillOutcome): void {
    if (outcome.kind === 'streaming') {
      if (fill.storable) return;
      // Not to be kept (no-store, private, Vary): nobody else rides it, and the old copy is outdated.
      if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
      this.index.delete(fill.key);
      this.log.info({ path: fill.key, reason: fill.notKeptBecause }, 'mirror serves an upstream answer without keeping it');
    } else if (outcome.kind === 'not-modified') {
      this.problems.delete(fill.key);
      const entry = this.index.peek(fill.key);
      if (!entry) return;
      // RFC 9111 4.3.4: the 304's fields replace the stored ones; Date and Age describe the new message only.
      const headers = { ...(entry.meta.headers ?? {}) };
      delete headers.date;
      delete headers.age;
      Object.assign(headers, outcome.headers);
      entry.meta.headers = headers;
      entry.meta.initialAge = initialAge(headers, outcome.requestTime, outcome.responseTime, fill.policy);
      entry.meta.validatedAt = new Date(outcome.responseTime).toISOString();
      if (outcome.etag) entry.meta.upstreamEtag = outcome.etag;
      if (outcome.lastModified) entry.meta.upstreamLastModified = outcome.lastModified;
      this.index.persistMeta(entry);
    } else if (outcome.kind === 'not-found') {
      this.problems.delete(fill.key);
      this.notFound?.set(fill.key, this.now());
      // A mutable file that is gone upstream is gone here too.
      this.index.delete(fill.key);
    } else if (outcome.kind === 'upstream-error') {
      const stale = this.index.peek(fill.key);
      if (!(outcome.staleAllowed && stale && this.mayServeStale(stale, fill.mirror)) && !fill.stoppedBy) this.log.warn({ path: fill.key, reason: outcome.error.message }, 'mirror upstream failed');
    }
  }

  /**
   * What the mirror knows right now, from memory only, about why a request for this file would
   * fail: a remembered upstream 404, a path the mirror does not serve, or the last fill that
   * failed (unreachable, 5xx, digest or length mismatch, stall) within {@link FAILURE_MEMORY_MS},
   * when no copy (fresh or stale) is on disk. Undefined when the file is cached or nothing is known.
   */
  knownProblem(name: string, relativePath: string): MirrorProblem | undefined {
    const mirror = this.settings.mirrors[name];
    const segments = mirrorPathSegments(relativePath);
    if (!mirror || !segments) return undefined;
    const key = cacheKey(name, relativePath);
    if (this.index.peek(key)) return undefined;
    const upstream = withoutCredentials(upstreamUrl(mirror.url, segments));
    if (!acceptsPath(mirror, relativePath)) return { upstream, error: `not one of the paths mirror ${name} serves`, since: new Date(this.now()) };
    const notFoundAt = this.notFound?.peek(key);
    if (notFoundAt !== undefined) return { upstream, error: 'HTTP 404', since: new Date(notFoundAt) };
    const problem = this.problems.peek(key);
    if (problem && this.now() - problem.since.getTime() < FAILURE_MEMORY_MS) return { ...problem };
    return undefined;
  }

  /** Protects a cached file (now or once it is cached) from eviction while others can go. */
  protect(name: string, relativePath: string): void {
    this.protectedKeys.add(cacheKey(name, relativePath));
  }

  unprotect(name: string, relativePath: string): void {
    this.protectedKeys.delete(cacheKey(name, relativePath));
  }

  /** Resolves with "aborted" when the signal fires; the listener goes with `cleanup`. */
  private static whenAborted(signal: AbortSignal): { promise: Promise<'aborted'>; cleanup: () => void } {
    const { promise, resolve } = Promise.withResolvers<'aborted'>();
    const onAbort = () => resolve('aborted');
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', onAbort, { once: true });
    return { promise, cleanup: () => signal.removeEventListener('abort', onAbort) };
  }

  /** The source a fill's outcome gives one request; undefined when the fill ended under it (look again). */
  private async fromFill(fill: Fill, immutable: boolean, counted: boolean, signal?: AbortSignal, initiator = false): Promise<MirrorSource | undefined> {
    // Taken before anything is awaited: the fill is wanted while this request waits for it.
    const release = fill.hold();
    let outcome: FillOutcome;
    try {
      if (signal) {
        const aborted = PullThroughMirror.whenAborted(signal);
        const first = await Promise.race([fill.outcome, aborted.promise]);
        aborted.cleanup();
        if (first === 'aborted') return { kind: 'error', status: 503, message: 'the client left' };
        outcome = first;
      } else outcome = await fill.outcome;
      return this.sourceFromOutcome(fill, outcome, immutable, counted, initiator);
    } finally {
      // After a reader attached: the fill never looks unwanted in between.
      release();
    }
  }

  private sourceFromOutcome(fill: Fill, outcome: FillOutcome, immutable: boolean, counted: boolean, initiator: boolean): MirrorSource | undefined {
    switch (outcome.kind) {
      case 'streaming': {
        if (fill.state === 'failed') return { kind: 'error', status: fill.error?.statusCode ?? 502, message: fill.error?.message ?? 'upstream transfer failed' };
        // An answer that may not be kept is not reused either (RFC 9111 4): the others ask on their own.
        if (!fill.servesFromStart() || (!fill.storable && !initiator)) return { kind: 'passthrough', mirror: fill.mirror.name, url: fill.url, immutable };
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
          if (this.mayServeStale(stale, fill.mirror)) {
            this.counters.staleServed += 1;
            this.log.warn({ path: fill.key, reason: outcome.error.message, validatedAt: stale.meta.validatedAt }, 'mirror upstream failed; serving the stale copy');
            return this.leaseEntry(stale, immutable, true, counted);
          }
          this.log.warn({ path: fill.key, reason: outcome.error.message, validatedAt: stale.meta.validatedAt }, 'mirror upstream failed; the stale copy is past its stale-if-error window');
        }
        return { kind: 'error', status: outcome.error.statusCode, message: outcome.error.message };
      }
    }
  }

  private leaseEntry(entry: CacheEntry, immutable: boolean, stale: boolean, counted: boolean): MirrorSource {
    if (counted) this.index.recordUse(entry, this.now());
    const mirror = this.settings.mirrors[entry.meta.mirror];
    const freshness = !immutable && mirror ? this.freshnessOf(entry, mirror) : undefined;
    return { kind: 'cached', lease: this.index.lease(entry), immutable, stale, ...(freshness ? { freshness } : {}) };
  }

  /** Starts fetching the file's DIGESTS as the body starts, so the check at the end rarely waits. */
  private startVerification(fill: Fill): Verifier {
    const digestsPath = fill.mirror.flatcarDigests ? digestsPathFor(fill.segments) : undefined;
    if (!digestsPath) return () => Promise.resolve(false);
    const digests = this.readText(fill.mirror.name, digestsPath, SMALL_FILE_LIMIT, { urgent: true }).then(
      (text) => ({ text, error: undefined }),
      (error: unknown) => ({ text: undefined, error: error as Error }),
    );
    const basename = fill.segments[fill.segments.length - 1] ?? '';
    const digestsName = `${basename}.DIGESTS`;
    return async (sha512) => {
      const { text, error } = await digests;
      if (text === undefined) {
        if (error instanceof MirrorError && error.statusCode === 404) {
          this.log.info({ path: fill.key }, 'no DIGESTS published upstream; kept without a digest check');
          return false;
        }
        throw new FillFailedError(`cannot check ${fill.key} against ${digestsPath}: ${error?.message ?? 'unknown error'}`, 502, `cannot fetch ${digestsName}: ${this.problems.peek(cacheKey(fill.mirror.name, digestsPath))?.error ?? error?.message ?? 'unknown error'}`);
      }
      const published = publishedSha512(text, basename);
      if (published === undefined) {
        this.log.warn({ path: fill.key, digests: digestsPath }, 'DIGESTS lists no SHA-512 for this file; kept without a digest check');
        return false;
      }
      if (published !== sha512) {
        this.counters.digestMismatches += 1;
        this.log.error({ path: fill.key, digests: digestsPath }, 'mirrored file does not match its DIGESTS; nothing kept, its clients cut off');
        throw new FillFailedError(`SHA-512 of ${fill.key} does not match ${digestsPath}: got ${sha512.slice(0, 16)}..., published ${published.slice(0, 16)}...`, 502, `SHA-512 does not match ${digestsName}`);
      }
      return true;
    };
  }

  private async commit(fill: Fill, meta: EntryMeta, handle: FileHandle): Promise<boolean> {
    if (!fill.storable) return false;
    if (Math.max(1, meta.size) > this.settings.maxBytes) {
      this.log.warn({ path: fill.key, bytes: meta.size, maxBytes: this.settings.maxBytes }, 'mirrored file is larger than the whole cache; served but not kept');
      return false;
    }
    // A later transfer of the same file (one that revalidated while this one was being kept) already answered.
    const newer = this.index.peek(fill.key);
    if (newer && Date.parse(newer.meta.validatedAt) > fill.respondedAt) {
      this.log.info({ path: fill.key }, 'mirror keeps the newer copy of a file fetched twice');
      return false;
    }
    await this.store.commit(handle, meta);
    // Purged while the data was being synced: drop it again. (A close lets a verified file in.)
    if (fill.discard || !this.index.insert(meta, fill.key)) {
      await this.store.remove(meta.id);
      return false;
    }
    this.problems.delete(fill.key);
    this.log.info({ path: fill.key, bytes: meta.size, sha512: meta.sha512.slice(0, 16), digestVerified: meta.digestVerified, ms: Math.round(this.now() - fill.startedAt) }, 'mirror cached a file');
    return true;
  }

  /**
   * Opens a request straight to the upstream: a HEAD of a file not cached (HEAD never starts a
   * fill), or a client that cannot ride the current fill. It takes an upstream slot like a fill,
   * given back when the body is over; rejects with a 503 {@link SlotsFullError} when the queue is full.
   */
  async passthrough(name: string, url: string, method: 'GET' | 'HEAD'): Promise<UpstreamResponse> {
    const mirror = this.settings.mirrors[name];
    if (!mirror) throw new MirrorError(404, `no mirror named ${JSON.stringify(name)}`);
    const limit = this.fillLimit(mirror);
    this.slots.checkRoom(name, limit);
    const release = await this.slots.acquire(name, limit);
    try {
      const response = await this.upstream.send(url, {}, { method, redirects: redirectPolicyFor(mirror) });
      response.body.once('close', release);
      return response;
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * A small file's text through the cache (DIGESTS, version.txt): fetched and kept like any
   * other file. Throws a {@link MirrorError} when it cannot be had, or is larger than `maxBytes`.
   * A read-only mirror reads a file it has no fresh copy of from the upstream without keeping it.
   */
  readText(name: string, relativePath: string, maxBytes = SMALL_FILE_LIMIT, options: { urgent?: boolean } = {}): Promise<string> {
    return this.smallFiles.readText(name, relativePath, maxBytes, options);
  }

  /**
   * A small file's text within a time budget, for answers that must not wait on an upstream
   * (resolving Flatcar `current` for a script). When the upstream fails, or gives no answer
   * within `budgetMs`, a copy on disk (stale or not) is returned with `staleBecause`; the fill
   * goes on in the background, so a later request gets the fresh text. While a fill of the file
   * is known to be slow, the copy is returned at once. Throws a {@link MirrorError} when there
   * is neither an answer nor a copy.
   */
  readTextWithin(name: string, relativePath: string, options: { maxBytes?: number; budgetMs: number }): Promise<TextResult> {
    return this.smallFiles.readTextWithin(name, relativePath, options);
  }

  /**
   * Fills the cache with `MIRROR/path` files ahead of boots, a few at a time. Reports progress
   * and each result through `onEvent`; never throws for a single file.
   */
  warm(paths: readonly string[], onEvent?: (event: WarmEvent) => void): Promise<{ results: WarmResult[]; summary: WarmSummary }> {
    return warm(this.warmTarget, paths, onEvent);
  }

  /** Warmed files are protected from eviction, and stay so across restarts (sidecar). */
  private markWarmed(entry: CacheEntry): void {
    if (entry.meta.warmed) return;
    entry.meta.warmed = true;
    this.index.persistMeta(entry);
  }

  /** Cached files, most recently used first. */
  list(): CachedFileInfo[] {
    return this.adminViews.list();
  }

  filling(): FillingFileInfo[] {
    return this.adminViews.filling();
  }

  /** The last failed fill of each file still remembered, newest first. */
  failures(limit?: number): FillFailureInfo[] {
    return this.adminViews.failures(limit);
  }

  /**
   * Forgets a file (`query`: the one it is keyed by, as a request would give it): deletes the
   * cached copy (once its readers are done), the remembered 404, and makes a fill in progress
   * serve its clients without keeping the result. False when there was nothing to forget.
   */
  purge(name: string, relativePath: string, query = ''): boolean {
    const mirror = this.settings.mirrors[name];
    const target = mirror ? mirrorTarget(mirror, relativePath, query) : undefined;
    return this.adminViews.purge(target?.key ?? cacheKey(name, relativePath));
  }

  /** Forgets every file; returns how many cached files were dropped. */
  purgeAll(): number {
    return this.adminViews.purgeAll();
  }

  stats(): MirrorStats {
    return this.adminViews.stats();
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
