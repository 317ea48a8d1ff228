/**
 * HTTP caching for mutable mirror paths, as a shared cache does it (RFC 9111): whether an
 * upstream's answer may be kept, how long it is fresh, how old it is, and how long it may be
 * served stale when the upstream fails (RFC 5861 `stale-if-error`).
 *
 * Pure arithmetic over the stored response headers and three times (request sent, response
 * received, now), so a restart, a changed `mutableMaxAge` or a per-mirror override apply to
 * copies already on disk. The differences from RFC 9111 are deliberate and listed in
 * docs/mirror.md: the configured default lifetime stands in for heuristic freshness, and a
 * configured stale-if-error applies unless the upstream forbids serving stale.
 */
import { isInnerList, parseDictionary } from 'structured-headers';
import { parseHttpDate } from '../assets/conditional.ts';
import type { EntryMeta } from './cache-disk.ts';

/** Response headers by lower-case name, one value each (repeated fields joined with `, `). */
export type StoredHeaders = Readonly<Record<string, string>>;

/** How a mirror treats its upstream's caching headers. */
export interface FreshnessPolicy {
  /** Lifetime (ms) of a file whose upstream says nothing about freshness. */
  defaultMaxAgeMs: number;
  /** Ignore the upstream's Cache-Control, Expires, Age and Vary: every file is kept, fresh for `defaultMaxAgeMs`. */
  ignoreUpstream: boolean;
  /** How long (ms) past its freshness a copy may be served when the upstream fails, unless the upstream says otherwise. */
  staleIfErrorMs: number;
}

/** The Cache-Control directives the mirror acts on. Delta-seconds are whole seconds; invalid ones read as 0 (stale). */
export interface CacheDirectives {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  maxAge?: number;
  sMaxAge?: number;
  staleIfError?: number;
}

/** RFC 9111 1.2.2: a larger delta-seconds is taken as 2^31. */
const DELTA_MAX = 2_147_483_648;

function deltaSeconds(value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) return 0;
  const seconds = Number(value);
  return Number.isSafeInteger(seconds) && seconds < DELTA_MAX ? seconds : DELTA_MAX;
}

/**
 * Parses a Cache-Control field value: a comma-separated list of `name` or `name=value`, a
 * value a token or a quoted string (which may hold commas). Names are case-insensitive; of a
 * directive given twice, the first counts.
 */
export function parseCacheControl(value: string | undefined): CacheDirectives {
  const directives: CacheDirectives = { noStore: false, noCache: false, private: false, mustRevalidate: false, proxyRevalidate: false };
  if (value === undefined) return directives;
  const seen = new Set<string>();
  const pattern = /\s*([^\s=,]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*(?:,|$)/gy;
  while (pattern.lastIndex < value.length) {
    const at = pattern.lastIndex;
    const match = pattern.exec(value);
    if (match === null || match[0] === '') {
      // A malformed element: skip to the next comma, keep the rest.
      const comma = value.indexOf(',', at);
      if (comma < 0) break;
      pattern.lastIndex = comma + 1;
      continue;
    }
    const name = (match[1] ?? '').toLowerCase();
    const argument = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3];
    if (seen.has(name)) continue;
    seen.add(name);
    switch (name) {
      case 'no-store':
        directives.noStore = true;
        break;
      // `no-cache="Set-Cookie"` (fields only) is taken as a plain no-cache: stricter, never wrong.
      case 'no-cache':
        directives.noCache = true;
        break;
      case 'private':
        directives.private = true;
        break;
      case 'must-revalidate':
        directives.mustRevalidate = true;
        break;
      case 'proxy-revalidate':
        directives.proxyRevalidate = true;
        break;
      case 'max-age':
        directives.maxAge = deltaSeconds(argument);
        break;
      case 's-maxage':
        directives.sMaxAge = deltaSeconds(argument);
        break;
      case 'stale-if-error':
        directives.staleIfError = deltaSeconds(argument);
        break;
    }
  }
  return directives;
}

const TARGETED_FLAGS = { 'no-store': 'noStore', 'no-cache': 'noCache', private: 'private', 'must-revalidate': 'mustRevalidate', 'proxy-revalidate': 'proxyRevalidate' } as const;
const TARGETED_DELTAS = { 'max-age': 'maxAge', 's-maxage': 'sMaxAge', 'stale-if-error': 'staleIfError' } as const;

