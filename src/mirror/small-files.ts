/**
 * Small files read whole through the mirror (DIGESTS, Flatcar `version.txt`): as text, through
 * the cache like any other file, or within a time budget for answers that must not wait on an
 * upstream. A read-only mirror reads a file it has no fresh copy of from the upstream without
 * keeping it.
 */
import { open } from 'node:fs/promises';
import type { LRUCache } from 'lru-cache';
import { freshnessPolicyFor, type MirrorSettings } from './config.ts';
import { evaluateFreshness, storedResponseOf } from './freshness.ts';
import { HttpError } from '../common/http-error.ts';
import { MirrorError } from './errors.ts';
import { redirectPolicyFor } from './fill-upstream.ts';
import type { LookupOptions, MirrorProblem, MirrorSource } from './mirror.ts';
import { acceptsPath, cacheKey, isImmutableFor, mirrorPathSegments, upstreamUrl } from './paths.ts';
import type { CacheIndex, Lease } from './cache-disk.ts';
import { readBody, UpstreamError, withoutCredentials, type UpstreamClient } from './upstream.ts';

/** Largest DIGESTS or version.txt read through the mirror. */
export const SMALL_FILE_LIMIT = 1024 * 1024;

/** A small file's text, and why it is an old copy when it is one. */
export interface TextResult {
  text: string;
  /** Set when the text is a stale copy, e.g. `upstream slow (no answer in 2 s)`, `upstream failed (HTTP 503)`. */
  staleBecause?: string;
}

/** What small-file reads need of the mirror. */
export interface SmallFileSource {
  readonly settings: MirrorSettings;
  readonly readOnly: boolean;
  readonly upstream: Pick<UpstreamClient, 'send'>;
  readonly index: Pick<CacheIndex, 'peek' | 'lease'>;
  /** The last failure of each file: read for stale-copy notes, written by read-only reads. */
  readonly problems: Pick<LRUCache<string, MirrorProblem>, 'peek' | 'set'>;
  now(): number;
  lookup(name: string, relativePath: string, options: LookupOptions): Promise<MirrorSource>;
  /** The fill in progress for a cache key, if any. */
  fillFor(key: string): { readonly slowSince: number | undefined; markSlow(at: number): void } | undefined;
}

export class SmallFiles {
  private readonly source: SmallFileSource;

  constructor(source: SmallFileSource) {
    this.source = source;
  }

  /** See {@link PullThroughMirror.readText}. */
  async readText(name: string, relativePath: string, maxBytes = SMALL_FILE_LIMIT, options: { urgent?: boolean } = {}): Promise<string> {
    return (await this.readTextResult(name, relativePath, maxBytes, options.urgent ?? false)).text;
  }

