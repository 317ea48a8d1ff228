/**
 * Answering one GET or HEAD of `/mirror/NAME/<path>`, framework-free: it writes to a Node
 * ServerResponse, as the /assets route does, and with the same sendFile, so a cached file and
 * a file still being filled get the same HTTP semantics (validators, preconditions, single and
 * multipart ranges, 304/412/416, HEAD).
 *
 * A file being filled whose size is known (the upstream sent Content-Length) is answered at
 * once; reads wait for bytes as they arrive. Its size unknown (a chunked upstream), a plain GET
 * streams chunked as the bytes come, and anything that needs the size (HEAD, Range,
 * preconditions) waits for the fill to finish. A response that cannot be completed is never
 * ended cleanly: the socket is destroyed, so the client sees a failed transfer.
 */
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { isEntityTag, type RequestHeaders } from '../assets/conditional.ts';
import { ClientGoneError, writeChunk, type BufferPool } from '../assets/file-stream.ts';
import { HttpError } from '../common/http-error.ts';
import { contentTypeFor } from '../assets/routes.ts';
import { reprDigestHeader } from '../assets/repr-digest.ts';
import { sendFile, type BodyStart } from '../assets/send-file.ts';
import type { Download } from '../assets/download.ts';
import type { FillReader } from './fill-reader.ts';
import { endToEndHeaders } from './fill-upstream.ts';
import { SlotsFullError } from './fill-slots.ts';
import type { MirrorSource, PullThroughMirror } from './mirror.ts';
import { discardBody, headerValue, printableHeader, readBody } from './upstream.ts';

export interface MirrorCacheControl {
  /** For versioned paths, which never change. */
  immutable: string;
  /** For paths that may change upstream (`current/`, `version.txt`, unversioned). */
  mutable: string;
}

export const DEFAULT_CACHE_CONTROL: MirrorCacheControl = {
  immutable: 'public, max-age=31536000, immutable',
  mutable: 'public, no-cache',
};

export interface ServeMirrorOptions {
  method: string;
  headers: RequestHeaders;
  pool: BufferPool;
  cacheControl: MirrorCacheControl;
  /** Body bytes the socket has taken; meaningful when the transfer breaks. */
  sent: { bytes: number };
  /** Aborts when the client has gone: the request stops waiting for (and wanting) a fill. */
  signal?: AbortSignal;
  /** Called once the headers are out and a body is about to be streamed (a download starts); the body waits for it. */
  onBody?: BodyStart;
}

export interface ServeMirrorOutcome {
  status: number;
  /** Body bytes written. */
  bytes: number;
  /** Where the bytes came from, for the log line. */
  from: 'cache' | 'stale' | 'fill' | 'passthrough' | 'error';
  /** True when the answer carried a file (not an error text, not a 304). */
  file: boolean;
}

/**
 * Where the answer came from: HIT (complete cached file), STALE (cached copy served because the
 * upstream failed), MISS (a transfer in progress), BYPASS (an uncached transfer of its own).
 */
export const CACHE_STATUS = 'X-Cache-Status';

const PRECONDITIONS = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range'];

/** Stored fields the mirror writes itself when it serves a file (or never passes on). */
const WRITTEN_HERE = new Set(['date', 'age', 'cache-control', 'expires', 'vary', 'content-security-policy', 'x-content-type-options']);

/** How one answer's caching fields are written. */
export interface ServedFile {
  /** The upstream's end-to-end headers kept with the file. */
  stored: Readonly<Record<string, string>> | undefined;
  immutable: boolean;
  /** The mirror ignores the upstream's caching headers for this file (`freshness.ignoreUpstream`). */
  ignoreUpstream: boolean;
  /** Current age in seconds; mutable files only. */
  ageSeconds: number | undefined;
  upstreamEtag: string | undefined;
}

/**
 * The headers an answer carries besides its framing: the upstream's end-to-end headers
 * (Content-Disposition, Content-Language, Content-Location, Link, Repr-Digest, custom ones),
 * and its caching fields as a shared cache passes them on. A versioned path is sent as
 * immutable; a mutable one with the upstream's Cache-Control, Expires and Date plus the copy's
 * Age, or, when the upstream sent neither (or is ignored), with the mirror's `public, no-cache`.
 * `etag` says which validator is sent: the upstream's when it is strong (the same bytes), else
 * the file's own strong one, with the upstream's weak one still accepted by If-None-Match.
 */