/**
 * A targeted field (RFC 9213: a Structured Fields Dictionary): flags must be true, delta-seconds
 * non-negative integers; a member of another type is ignored. Undefined when the field does not
 * parse, or holds no directive the mirror knows with a valid value: then it is set aside.
 */
export function parseTargetedCacheControl(value: string): CacheDirectives | undefined {
  let dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return undefined;
  }
  const directives: CacheDirectives = { noStore: false, noCache: false, private: false, mustRevalidate: false, proxyRevalidate: false };
  let known = false;
  for (const [name, member] of dictionary) {
    if (isInnerList(member)) continue;
    // The package's types name a bare item's DisplayString, which its declarations do not carry: read as unknown.
    const bare = (member as unknown as readonly [unknown])[0];
    if (Object.hasOwn(TARGETED_FLAGS, name) && bare === true) {
      directives[TARGETED_FLAGS[name as keyof typeof TARGETED_FLAGS]] = true;
      known = true;
    } else if (Object.hasOwn(TARGETED_DELTAS, name) && typeof bare === 'number' && Number.isInteger(bare) && bare >= 0) {
      directives[TARGETED_DELTAS[name as keyof typeof TARGETED_DELTAS]] = Math.min(bare, DELTA_MAX);
      known = true;
    }
  }
  return known ? directives : undefined;
}

/**
 * The directives that govern the mirror: `CDN-Cache-Control` (RFC 9213) when the upstream sends
 * a valid one (a site mirror is the CDN of its origin), else `Cache-Control`. `targeted` says
 * the former, which also sets Expires aside.
 */
export function governingDirectives(headers: StoredHeaders): { directives: CacheDirectives; targeted: boolean } {
  const cdn = headers['cdn-cache-control'];
  const targeted = cdn === undefined ? undefined : parseTargetedCacheControl(cdn);
  if (targeted) return { directives: targeted, targeted: true };
  return { directives: parseCacheControl(headers['cache-control']), targeted: false };
}

/** The Vary field's names other than Accept-Encoding (lower-case); `*` stays `*`. */
export function varyingFields(headers: StoredHeaders): string[] {
  const vary = headers.vary;
  if (vary === undefined) return [];
  return vary
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '' && name !== 'accept-encoding');
}

/**
 * Whether a 200 may be kept: not when the upstream says `no-store` or `private` (the mirror is
 * a shared cache), nor when it varies on request fields other than Accept-Encoding (the mirror
 * asks the upstream with its own headers, not the client's, so it cannot tell which client a
 * variant is for). The reason, for the log, when it may not.
 */
export function storability(headers: StoredHeaders, policy: Pick<FreshnessPolicy, 'ignoreUpstream'>): { storable: true } | { storable: false; reason: string } {
  if (policy.ignoreUpstream) return { storable: true };
  const { directives, targeted } = governingDirectives(headers);
  const field = targeted ? 'CDN-Cache-Control' : 'Cache-Control';
  if (directives.noStore) return { storable: false, reason: `${field}: no-store` };
  if (directives.private) return { storable: false, reason: `${field}: private` };
  const varying = varyingFields(headers);
  if (varying.length > 0) return { storable: false, reason: `Vary: ${varying.join(', ')}` };
  return { storable: true };
}

/**
 * The response's age when it was received, in seconds (RFC 9111 4.2.3's corrected initial
 * age): the larger of the age the Date field implies and the upstream's Age plus the time the
 * answer took. Times in ms.
 */
export function initialAge(headers: StoredHeaders, requestTime: number, responseTime: number, policy: Pick<FreshnessPolicy, 'ignoreUpstream'>): number {
  if (policy.ignoreUpstream) return 0;
  const date = parseHttpDate(headers.date)?.getTime();
  const apparentAge = date === undefined ? 0 : Math.max(0, (responseTime - date) / 1000);
  const responseDelay = Math.max(0, (responseTime - requestTime) / 1000);
  // A list-valued Age: its first member (RFC 9111 5.1).
  const ageValue = deltaSeconds(headers.age?.split(',')[0]?.trim());
  return Math.max(apparentAge, ageValue + responseDelay);
}

/** Where a freshness lifetime came from, for the admin listing and the docs. */
export type LifetimeSource = 's-maxage' | 'max-age' | 'expires' | 'no-cache' | 'must-revalidate' | 'no-validator' | 'default' | 'override';

