/**
 * Per-client request limits on the public endpoints (@fastify/rate-limit, one fixed one-minute
 * window per client address and class). Scripts and reports share one budget; downloads have
 * their own (off by default: a sanboot reads a disk in many thousand Range requests, and a 429 there
 * is a failed disk read mid-boot). Probes and admin requests with the token are never limited.
 *
 * A refused iPXE script request is answered with a script that sleeps for Retry-After and
 * chains the same URL again, so iPXE retries instead of stopping at a prompt.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../common/http-error.ts';
import { addressMatcher, unmapIPv4 } from './address-list.ts';
import { requestBaseUrl } from './base-url.ts';
import { classify, isIpxeScriptRoute } from './request-classes.ts';

export interface RateLimitOptions {
  scriptsPerMinute: number;
  /** 0: downloads are not counted. */
  downloadsPerMinute: number;
  allowList: readonly string[];
  adminToken: string | undefined;
  /** server.baseUrl, for the URL a refused iPXE script chains. */
  baseUrl: string | undefined;
}

const WINDOW_MS = 60_000;
/** Client addresses remembered at once (an LRU): more than a provisioning network has. */
const TRACKED_CLIENTS = 20_000;

/** A request refused by the rate limit; errors.ts answers it (an iPXE script where that is expected). */
export class RateLimitedError extends HttpError {
  readonly retryAfterSeconds: number;
  readonly ipxeScript: string | undefined;
  constructor(retryAfterSeconds: number, limit: string, ipxeScript: string | undefined) {
    super(429, `too many requests from this address (${limit}); retry in ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
    this.ipxeScript = ipxeScript;
  }
}

// What may stand in an iPXE command line as part of a URL: no spaces, no `$` (expansion), no
// `#`, `|`, quotes or backslashes; `%` only as an escape.
const SCRIPT_SAFE_PATH = /^\/[A-Za-z0-9\-._~:/?&=+,;@%]*$/;
const MAX_CHAINED_URL = 2000;

/** The path and query to chain again: the request's own when it is safe in a script, else /boot.ipxe. */
export function retryPath(url: string): string {
  const safe = url.length <= MAX_CHAINED_URL && SCRIPT_SAFE_PATH.test(url) && !/%(?![0-9A-Fa-f]{2})/.test(url);
  return safe ? url : '/boot.ipxe';
}

/** `#!ipxe` that shows why, sleeps for Retry-After and asks again. */
export function rateLimitedScript(retryUrl: string, retryAfterSeconds: number): string {
  return [
    '#!ipxe',
    ':bootdepot-rate-limited',
    `echo bootdepot: too many requests from this address; asking again in ${retryAfterSeconds} s`,
    `sleep ${retryAfterSeconds}`,
    `chain --autofree ${retryUrl} || goto bootdepot-rate-limited`,
    '',
  ].join('\n');
}

function scriptFor(request: FastifyRequest, baseUrl: string | undefined, retryAfterSeconds: number): string {
  const path = retryPath(request.url);
  let base: string;
  try {
    base = requestBaseUrl(request, baseUrl);
  } catch {
    // A Host header that cannot stand in a script: a relative URL resolves against this script's own.
    base = '';
  }
  return rateLimitedScript(`${base}${path}`, retryAfterSeconds);
}

async function rateLimits(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  const allowed = addressMatcher(options.allowList);
  const limited = new Map<string, number>();
  const classOf = (request: FastifyRequest) => classify(request, options.adminToken);
  await app.register(rateLimit, {
    // Applied below as one hook for the whole app, ahead of the routes' own hooks (the admin
    // API's token check among them), so that failed token guesses are counted too.
    global: false,
    timeWindow: WINDOW_MS,
    cache: TRACKED_CLIENTS,
    keyGenerator: (request) => `${classOf(request) === 'download' ? 'downloads' : 'scripts'} ${unmapIPv4(request.ip)}`,
    max: (_request, key) => (key.startsWith('downloads ') ? options.downloadsPerMinute : options.scriptsPerMinute),
    allowList: (request) => {
      const kind = classOf(request);
      if (kind === 'probe' || kind === 'admin') return true;
      if (kind === 'download' && options.downloadsPerMinute === 0) return true;
      return allowed(request.ip);
    },
    // The standard headers would cost every script answer three; only refusals carry any.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    onExceeded: (request, key) => {
      app.metrics.limited.inc({ reason: key.startsWith('downloads ') ? 'downloads-rate' : 'scripts-rate' });
      // One line per client and window, not one per refused request: a flood must not fill the disk.
      const now = Date.now();
      if ((limited.get(key) ?? 0) > now) return;
      if (limited.size > 1000) for (const [k, until] of limited) if (until <= now) limited.delete(k);
      limited.set(key, now + WINDOW_MS);
      const [kind = 'scripts'] = key.split(' ');
      const limit = kind === 'downloads' ? options.downloadsPerMinute : options.scriptsPerMinute;
      request.log.warn({ client: request.ip, url: request.url, limit: `${limit} ${kind}/min` }, 'client rate-limited (429 until its minute is over; further refusals are not logged)');
    },
    errorResponseBuilder: (request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      const kind = classOf(request) === 'download' ? 'downloads' : 'scripts';
      const limit = `${context.max} ${kind} per minute`;
      return new RateLimitedError(seconds, limit, isIpxeScriptRoute(request) ? scriptFor(request, options.baseUrl, seconds) : undefined);
    },
  });
  app.addHook('onRequest', app.rateLimit());
}

export default fp(rateLimits, { name: 'bootdepot-rate-limits', dependencies: ['bootdepot-metrics'] });