export function servedHeaders(file: ServedFile, cacheControl: MirrorCacheControl): { headers: Record<string, string | string[]>; cacheControl: string; etag: { strong?: string; alsoMatches?: readonly string[] } } {
  const headers: Record<string, string | string[]> = {};
  const stored = file.stored ?? {};
  for (const [name, value] of Object.entries(stored)) if (!WRITTEN_HERE.has(name)) headers[name] = value;
  let control: string;
  if (file.immutable) control = cacheControl.immutable;
  else {
    const upstreamSays = !file.ignoreUpstream && (stored['cache-control'] !== undefined || stored.expires !== undefined);
    control = upstreamSays ? (stored['cache-control'] ?? '') : cacheControl.mutable;
    if (upstreamSays && stored.expires !== undefined) headers.expires = stored.expires;
    if (file.ageSeconds !== undefined) headers.age = String(Math.max(0, Math.floor(file.ageSeconds)));
    // The upstream's Date of the answer last confirming the copy, as a shared cache passes it on (with Age beside it).
    if (!file.ignoreUpstream && stored.date !== undefined) headers.date = stored.date;
  }
  if (!file.ignoreUpstream && stored.vary !== undefined) headers.vary = stored.vary;
  Object.assign(headers, contained(stored['content-security-policy']));
  const upstream = file.upstreamEtag !== undefined && isEntityTag(file.upstreamEtag) ? file.upstreamEtag : undefined;
  const etag = upstream === undefined ? {} : upstream.startsWith('W/') ? { alsoMatches: [upstream] } : { strong: upstream };
  return { headers, cacheControl: control, etag };
}

/**
 * A mirrored file is the upstream's content on bootdepot's origin (where the dashboard lives):
 * it is never sniffed into another type and, opened in a browser, runs in a sandbox, whatever
 * the upstream's own policy (kept, and applied as well).
 */
function contained(upstreamPolicy: string | undefined): Record<string, string | string[]> {
  return { 'x-content-type-options': 'nosniff', 'content-security-policy': upstreamPolicy === undefined ? 'sandbox' : [upstreamPolicy, 'sandbox'] };
}

function setAll(res: ServerResponse, headers: Record<string, string | string[]>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
}

function endWithText(res: ServerResponse, status: number, message: string, from: ServeMirrorOutcome['from'], retryAfter?: number): ServeMirrorOutcome {
  const body = `${message}\n`;
  if (res.destroyed) return { status, bytes: 0, from, file: false };
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store' };
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
  res.writeHead(status, headers);
  res.end(body);
  return { status, bytes: Buffer.byteLength(body), from, file: false };
}

/** Writes a chunk and waits until the socket took it (the buffer is reused after). */
async function writeAll(res: ServerResponse, chunk: Buffer, sent: { bytes: number }): Promise<void> {
  await writeChunk(res, chunk);
  sent.bytes += chunk.length;
}

/**
 * Resolves a request to what the one download path sends (`assets/download.ts`): an answer
 * for errors (unknown mirror, 404, 502, 503 with Retry-After), or content that streams a
 * cached file, a growing fill or a passthrough. Resolving may wait for a fill slot or the
 * upstream's headers; nothing is written to the client before it returns.
 */
export async function resolveMirrorDownload(mirror: PullThroughMirror, name: string, relativePath: string, request: { method: string; signal: AbortSignal; query?: string }, cacheControl: MirrorCacheControl): Promise<Download> {
  const source = await mirror.lookup(name, relativePath, { method: request.method, signal: request.signal, ...(request.query ? { query: request.query } : {}) });
  if (source.kind === 'error') return { kind: 'answer', status: source.status, message: source.message, ...(source.retryAfter !== undefined ? { retryAfter: source.retryAfter } : {}) };
  return {
    kind: 'content',
    stream: (res, io) => serveSource(res, mirror, source, relativePath, { method: io.method, headers: io.headers, pool: io.pool, cacheControl, sent: io.sent, signal: io.signal, onBody: io.onBody }),
  };
}

/**
 * Serves a resolved source. Rejects when the transfer breaks after the headers went out (the
 * fill failed, the client left, a read failed): the caller must then destroy the socket.
 */
async function serveSource(res: ServerResponse, mirror: PullThroughMirror, source: MirrorSource, relativePath: string, options: ServeMirrorOptions): Promise<ServeMirrorOutcome> {
  switch (source.kind) {
    case 'error':
      return endWithText(res, source.status, source.message, 'error', source.retryAfter);
    case 'cached':
      return serveCached(res, mirror, source, relativePath, options);
    case 'filling':
      return serveFilling(res, source.reader, source.immutable, relativePath, options);
    case 'passthrough':
      return servePassthrough(res, mirror, source.mirror, source.url, relativePath, options);
  }
}