/**
 * The freshness lifetime in seconds (RFC 9111 4.2.1 for a shared cache): `no-cache` makes it 0,
 * then `s-maxage`, `max-age`, `Expires` minus `Date`; `must-revalidate`/`proxy-revalidate`
 * with none of those is 0 too; otherwise the policy's default stands in for a heuristic, for an
 * answer with a validator (ETag or Last-Modified): one with neither freshness nor a validator
 * could only be checked by fetching it whole again, and is not reused (0).
 */
export function freshnessLifetime(headers: StoredHeaders, responseTime: number, policy: FreshnessPolicy, hasValidator = true): { seconds: number; source: LifetimeSource } {
  const fallback = policy.defaultMaxAgeMs / 1000;
  if (policy.ignoreUpstream) return { seconds: fallback, source: 'override' };
  const { directives, targeted } = governingDirectives(headers);
  if (directives.noCache) return { seconds: 0, source: 'no-cache' };
  if (directives.sMaxAge !== undefined) return { seconds: directives.sMaxAge, source: 's-maxage' };
  if (directives.maxAge !== undefined) return { seconds: directives.maxAge, source: 'max-age' };
  if (headers.expires !== undefined && !targeted) {
    // An invalid Expires (`0`, `-1`) means already expired.
    const expires = parseHttpDate(headers.expires)?.getTime();
    const date = parseHttpDate(headers.date)?.getTime() ?? responseTime;
    return { seconds: expires === undefined ? 0 : Math.max(0, (expires - date) / 1000), source: 'expires' };
  }
  if (directives.mustRevalidate || directives.proxyRevalidate) return { seconds: 0, source: 'must-revalidate' };
  if (!hasValidator) return { seconds: 0, source: 'no-validator' };
  return { seconds: fallback, source: 'default' };
}

/** A kept response as freshness needs it. */
export interface StoredResponse {
  headers: StoredHeaders;
  /** When the response (or the 304 that confirmed it) arrived, ms. */
  responseTime: number;
  /** {@link initialAge} of that answer, seconds. */
  initialAgeSeconds: number;
  /** The answer had an ETag or a Last-Modified (absent: true). */
  hasValidator?: boolean;
}

/** A kept file's headers and times, as freshness reads them (a sidecar from before headers were kept: none). */
export function storedResponseOf(meta: Pick<EntryMeta, 'headers' | 'validatedAt' | 'initialAge' | 'upstreamEtag' | 'upstreamLastModified'>): StoredResponse {
  return {
    headers: meta.headers ?? {},
    responseTime: Date.parse(meta.validatedAt),
    initialAgeSeconds: meta.initialAge ?? 0,
    hasValidator: meta.upstreamEtag !== undefined || meta.upstreamLastModified !== undefined,
  };
}

export interface FreshnessVerdict {
  fresh: boolean;
  /** Current age, whole seconds (the `Age` the mirror sends). */
  ageSeconds: number;
  lifetimeSeconds: number;
  source: LifetimeSource;
  /** When the copy stops being fresh (ms). */
  freshUntil: number;
  /** Until when (ms) the copy may be served stale because the upstream fails; `freshUntil` when never. */
  staleIfErrorUntil: number;
}

/**
 * Fresh or stale now, and how long a stale copy may stand in for a failing upstream: the
 * upstream's `stale-if-error=N` when it sends one, none after `must-revalidate` or
 * `proxy-revalidate`, else the policy's `staleIfErrorMs`.
 */
export function evaluateFreshness(stored: StoredResponse, policy: FreshnessPolicy, now: number): FreshnessVerdict {
  const { seconds, source } = freshnessLifetime(stored.headers, stored.responseTime, policy, stored.hasValidator ?? true);
  const age = stored.initialAgeSeconds + Math.max(0, (now - stored.responseTime) / 1000);
  const freshUntil = stored.responseTime + (seconds - stored.initialAgeSeconds) * 1000;
  let staleMs = policy.staleIfErrorMs;
  if (!policy.ignoreUpstream) {
    const { directives } = governingDirectives(stored.headers);
    if (directives.staleIfError !== undefined) staleMs = directives.staleIfError * 1000;
    else if (directives.mustRevalidate || directives.proxyRevalidate) staleMs = 0;
  }
  return { fresh: age < seconds, ageSeconds: Math.floor(age), lifetimeSeconds: seconds, source, freshUntil, staleIfErrorUntil: freshUntil + staleMs };
}
