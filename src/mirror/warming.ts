/**
 * Warming: filling the cache with `MIRROR/path` files ahead of boots, a few at a time, with
 * progress for each. Warmed files are protected from eviction, across restarts too.
 */
import type { Fill } from './fill.ts';
import type { LookupOptions, MirrorSource } from './mirror.ts';
import { splitMirrorPath } from './paths.ts';
import type { CacheEntry } from './cache-disk.ts';

const WARM_CONCURRENCY = 4;
const WARM_PROGRESS_INTERVAL_MS = 250;

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

/** What warming needs of the mirror. */
export interface WarmTarget {
  now(): number;
  lookup(name: string, relativePath: string, options: LookupOptions): Promise<MirrorSource>;
  /** The cached entry for a key, without counting a use. */
  cachedEntry(key: string): CacheEntry | undefined;
  /** Marks a cached file warmed (protected from eviction), persisted in its sidecar. */
  markWarmed(entry: CacheEntry): void;
}

/**
 * Fills the cache with `MIRROR/path` files ahead of boots, a few at a time. Reports progress
 * and each result through `onEvent`; never throws for a single file.
 */
export async function warm(target: WarmTarget, paths: readonly string[], onEvent: (event: WarmEvent) => void = () => undefined): Promise<{ results: WarmResult[]; summary: WarmSummary }> {
  const results: WarmResult[] = new Array<WarmResult>(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const index = next++;
      const asked = paths[index] ?? '';
      const result = await warmOne(target, asked, onEvent);
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

async function warmOne(target: WarmTarget, asked: string, onEvent: (event: WarmEvent) => void): Promise<WarmResult> {
  const parsed = splitMirrorPath(asked);
  if (!parsed) return { path: asked, outcome: 'failed', bytes: 0, error: 'expected MIRROR/path, e.g. flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz' };
  const source = await target.lookup(parsed.mirror, parsed.path, { counted: false });
  switch (source.kind) {
    case 'error':
      return { path: asked, outcome: source.status === 404 ? 'not-found' : 'failed', bytes: 0, error: source.message };
    case 'passthrough':
      return { path: asked, outcome: 'failed', bytes: 0, error: 'the cache disk is failing; nothing can be kept' };
    case 'cached': {
      const { entry } = source.lease;
      const bytes = entry.meta.size;
      target.markWarmed(entry);
      source.lease.release();
      return { path: asked, outcome: 'cached', bytes };
    }
    case 'filling': {
      const { fill } = source.reader;
      // Held, not read: the warm wants the fill to finish without reading its bytes.
      const release = fill.hold();
      source.reader.close();
      try {
        return await followWarmFill(target, asked, fill, onEvent);
      } finally {
        release();
      }
    }
  }
}

async function followWarmFill(target: WarmTarget, asked: string, fill: Fill, onEvent: (event: WarmEvent) => void): Promise<WarmResult> {
  let reported = 0;
  // One pass per change of the fill; it ends when the fill does.
  while (fill.state === 'requesting' || fill.state === 'streaming' || fill.state === 'verifying') {
    await Promise.race([fill.changed(), fill.done]);
    const now = target.now();
    if (now - reported >= WARM_PROGRESS_INTERVAL_MS) {
      reported = now;
      onEvent({ type: 'progress', path: asked, bytes: fill.received, total: fill.expected ?? null });
    }
  }
  const { committed } = await fill.done;
  if (fill.state === 'failed') return { path: asked, outcome: 'failed', bytes: 0, error: fill.error?.message ?? 'transfer failed' };
  if (!committed) return { path: asked, outcome: 'failed', bytes: 0, error: 'fetched but not kept (disk full, purged, or larger than the cache)' };
  const entry = target.cachedEntry(fill.key);
  if (entry) target.markWarmed(entry);
  onEvent({ type: 'progress', path: asked, bytes: fill.received, total: fill.received });
  return { path: asked, outcome: 'filled', bytes: fill.received };
}