async function serveCached(res: ServerResponse, mirror: PullThroughMirror, source: Extract<MirrorSource, { kind: 'cached' }>, relativePath: string, options: ServeMirrorOptions): Promise<ServeMirrorOutcome> {
  const { lease } = source;
  try {
    const { meta } = lease.entry;
    const handle = await open(lease.file, 'r');
    try {
      const served = servedHeaders(
        {
          stored: meta.headers,
          immutable: source.immutable,
          ignoreUpstream: mirror.settings.mirrors[meta.mirror]?.freshness?.ignoreUpstream ?? false,
          ageSeconds: source.freshness?.ageSeconds,
          upstreamEtag: meta.upstreamEtag,
        },
        options.cacheControl,
      );
      // Repr-Digest of a cached file is the mirror's own (below), never the kept one.
      setAll(res, Object.fromEntries(Object.entries(served.headers).filter(([name]) => name !== 'repr-digest')));
      if (meta.contentEncoding) res.setHeader('Content-Encoding', meta.contentEncoding);
      res.setHeader(CACHE_STATUS, source.stale ? 'STALE' : 'HIT');
      // The stored bytes' own digests, hashed as they came in (and checked, when the upstream published any).
      const reprDigest = reprDigestHeader({ sha256: meta.sha256, sha512: meta.sha512 }, options.headers);
      const outcome = await sendFile(res, handle, {
        ...(reprDigest ? { representationHeaders: { 'Repr-Digest': reprDigest } } : {}),
        method: options.method,
        headers: options.headers,
        contentType: meta.contentType || contentTypeFor(relativePath),
        cacheControl: served.cacheControl,
        etag: served.etag,
        pool: options.pool,
        sent: options.sent,
        ...(options.onBody ? { onBody: options.onBody } : {}),
      });
      return { status: outcome.status, bytes: outcome.bytes, from: source.stale ? 'stale' : 'cache', file: outcome.status === 200 || outcome.status === 206 };
    } finally {
      await handle.close();
    }
  } finally {
    lease.release();
  }
}

function needsSize(options: ServeMirrorOptions): boolean {
  return options.method === 'HEAD' || options.headers.range !== undefined || PRECONDITIONS.some((name) => options.headers[name] !== undefined);
}

async function serveFilling(res: ServerResponse, reader: FillReader, immutable: boolean, relativePath: string, options: ServeMirrorOptions): Promise<ServeMirrorOutcome> {
  const { fill } = reader;
  // A fill that has to give up on this client (it lags too far behind a disk-less fill) ends it.
  reader.onAbort = () => res.destroy();
  // A client that left stops reading at once, even while it waits for bytes that have not come:
  // a reader that lingers would keep the fill wanted.
  const leave = () => reader.abort(new ClientGoneError());
  options.signal?.addEventListener('abort', leave, { once: true });
  if (options.signal?.aborted) leave();
  try {
    const contentType = fill.contentType || contentTypeFor(relativePath);
    const served = servedHeaders(
      { stored: fill.storedHeaders, immutable, ignoreUpstream: fill.policy.ignoreUpstream, ageSeconds: immutable ? undefined : fill.initialAgeSeconds, upstreamEtag: fill.upstreamEtag },
      options.cacheControl,
    );
    const cacheControl = served.cacheControl;
    if (fill.expected === undefined && !needsSize(options)) return await streamUnknownLength(res, reader, contentType, served, options);
    // An empty body has no last byte to hold back: wait for the verdict before answering.
    if (fill.expected === undefined || fill.expected === 0) await reader.complete();
    // Repr-Digest goes with the file's answers only (below), as the checked digests.
    setAll(res, Object.fromEntries(Object.entries(served.headers).filter(([name]) => name !== 'repr-digest')));
    if (fill.contentEncoding) res.setHeader('Content-Encoding', fill.contentEncoding);
    res.setHeader(CACHE_STATUS, 'MISS');
    // What the upstream published: the fill fails (and this answer is cut off) unless the body matches it.
    const reprDigest = reprDigestHeader(fill.publishedDigests, options.headers);
    const outcome = await sendFile(res, reader, {
      ...(reprDigest ? { representationHeaders: { 'Repr-Digest': reprDigest } } : {}),
      method: options.method,
      headers: options.headers,
      contentType,
      cacheControl,
      etag: served.etag,
      pool: options.pool,
      sent: options.sent,
      ...(options.onBody ? { onBody: options.onBody } : {}),
    });
    return { status: outcome.status, bytes: outcome.bytes, from: 'fill', file: outcome.status === 200 || outcome.status === 206 };
  } finally {
    options.signal?.removeEventListener('abort', leave);
    reader.close();
  }
}

