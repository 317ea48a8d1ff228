/**
 * What the admin API and the dashboard show of the mirror and what it may make the mirror forget: cached files,
 * fills in progress, counters, purge.
 */
import type { LRUCache } from 'lru-cache';
import type { Fill } from './fill.ts';
import type { MirrorProblem } from './mirror.ts';
import { isImmutablePath } from './paths.ts';
import type { CacheEntry, CacheIndex } from './cache-disk.ts';
import type { FreshnessVerdict } from './freshness.ts';

export interface MirrorCounters {
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
  /** Transfers stopped because nobody wanted them any more. */
  abandonedFills: number;
  /** Requests refused with 503 because the transfer queue was full. */
  rejectedFills: number;
  /** Transfers whose body did not match the upstream's Repr-Digest or Flatcar DIGESTS: nothing kept, clients cut off. */
  digestMismatches: number;
}

export interface MirrorStats extends MirrorCounters {
  cachedFiles: number;
  cachedBytes: number;
  maxBytes: number;
  activeFills: number;
  /** Transfers waiting for an upstream slot. */
  queuedFills: number;
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
  /** The query the file is keyed by (without the mirror's `ignoreQueryParams`); absent for none. */
  query?: string;
  /** A mutable file: when it stops being fresh, and until when it may stand in for a failing upstream (ISO). */
  freshUntil?: string;
  staleIfErrorUntil?: string;
  /** What set a mutable file's lifetime: `max-age`, `s-maxage`, `expires`, `no-cache`, `must-revalidate`, `default`, `override`. */
  lifetimeFrom?: string;
  sha512: string;
  digestVerified: boolean;
  readers: number;
  /** Evicted only when nothing else is left: warmed, or needed by the fleet (see `isProtected`). */
  pinned: boolean;
}

/** A file's last failed fill, as `knownProblem` remembers it. */
export interface FillFailureInfo {
  mirror: string;
  path: string;
  upstream: string;
  error: string;
  at: string;
}

export interface FillingFileInfo {
  mirror: string;
  path: string;
  bytes: number;
  total: number | null;
  startedAt: string;
}

/** What the admin views read of the mirror, and the memories a purge clears. */
export interface AdminViewSource {
  readonly index: Pick<CacheIndex, 'entries' | 'delete' | 'clear' | 'size' | 'usedBytes' | 'protects'>;
  readonly fills: ReadonlyMap<string, Fill>;
  /** Remembered upstream 404s; undefined when they are not remembered. */
  readonly notFound: Pick<LRUCache<string, number>, 'delete' | 'clear'> | undefined;
  readonly problems: Pick<LRUCache<string, MirrorProblem>, 'delete' | 'clear' | 'entries'>;
  readonly counters: Readonly<MirrorCounters>;
  readonly maxBytes: number;
  queuedFills(): number;
  now(): number;
  /** A mutable file's freshness now; undefined for an immutable one. */
  freshnessOf(entry: CacheEntry): FreshnessVerdict | undefined;
}

export class AdminViews {
  private readonly source: AdminViewSource;

  constructor(source: AdminViewSource) {
    this.source = source;
  }

  /** Cached files, most recently used first. */
  list(): CachedFileInfo[] {
    const now = this.source.now();
    const { index } = this.source;
    return index.entries().map((entry) => ({ ...this.fileInfo(entry, now), pinned: index.protects(entry) }));
  }

  private fileInfo(entry: CacheEntry, now: number): Omit<CachedFileInfo, 'pinned'> {
    const { meta, readers, key } = entry;
    const mark = key.indexOf('?');
    const freshness = this.source.freshnessOf(entry);
    const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : undefined);
    const freshUntil = freshness ? iso(freshness.freshUntil) : undefined;
    const staleIfErrorUntil = freshness ? iso(freshness.staleIfErrorUntil) : undefined;
    return {
      ...(mark >= 0 ? { query: key.slice(mark + 1) } : {}),
      ...(freshUntil ? { freshUntil } : {}),
      ...(staleIfErrorUntil ? { staleIfErrorUntil } : {}),
      ...(freshness ? { lifetimeFrom: freshness.source } : {}),
      mirror: meta.mirror,
      path: meta.path,
      size: meta.size,
      age: Math.max(0, Math.round((now - Date.parse(meta.fetchedAt)) / 1000)),
      hits: meta.hits,
      fetchedAt: meta.fetchedAt,
      validatedAt: meta.validatedAt,
      lastUsedAt: meta.lastUsedAt,
      immutable: freshness === undefined && isImmutablePath(meta.path.split('/')),
      sha512: meta.sha512,
      digestVerified: meta.digestVerified,
      readers,
    };
  }

  /** The last failed fill of each file still remembered, newest first, at most `limit`. */
  failures(limit = 50): FillFailureInfo[] {
    const all: FillFailureInfo[] = [];
    for (const [key, problem] of this.source.problems.entries()) {
      const slash = key.indexOf('/');
      all.push({ mirror: key.slice(0, slash), path: key.slice(slash + 1), upstream: problem.upstream, error: problem.error, at: problem.since.toISOString() });
    }
    return all.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit);
  }

  filling(): FillingFileInfo[] {
    return [...this.source.fills.values()].map((fill) => ({
      mirror: fill.mirror.name,
      path: fill.path,
      bytes: fill.received,
      total: fill.expected ?? null,
      startedAt: new Date(fill.startedAt).toISOString(),
    }));
  }

  /** See {@link PullThroughMirror.purge}. */
  purge(key: string): boolean {
    const { index, fills, notFound, problems } = this.source;
    const fill = fills.get(key);
    fill?.discardResult();
    const forgotNotFound = notFound?.delete(key) ?? false;
    problems.delete(key);
    return index.delete(key) || fill !== undefined || forgotNotFound;
  }

  /** Forgets every file; returns how many cached files were dropped. */
  purgeAll(): number {
    const { index, fills, notFound, problems } = this.source;
    for (const fill of fills.values()) fill.discardResult();
    notFound?.clear();
    problems.clear();
    return index.clear();
  }

  stats(): MirrorStats {
    const { index, fills, counters } = this.source;
    return { ...counters, cachedFiles: index.size, cachedBytes: index.usedBytes, maxBytes: this.source.maxBytes, activeFills: fills.size, queuedFills: this.source.queuedFills() };
  }
}
