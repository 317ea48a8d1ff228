/**
 * A site's `/assets/`: the origin bootdepot's `/assets/`, pulled through this bootdepot's mirror
 * as the implicit upstream `origin` (`site.origin` + `/assets`). Downloads go through the mirror
 * like any `/mirror/NAME/` file (one upstream transfer per file, digests checked, stale copies
 * when the origin is down); the site's scripts keep pointing at its own `/assets/` URLs.
 *
 * Script rendering asks "is this file there?" ({@link AssetReader.file}) for every kernel and
 * initrd it links: a file the site has cached answers from memory; one it has not is asked of the
 * origin with a HEAD (which starts no transfer), remembered for `metadataTtlMs` so a boot storm
 * sends one. When the origin cannot be asked and nothing is cached, the answer is an error that
 * names the origin, so the machine waits with the reason instead of booting half a plan.
 */
import { LRUCache } from 'lru-cache';
import type { AssetFile, AssetReader } from '../assets/asset-root.ts';
import { HttpError } from '../common/http-error.ts';
import { defineMirror, type MirrorDefinition } from './config.ts';
import type { PullThroughMirror } from './mirror.ts';
import { discardBody, headerValue } from './upstream.ts';

/** The name of a site's implicit upstream; `/mirror/origin/...` serves the same files. */
export const SITE_ORIGIN_MIRROR = 'origin';

/** The mirror definition of a site's origin: every path mutable, since uploads replace files anywhere. */
export function siteOriginMirror(origin: string): MirrorDefinition {
  return { ...defineMirror(SITE_ORIGIN_MIRROR, `${origin.replace(/\/+$/, '')}/assets`), mutableOnly: true };
}

export interface SiteAssetReaderOptions {
  /** The site's own assets directory (kept as `root`; nothing is served from it). */
  root: string;
  /** How long what `file` learned from the origin stays known (default 1 s, as for local files). */
  metadataTtlMs?: number;
}

class OriginUnavailableError extends Error {}

export function createSiteAssetReader(mirror: PullThroughMirror, options: SiteAssetReaderOptions): AssetReader {
  const ttl = options.metadataTtlMs ?? 1000;
  const origin = mirror.settings.mirrors[SITE_ORIGIN_MIRROR]?.url ?? '(no origin)';
  // Promises, so concurrent renders of one path share one HEAD; a failure is remembered as briefly.
  const files = new LRUCache<string, Promise<AssetFile | null>>({ max: 10_000, ttl: Math.max(1, ttl) });

  const unavailable = (relativePath: string, why: string) => new OriginUnavailableError(`the origin ${origin} cannot be asked for /assets/${relativePath} and this site has no copy: ${why}`);

  async function find(relativePath: string): Promise<AssetFile | undefined> {
    const source = await mirror.lookup(SITE_ORIGIN_MIRROR, relativePath, { method: 'HEAD', counted: false });
    switch (source.kind) {
      case 'cached': {
        const { meta } = source.lease.entry;
        const file = { path: source.lease.file, size: meta.size, mtimeMs: Date.parse(meta.fetchedAt), ino: 0 };
        source.lease.release();
        return file;
      }
      case 'filling': {
        const { fill } = source.reader;
        source.reader.close();
        return { path: '', size: fill.expected ?? fill.received, mtimeMs: fill.mtimeSeconds * 1000, ino: 0 };
      }
      case 'passthrough': {
        let response;
        try {
          response = await mirror.passthrough(SITE_ORIGIN_MIRROR, source.url, 'HEAD');
        } catch (error) {
          throw unavailable(relativePath, (error as Error).message);
        }
        await discardBody(response.body, mirror.settings.headersTimeoutMs);
        if (response.statusCode === 404 || response.statusCode === 410) return undefined;
        if (response.statusCode !== 200) throw unavailable(relativePath, `it answers HTTP ${response.statusCode}`);
        const length = Number(headerValue(response.headers, 'content-length') ?? 0);
        return { path: '', size: Number.isSafeInteger(length) ? length : 0, mtimeMs: Date.parse(headerValue(response.headers, 'last-modified') ?? '') || 0, ino: 0 };
      }
      case 'error':
        if (source.status === 404 || source.status === 400) return undefined;
        throw unavailable(relativePath, source.message);
    }
  }

  return {
    root: options.root,
    file(relativePath) {
      let found = ttl > 0 ? files.get(relativePath) : undefined;
      if (!found) {
        found = find(relativePath).then((file) => file ?? null);
        if (ttl > 0) files.set(relativePath, found);
      }
      return found.then((file) => file ?? undefined);
    },
    invalidate(relativePath) {
      files.delete(relativePath);
    },
    // Downloads never open a file here: the site's /assets/ routes go through the mirror.
    open: () => Promise.resolve(undefined),
    async readText(relativePath, maxBytes) {
      try {
        return await mirror.readText(SITE_ORIGIN_MIRROR, relativePath, maxBytes);
      } catch (error) {
        if (error instanceof HttpError && error.statusCode === 404) return undefined;
        if (error instanceof HttpError && error.statusCode === 413) throw error;
        throw unavailable(relativePath, (error as Error).message);
      }
    },
  };
}
