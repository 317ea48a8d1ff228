/**
 * A fill's side of the upstream protocol: the conditional request, what a 200's headers say
 * about the body, and continuing a broken body with Range plus If-Match, whose 206 must start
 * exactly at the byte where the body broke.
 */
import { parseHttpDate } from '../assets/conditional.ts';
import type { MirrorDefinition } from './config.ts';
import { FillFailedError } from './errors.ts';
import { discardBody, headerValue, printableHeader, UpstreamError, type RedirectPolicy, type UpstreamClient, type UpstreamHeaders, type UpstreamResponse } from './upstream.ts';

/** Where redirects of a mirror's upstream may go. */
export function redirectPolicyFor(mirror: Pick<MirrorDefinition, 'url' | 'redirectHosts'>): RedirectPolicy {
  return { upstream: mirror.url, ...(mirror.redirectHosts ? { hosts: mirror.redirectHosts } : {}) };
}

/** The validators of a cached copy being revalidated. */
export interface Validators {
  etag: string | undefined;
  lastModified: string | undefined;
}

/** Request headers that make a revalidation conditional (none for a first fetch). */
export function conditionalHeaders(revalidating: Validators | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (revalidating?.etag) headers['if-none-match'] = revalidating.etag;
  if (revalidating?.lastModified) headers['if-modified-since'] = revalidating.lastModified;
  return headers;
}

/** What went wrong as an UpstreamError; after an abort, the reason the fill was stopped. */
export function asUpstreamError(error: unknown, url: string, signal: AbortSignal): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const reason: unknown = signal.reason;
  if (signal.aborted && reason instanceof Error) return new UpstreamError(502, reason.message, reason instanceof FillFailedError ? reason.brief : reason.message);
  return new UpstreamError(502, `upstream ${url} failed: ${(error as Error).message}`, (error as Error).message);
}

/** Hop-by-hop fields (RFC 9110 7.6.1): about one connection, never kept or passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Fields the mirror does not keep although they are end-to-end: its own framing and ranges
 * (Content-Length, Content-Range, Accept-Ranges), fields kept apart in the sidecar
 * (Content-Type, Content-Encoding, ETag, Last-Modified), a cookie meant for one client
 * (Set-Cookie), fields that act on the whole host they come from rather than on the file, and
 * would act on bootdepot's (Alt-Svc, Strict-Transport-Security, Clear-Site-Data, which could
 * end a dashboard session, Public-Key-Pins), and Content-Digest, which describes one message's
 * body and would be wrong on a range. Repr-Digest describes the file and is kept.
 */
const NOT_KEPT = new Set([
  'content-length',
  'content-range',
  'accept-ranges',
  'content-type',
  'content-encoding',
  'etag',
  'last-modified',
  'set-cookie',
  'set-cookie2',
  'alt-svc',
  'strict-transport-security',
  'clear-site-data',
  'public-key-pins',
  'public-key-pins-report-only',
  'content-digest',
  'location',
  'x-cache-status',
]);

/** Upper bounds on what is kept of an upstream's headers. */
const MAX_KEPT_HEADERS = 64;
const MAX_KEPT_VALUE = 8192;

/**
 * The upstream's end-to-end response headers worth keeping, by lower-case name: everything
 * but hop-by-hop fields (also those the Connection field names) and {@link NOT_KEPT}; repeated
 * fields joined with `, `; values that are not printable ASCII dropped.
 */
