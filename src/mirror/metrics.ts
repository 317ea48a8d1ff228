/**
 * The mirror's counters as gauges for `/metrics` (src/http/metrics.ts reads them at scrape
 * time through its `extra` source, so serving pays nothing for them).
 */
import type { MirrorStats, PullThroughMirror } from './mirror.ts';

const HELP: Record<keyof MirrorStats, string> = {
  hits: 'Mirror requests answered from a complete cached file',
  misses: 'Mirror requests that started an upstream transfer',
  coalesced: 'Mirror requests that joined a transfer another request started',
  upstreamBytes: 'Body bytes received from mirror upstreams',
  failedFills: 'Mirror transfers that ended without a usable file',
  evictions: 'Mirrored files deleted to stay within the cache budget',
  staleServed: 'Mirror requests answered with a stale copy because the upstream failed',
  notFoundCached: 'Mirror requests answered 404 from a remembered upstream 404',
  revalidations: 'Conditional requests sent upstream for stale mutable files',
  resumes: 'Broken mirror transfers continued with a Range request',
  cachedFiles: 'Files in the mirror cache',
  cachedBytes: 'Bytes in the mirror cache',
  maxBytes: 'Mirror cache budget in bytes',
  activeFills: 'Mirror transfers in progress (including those waiting for an upstream slot)',
  queuedFills: 'Mirror transfers waiting for an upstream slot',
  abandonedFills: 'Mirror transfers stopped because no client wanted them any more',
  rejectedFills: 'Mirror requests refused with 503 because the transfer queue was full',
  digestMismatches: 'Mirror transfers whose body did not match the upstream Repr-Digest or Flatcar DIGESTS (nothing kept)',
};

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** `bootdepot_mirror_<counter>` gauges, e.g. `bootdepot_mirror_upstream_bytes`. */
export function mirrorGauges(mirror: PullThroughMirror): () => Record<string, { help: string; value: number }> {
  return () => {
    const stats = mirror.stats();
    const gauges: Record<string, { help: string; value: number }> = {};
    for (const key of Object.keys(HELP) as (keyof MirrorStats)[]) gauges[`bootdepot_mirror_${snakeCase(key)}`] = { help: HELP[key], value: stats[key] };
    return gauges;
  };
}