/** A plain GET of a chunked fill: chunked out as the bytes arrive; the end only once the fill is complete. */
async function streamUnknownLength(res: ServerResponse, reader: FillReader, contentType: string, served: ReturnType<typeof servedHeaders>, options: ServeMirrorOptions): Promise<ServeMirrorOutcome> {
  const { fill } = reader;
  const headers: Record<string, string | string[]> = { ...served.headers, 'Content-Type': contentType, 'Last-Modified': new Date(fill.mtimeSeconds * 1000).toUTCString(), [CACHE_STATUS]: 'MISS' };
  if (served.cacheControl) headers['Cache-Control'] = served.cacheControl;
  // Only the upstream's strong ETag: the file's own depends on a size not known yet.
  if (served.etag.strong) headers.ETag = served.etag.strong;
  if (fill.contentEncoding) headers['Content-Encoding'] = fill.contentEncoding;
  res.writeHead(200, headers);
  await options.onBody?.(200, undefined);
  const buffer = options.pool.acquire();
  let position = 0;
  for (;;) {
    const { bytesRead } = await reader.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    await writeAll(res, buffer.subarray(0, bytesRead), options.sent);
    position += bytesRead;
  }
  // Only after a clean run: a buffer a broken socket may still hold is left to the GC.
  options.pool.release(buffer);
  res.end();
  return { status: 200, bytes: position, from: 'fill', file: true };
}

/**
 * A HEAD of a file not cached (answered from an upstream HEAD: HEAD never starts a fill), or a
 * client the fill cannot serve from its first byte (disk failed): its own uncached transfer.
 */
async function servePassthrough(res: ServerResponse, mirror: PullThroughMirror, name: string, url: string, relativePath: string, options: ServeMirrorOptions): Promise<ServeMirrorOutcome> {
  const method = options.method === 'HEAD' ? 'HEAD' : 'GET';
  let response;
  try {
    response = await mirror.passthrough(name, url, method);
  } catch (error) {
    const status = error instanceof HttpError ? error.statusCode : 502;
    return endWithText(res, status, (error as Error).message, 'error', error instanceof SlotsFullError ? error.retryAfterSeconds : undefined);
  }
  if (response.statusCode !== 200) {
    await discardBody(response.body, mirror.settings.headersTimeoutMs);
    return endWithText(res, response.statusCode === 404 ? 404 : 502, `upstream ${url} answered ${response.statusCode}`, 'error');
  }
  const kept = endToEndHeaders(response.headers);
  const headers: Record<string, string | string[]> = {};
  for (const [field, value] of Object.entries(kept)) if (!WRITTEN_HERE.has(field)) headers[field] = value;
  Object.assign(headers, contained(kept['content-security-policy']), {
    'Content-Type': printableHeader(headerValue(response.headers, 'content-type')) ?? contentTypeFor(relativePath),
    'Cache-Control': 'no-store',
    [CACHE_STATUS]: 'BYPASS',
  });
  const etag = printableHeader(headerValue(response.headers, 'etag'));
  if (etag !== undefined && isEntityTag(etag)) headers.ETag = etag;
  const encoding = printableHeader(headerValue(response.headers, 'content-encoding'));
  if (encoding) headers['Content-Encoding'] = encoding;
  const length = headerValue(response.headers, 'content-length');
  if (length !== undefined && /^\d{1,15}$/.test(length)) headers['Content-Length'] = length;
  const lastModified = printableHeader(headerValue(response.headers, 'last-modified'));
  if (lastModified) headers['Last-Modified'] = lastModified;
  res.writeHead(200, headers);
  if (method === 'HEAD') {
    await discardBody(response.body, mirror.settings.headersTimeoutMs);
    res.end();
    return { status: 200, bytes: 0, from: 'passthrough', file: true };
  }
  let bytes = 0;
  await options.onBody?.(200, length === undefined ? undefined : Number(length));
  await readBody(response.body, url, mirror.settings.bodyInactivityMs, async (chunk) => {
    await writeAll(res, chunk, options.sent);
    bytes += chunk.length;
  });
  res.end();
  return { status: 200, bytes, from: 'passthrough', file: true };
}