export function endToEndHeaders(headers: UpstreamHeaders): Record<string, string> {
  const named = new Set(
    (headerValue(headers, 'connection') ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  const kept: Record<string, string> = {};
  let count = 0;
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (rawValue === undefined || rawValue === null || HOP_BY_HOP.has(name) || NOT_KEPT.has(name) || named.has(name) || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) continue;
    const value = Array.isArray(rawValue) ? rawValue.join(', ') : String(rawValue);
    if (value.length > MAX_KEPT_VALUE || !/^[\x20-\x7e\t]*$/.test(value)) continue;
    if (++count > MAX_KEPT_HEADERS) break;
    kept[name] = value.trim();
  }
  return kept;
}

/** What a 200's headers say about the file. */
export interface FileHeaders {
  /** Content-Length; undefined for a chunked body. */
  expected: number | undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  upstreamEtag: string | undefined;
  upstreamLastModified: string | undefined;
  acceptRanges: boolean;
  /** Whole seconds: the upstream's Last-Modified when sane and not in the future, else now. */
  mtimeSeconds: number;
  /** The end-to-end headers kept with the file ({@link endToEndHeaders}). */
  stored: Record<string, string>;
}

/** Reads the 200's headers; an UpstreamError when they make the body unusable. */
export function readFileHeaders(response: UpstreamResponse, url: string, now: () => number): FileHeaders | UpstreamError {
  const { headers } = response;
  const length = headerValue(headers, 'content-length');
  let expected: number | undefined;
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length.trim())) return new UpstreamError(502, `upstream ${url} sent an invalid Content-Length ${JSON.stringify(length)}`, 'invalid Content-Length');
    expected = Number(length.trim());
  }
  const upstreamLastModified = printableHeader(headerValue(headers, 'last-modified'));
  const nowSeconds = Math.floor(now() / 1000);
  const upstreamSeconds = parseHttpDate(upstreamLastModified)?.getTime();
  return {
    expected,
    contentType: printableHeader(headerValue(headers, 'content-type')),
    contentEncoding: printableHeader(headerValue(headers, 'content-encoding')),
    upstreamEtag: printableHeader(headerValue(headers, 'etag')),
    upstreamLastModified,
    acceptRanges: /\bbytes\b/i.test(headerValue(headers, 'accept-ranges') ?? ''),
    // The upstream's date when it has a sane one: clients then see the upstream's Last-Modified.
    mtimeSeconds: upstreamSeconds !== undefined && upstreamSeconds > 0 ? Math.min(Math.floor(upstreamSeconds / 1000), nowSeconds) : nowSeconds,
    stored: endToEndHeaders(headers),
  };
}

/** A broken body can be continued: byte ranges, a known length not yet reached, and a strong ETag to pin the file. */
export function isResumable(file: { acceptRanges: boolean; expected: number | undefined; upstreamEtag: string | undefined }, received: number): boolean {
  const etag = file.upstreamEtag;
  return file.acceptRanges && file.expected !== undefined && received < file.expected && etag !== undefined && etag.startsWith('"');
}

export interface ResumePoint {
  url: string;
  /** The first byte not yet received. */
  from: number;
  expected: number;
  etag: string;
}

/**
 * Asks for the rest of the body from `from`. Rejects with an UpstreamError when the upstream
 * failed (try again), with a FillFailedError when its answer rules out resuming.
 */
export async function requestResume(upstream: Pick<UpstreamClient, 'send'>, point: ResumePoint, options: { signal: AbortSignal; headersTimeoutMs: number }): Promise<UpstreamResponse> {
  const { url, from, expected, etag } = point;
  const response = await upstream.send(url, { range: `bytes=${from}-`, 'if-match': etag }, { signal: options.signal }).catch((error: unknown) => {
    throw asUpstreamError(error, url, options.signal);
  });
  const refuse = async (why: string): Promise<never> => {
    await discardBody(response.body, options.headersTimeoutMs);
    throw new FillFailedError(`cannot resume ${url} at byte ${from}: ${why}`, 502, `cannot resume at byte ${from}: ${why}`);
  };
  if (response.statusCode === 412) return refuse('the file changed upstream (If-Match failed)');
  if (response.statusCode >= 500) {
    await discardBody(response.body, options.headersTimeoutMs);
    throw new UpstreamError(502, `upstream ${url} answered ${response.statusCode} to a resume request`, `HTTP ${response.statusCode} to a resume request`);
  }
  if (response.statusCode !== 206) return refuse(`the upstream answered ${response.statusCode}`);
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerValue(response.headers, 'content-range')?.trim() ?? '');
  if (!range || Number(range[1]) !== from || Number(range[2]) !== expected - 1 || Number(range[3]) !== expected) {
    return refuse(`Content-Range ${JSON.stringify(headerValue(response.headers, 'content-range'))} is not bytes ${from}-${expected - 1}/${expected}`);
  }
  const etagNow = headerValue(response.headers, 'etag');
  if (etagNow !== undefined && etagNow !== etag) return refuse(`the ETag changed from ${etag} to ${etagNow}`);
  return response;
}
