/** RFC 9111 arithmetic for mutable mirror files: directives, lifetime, age, stale-if-error. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateFreshness, freshnessLifetime, initialAge, parseCacheControl, storability, type FreshnessPolicy } from '../../src/mirror/freshness.ts';
import { keyQuery, normaliseQuery, cacheKey } from '../../src/mirror/paths.ts';

const policy: FreshnessPolicy = { defaultMaxAgeMs: 300_000, ignoreUpstream: false, staleIfErrorMs: 86_400_000 };
const T = Date.parse('2026-12-01T12:00:00Z');
const date = (ms: number) => new Date(ms).toUTCString();

describe('Cache-Control', () => {
  it('reads directives case-insensitively, quoted values with commas, the first of a repeated one', () => {
    const directives = parseCacheControl('Public, MAX-AGE="60", no-cache="set-cookie, x-a", s-maxage=10, max-age=5, stale-if-error=30');
    assert.equal(directives.maxAge, 60);
    assert.equal(directives.sMaxAge, 10);
    assert.equal(directives.noCache, true);
    assert.equal(directives.staleIfError, 30);
    assert.equal(directives.noStore, false);
  });

  it('reads an invalid delta-seconds as 0 and skips malformed elements', () => {
    assert.equal(parseCacheControl('max-age=soon').maxAge, 0);
    assert.equal(parseCacheControl('max-age=-1').maxAge, 0);
    assert.equal(parseCacheControl('max-age=99999999999999999999').maxAge, 2_147_483_648);
    const skipped = parseCacheControl('max-age=10 junk, no-store');
    assert.equal(skipped.noStore, true);
  });
});

describe('storability', () => {
  it('refuses no-store, private and a Vary beyond Accept-Encoding, unless the upstream is ignored', () => {
    assert.deepEqual(storability({ 'cache-control': 'public, max-age=10' }, policy), { storable: true });
    assert.deepEqual(storability({ 'cache-control': 'no-store' }, policy), { storable: false, reason: 'Cache-Control: no-store' });
    assert.deepEqual(storability({ 'cache-control': 'private, max-age=60' }, policy), { storable: false, reason: 'Cache-Control: private' });
    assert.deepEqual(storability({ vary: 'accept-encoding' }, policy), { storable: true });
    assert.deepEqual(storability({ vary: 'Accept-Encoding, User-Agent' }, policy), { storable: false, reason: 'Vary: user-agent' });
    assert.deepEqual(storability({ vary: '*' }, policy), { storable: false, reason: 'Vary: *' });
    assert.deepEqual(storability({ 'cache-control': 'no-store', vary: '*' }, { ignoreUpstream: true }), { storable: true });
  });
});

describe('lifetime', () => {
  it('takes no-cache, then s-maxage, max-age, Expires minus Date, and the default last', () => {
    const life = (headers: Record<string, string>) => freshnessLifetime(headers, T, policy);
    assert.deepEqual(life({ 'cache-control': 'max-age=600, no-cache' }), { seconds: 0, source: 'no-cache' });
    assert.deepEqual(life({ 'cache-control': 'max-age=600, s-maxage=20', expires: date(T + 5000_000) }), { seconds: 20, source: 's-maxage' });
    assert.deepEqual(life({ 'cache-control': 'max-age=600', expires: date(T + 5000_000) }), { seconds: 600, source: 'max-age' });
    assert.deepEqual(life({ date: date(T - 60_000), expires: date(T + 60_000) }), { seconds: 120, source: 'expires' });
    assert.deepEqual(life({ expires: date(T + 30_000) }), { seconds: 30, source: 'expires' });
    assert.deepEqual(life({ expires: 'Thu, 01 Jan 1970 00:00:00 GMT', date: date(T) }), { seconds: 0, source: 'expires' });
    assert.deepEqual(life({ expires: 'never' }), { seconds: 0, source: 'expires' });
    assert.deepEqual(life({ 'cache-control': 'must-revalidate' }), { seconds: 0, source: 'must-revalidate' });
    assert.deepEqual(life({ 'cache-control': 'public' }), { seconds: 300, source: 'default' });
    assert.deepEqual(freshnessLifetime({}, T, policy, false), { seconds: 0, source: 'no-validator' });
    assert.deepEqual(freshnessLifetime({ 'cache-control': 'max-age=5' }, T, policy, false), { seconds: 5, source: 'max-age' });
    assert.deepEqual(freshnessLifetime({ 'cache-control': 'no-cache' }, T, { ...policy, ignoreUpstream: true }), { seconds: 300, source: 'override' });
  });
});

describe('CDN-Cache-Control', () => {
  it('governs instead of Cache-Control and Expires when it says anything', () => {
    assert.deepEqual(freshnessLifetime({ 'cdn-cache-control': 'max-age=30', 'cache-control': 'max-age=600', expires: date(T + 900_000) }, T, policy), { seconds: 30, source: 'max-age' });
    assert.deepEqual(freshnessLifetime({ 'cdn-cache-control': 'no-cache, max-age=60', 'cache-control': 'max-age=600' }, T, policy), { seconds: 0, source: 'no-cache' });
    // Not a valid dictionary, or nothing known with a valid value: set aside for Cache-Control.
    for (const invalid of [' ', 'public', 'max-age=10000, &&&&&', 'max-age="10000"', 'max-age=-5', 'max-age=1.5'])
      assert.deepEqual(freshnessLifetime({ 'cdn-cache-control': invalid, 'cache-control': 'max-age=600' }, T, policy), { seconds: 600, source: 'max-age' }, invalid);
    assert.deepEqual(storability({ 'cdn-cache-control': 'max-age="10000"', 'cache-control': 'no-store' }, policy), { storable: false, reason: 'Cache-Control: no-store' });
    assert.deepEqual(storability({ 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=600' }, policy), { storable: false, reason: 'CDN-Cache-Control: no-store' });
    assert.deepEqual(storability({ 'cdn-cache-control': 'max-age=60', 'cache-control': 'no-store' }, policy), { storable: true });
  });
});

describe('age', () => {
  it('is the larger of the apparent age and Age plus the response delay', () => {
    // Date 10 s before the answer arrived; Age 3; the request took 2 s.
    assert.equal(initialAge({ date: date(T - 10_000), age: '3' }, T - 2000, T, policy), 10);
    assert.equal(initialAge({ date: date(T - 1000), age: '30' }, T - 2000, T, policy), 32);
    // An upstream clock ahead of ours is no negative age.
    assert.equal(initialAge({ date: date(T + 60_000) }, T, T, policy), 0);
    assert.equal(initialAge({ age: '100' }, T, T, { ignoreUpstream: true }), 0);
    assert.equal(initialAge({ age: '7200, 0' }, T, T, policy), 7200, 'the first member of a list');
    assert.equal(initialAge({ age: 'soon' }, T, T, policy), 0);
  });

  it('is fresh while the current age is below the lifetime, and bounds stale-if-error', () => {
    const stored = { headers: { 'cache-control': 'max-age=60, stale-if-error=120', age: '20' }, responseTime: T, initialAgeSeconds: 20 };
    const at = (seconds: number) => evaluateFreshness(stored, policy, T + seconds * 1000);
    assert.equal(at(39).fresh, true);
    assert.equal(at(39).ageSeconds, 59);
    assert.equal(at(40).fresh, false);
    assert.equal(at(0).freshUntil, T + 40_000);
    assert.equal(at(0).staleIfErrorUntil, T + 160_000);
    const strict = evaluateFreshness({ ...stored, headers: { 'cache-control': 'max-age=60, must-revalidate' } }, policy, T);
    assert.equal(strict.staleIfErrorUntil, strict.freshUntil);
    const plain = evaluateFreshness({ headers: { 'cache-control': 'no-cache' }, responseTime: T, initialAgeSeconds: 0 }, policy, T);
    assert.equal(plain.fresh, false);
    assert.equal(plain.staleIfErrorUntil, T + 86_400_000);
  });
});

describe('query keys', () => {
  it('spells a query one way, keeping order and +, and leaves named parameters out of the key', () => {
    assert.equal(normaliseQuery('?a=%7e&&b=%2f%zz&c=x+y&'), 'a=~&b=%2F%25zz&c=x+y');
    assert.equal(normaliseQuery('b=2&a=1'), 'b=2&a=1');
    assert.equal(normaliseQuery('q=a b"'), 'q=a%20b%22');
    assert.equal(keyQuery('v=1&sig=abc&x=2&sig=def', ['sig']), 'v=1&x=2');
    assert.equal(keyQuery('v=1&s%69g=abc', ['sig']), 'v=1');
  });

  it('never gives a path with ? or % the key of a path with a query', () => {
    assert.equal(cacheKey('up', 'current/file', 'test=A'), 'up/current/file?test=A');
    assert.notEqual(cacheKey('up', 'current/file?test=A'), cacheKey('up', 'current/file', 'test=A'));
    assert.notEqual(cacheKey('up', 'a%3Fb'), cacheKey('up', 'a?b'));
    assert.equal(cacheKey('up', 'current/file'), 'up/current/file');
  });
});