  /** See {@link PullThroughMirror.readTextWithin}. */
  async readTextWithin(name: string, relativePath: string, options: { maxBytes?: number; budgetMs: number }): Promise<TextResult> {
    const { settings, problems } = this.source;
    const maxBytes = options.maxBytes ?? SMALL_FILE_LIMIT;
    const key = cacheKey(name, relativePath);
    const seconds = Math.round(options.budgetMs / 100) / 10;
    const slow = `upstream slow (no answer in ${seconds} s)`;
    const upstream = () => {
      const mirror = settings.mirrors[name];
      const segments = mirrorPathSegments(relativePath);
      return mirror && segments ? `upstream ${withoutCredentials(upstreamUrl(mirror.url, segments))}` : `${name}/${relativePath}`;
    };
    if (this.source.fillFor(key)?.slowSince !== undefined) {
      const copy = await this.readCopy(key, maxBytes);
      if (copy !== undefined) return { text: copy, staleBecause: slow };
      throw new MirrorError(504, `${upstream()} is slow (no answer in ${seconds} s) and no copy is cached`);
    }
    const reading = this.readTextResult(name, relativePath, maxBytes, false);
    // Whatever happens to the answer after the budget, nobody waits for it here.
    reading.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), options.budgetMs);
    });
    let result: TextResult | 'slow';
    try {
      result = await Promise.race([reading, budget]);
    } catch (error) {
      const copy = await this.readCopy(key, maxBytes);
      if (copy === undefined) throw error;
      return { text: copy, staleBecause: `upstream failed (${problems.peek(key)?.error ?? (error as Error).message})` };
    } finally {
      clearTimeout(timer);
    }
    if (result !== 'slow') return result;
    this.source.fillFor(key)?.markSlow(this.source.now());
    const copy = await this.readCopy(key, maxBytes);
    if (copy !== undefined) return { text: copy, staleBecause: slow };
    throw new MirrorError(504, `${upstream()} gave no answer within ${seconds} s and no copy is cached`);
  }

  /** The text of the copy on disk, fresh or stale; undefined when there is none (or it is too large). */
  private async readCopy(key: string, maxBytes: number): Promise<string | undefined> {
    const { index } = this.source;
    const entry = index.peek(key);
    if (!entry || entry.meta.size > maxBytes) return undefined;
    const lease = index.lease(entry);
    try {
      return await readLeased(lease);
    } catch {
      return undefined;
    } finally {
      lease.release();
    }
  }

  /** A read-only mirror's small file: a fresh copy, else the upstream's answer (not kept), else a stale copy. */
  private async readTextUncached(name: string, relativePath: string, maxBytes: number): Promise<TextResult> {
    const { settings, index, problems } = this.source;
    const mirror = settings.mirrors[name];
    if (!mirror) throw new MirrorError(404, `no mirror named ${JSON.stringify(name)}`);
    const segments = mirrorPathSegments(relativePath);
    if (!segments || !acceptsPath(mirror, relativePath)) throw new MirrorError(404, `mirror ${name} does not serve ${JSON.stringify(relativePath)}`);
    const key = cacheKey(name, relativePath);
    const entry = index.peek(key);
    if (entry && (isImmutableFor(mirror, segments) || evaluateFreshness(storedResponseOf(entry.meta), freshnessPolicyFor(mirror, settings), this.source.now()).fresh)) {
      const copy = await this.readCopy(key, maxBytes);
      if (copy !== undefined) return { text: copy };
    }
    const url = upstreamUrl(mirror.url, segments);
    let failure: MirrorError;
    try {
      const response = await this.source.upstream.send(url, {}, { redirects: redirectPolicyFor(mirror) });
      if (response.statusCode === 200) {
        const chunks: Buffer[] = [];
        let size = 0;
        await readBody(response.body, url, settings.bodyInactivityMs, (chunk) => {
          size += chunk.length;
          if (size > maxBytes) throw new UpstreamError(502, `${name}/${relativePath} is larger than ${maxBytes} bytes`, `larger than ${maxBytes} bytes`);
          chunks.push(chunk);
        });
        return { text: Buffer.concat(chunks).toString('utf8') };
      }
      response.body.destroy();
      failure = new MirrorError(response.statusCode === 404 || response.statusCode === 410 ? 404 : 502, response.statusCode === 404 || response.statusCode === 410 ? `not found upstream: ${url}` : `upstream ${url} answered ${response.statusCode}`);
      problems.set(key, { upstream: withoutCredentials(url), error: `HTTP ${response.statusCode}`, since: new Date(this.source.now()) });
    } catch (error) {
      const upstreamError = error instanceof UpstreamError ? error : new UpstreamError(502, (error as Error).message);
      failure = new MirrorError(upstreamError.statusCode, upstreamError.message);
      problems.set(key, { upstream: withoutCredentials(url), error: upstreamError.brief, since: new Date(this.source.now()) });
    }
    const stale = failure.statusCode === 404 ? undefined : await this.readCopy(key, maxBytes);
    if (stale !== undefined) return { text: stale, staleBecause: `upstream failed (${problems.peek(key)?.error ?? failure.message})` };
    throw failure;
  }

  private async readTextResult(name: string, relativePath: string, maxBytes: number, urgent: boolean): Promise<TextResult> {
    if (this.source.readOnly) return this.readTextUncached(name, relativePath, maxBytes);
    const source = await this.source.lookup(name, relativePath, { counted: false, urgent });
    switch (source.kind) {
      case 'error':
        throw new MirrorError(source.status, source.message);
      case 'passthrough':
        throw new MirrorError(503, `${name}/${relativePath} cannot be read while the cache disk is failing`);
      case 'cached': {
        try {
          if (source.lease.entry.meta.size > maxBytes) throw new MirrorError(502, `${name}/${relativePath} is larger than ${maxBytes} bytes`);
          const text = await readLeased(source.lease);
          if (!source.stale) return { text };
          return { text, staleBecause: `upstream failed (${this.source.problems.peek(cacheKey(name, relativePath))?.error ?? 'no answer'})` };
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
          return { text: buffer.subarray(0, position).toString('utf8') };
        } catch (error) {
          if (error instanceof MirrorError) throw error;
          throw new MirrorError(error instanceof HttpError ? error.statusCode : 502, (error as Error).message);
        } finally {
          reader.close();
        }
      }
    }
  }
}

async function readLeased(lease: Lease): Promise<string> {
  const handle = await open(lease.file, 'r');
  try {
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}
