/**
 * The mirror as a shared HTTP cache for mutable paths: the upstream's Cache-Control, Expires,
 * Age and Vary decide freshness and storage, revalidation is conditional and coalesced,
 * stale-if-error is bounded, the whole URL is the key, and the upstream's end-to-end headers
 * and ETag reach the clients.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { defineMirror } from '../../src/mirror/config.ts';
import { bodyOf, fetchRaw, sha256, sha512, startMirror, startUpstream, TOKEN, until } from './support.ts';

const MUTABLE = 'amd64-usr/current/flatcar_production_pxe.vmlinuz';

/** A clock the test moves; it starts at the real time, so upstream Date fields agree with it. */
function testClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (seconds: number) => void (offset += seconds * 1000) };
}

const httpDate = (ms: number) => new Date(ms).toUTCString();

describe('no-cache', () => {
  it('serves a file replaced upstream at once, revalidating every request with the upstream ETag', async (t) => {
    const old = Buffer.from('old kernel\n');
    const upstream = await startUpstream(t, { [MUTABLE]: { body: old, headers: { 'cache-control': 'public, no-cache' } } });
    // The default lifetime is long: only the upstream's no-cache makes the mirror ask again.
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 300_000 } });
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/${MUTABLE}`)).body, old);
    await mirror.settled();

    const same = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.deepEqual(same.body, old);
    assert.equal(same.headers['x-cache-status'], 'HIT');
    assert.equal(same.headers['cache-control'], 'public, no-cache');
    await mirror.settled();

    const replaced = Buffer.from('new kernel, longer than the old one\n');
    upstream.files.set(MUTABLE, { body: replaced, headers: { 'cache-control': 'public, no-cache' } });
    const fresh = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.deepEqual(fresh.body, replaced);
    await mirror.settled();

    const seen = upstream.requestsFor(MUTABLE);
    assert.equal(seen.length, 3);
    assert.equal(seen[0]?.headers['if-none-match'], undefined);
    assert.equal(seen[1]?.headers['if-none-match'], `"${sha256(old).slice(0, 16)}"`);
    assert.equal(seen[2]?.headers['if-none-match'], `"${sha256(old).slice(0, 16)}"`);
    assert.equal(mirror.stats().revalidations, 2);
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/${MUTABLE}`)).body, replaced);
  });

  it('sends 22 simultaneous requests for a stale file upstream as one conditional request', async (t) => {
    const body = bodyOf(64 * 1024);
    const upstream = await startUpstream(t, { [MUTABLE]: { body, headers: { 'cache-control': 'no-cache' } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    await mirror.settled();

    const answer = Promise.withResolvers<void>();
    const file = upstream.files.get(MUTABLE);
    assert.ok(file);
    file.fault = { kind: 'delay', until: answer.promise };
    const coalescedBefore = mirror.stats().coalesced;
    const requests = Array.from({ length: 22 }, () => fetchRaw(`${base}/mirror/up/${MUTABLE}`));
    await until(() => mirror.stats().coalesced - coalescedBefore === 21, 'the 21 others to join the revalidation');
    answer.resolve();
    const responses = await Promise.all(requests);
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.equal(sha256(response.body), sha256(body));
    }
    const revalidations = upstream.requestsFor(MUTABLE).slice(1);
    assert.equal(revalidations.length, 1);
    assert.equal(revalidations[0]?.headers['if-none-match'], `"${sha256(body).slice(0, 16)}"`);
  });

  it('makes a later request for a no-cache answer whose body is in wait for it to be kept, then revalidate it', async (t) => {
    const body = bodyOf(16 * 1024);
    // The fill waits for the file's DIGESTS before it keeps the file: the window this test needs.
    const digests = Promise.withResolvers<void>();
    const upstream = await startUpstream(t, {
      [MUTABLE]: { body, headers: { 'cache-control': 'no-cache' } },
      [`${MUTABLE}.DIGESTS`]: { body: Buffer.from(`# SHA512 HASH\n${sha512(body)}  flatcar_production_pxe.vmlinuz\n`), fault: { kind: 'delay', until: digests.promise } },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    const first = fetchRaw(`${base}/mirror/flatcar-test/${MUTABLE}`);
    await until(() => mirror.filling()[0]?.bytes === body.length, 'the first body');
    // The lookup decides at once, while the first fill checks its digests.
    const second = mirror.lookup('flatcar-test', MUTABLE);
    digests.resolve();
    assert.equal(sha256((await first).body), sha256(body));
    const source = await second;
    assert.equal(source.kind, 'cached');
    if (source.kind === 'cached') source.lease.release();
    const seen = upstream.requestsFor(MUTABLE);
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.headers['if-none-match'], `"${sha256(body).slice(0, 16)}"`, 'the later request revalidated the kept copy');
    await mirror.settled();
    assert.equal(mirror.list().filter((file) => file.path === MUTABLE).length, 1);
  });

  it('keeps a file without a validator or freshness only for the request that fetched it', async (t) => {
    const upstream = await startUpstream(t, { 'current/bare': { body: Buffer.from('b'), etag: null }, 'current/dated': { body: Buffer.from('d'), etag: null, lastModified: 'Tue, 01 Oct 2024 10:00:00 GMT' } });
    const { base, mirror } = await startMirror(t, upstream.url);
    for (let i = 0; i < 2; i++) {
      await fetchRaw(`${base}/mirror/up/current/bare`);
      await fetchRaw(`${base}/mirror/up/current/dated`);
      await mirror.settled();
    }
    assert.equal(upstream.requestsFor('current/bare').length, 2, 'neither freshness nor a validator: asked again');
    assert.equal(upstream.requestsFor('current/dated').length, 1, 'a Last-Modified: mutableMaxAge applies');
  });

  it('revalidates a file whose upstream says must-revalidate or max-age=0 every time', async (t) => {
    const upstream = await startUpstream(t, {
      'current/a': { body: Buffer.from('a'), headers: { 'cache-control': 'must-revalidate' } },
      'current/b': { body: Buffer.from('b'), headers: { 'cache-control': 'max-age=0' } },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    for (let i = 0; i < 3; i++) {
      for (const name of ['a', 'b']) assert.deepEqual((await fetchRaw(`${base}/mirror/up/current/${name}`)).body, Buffer.from(name));
      await mirror.settled();
    }
    assert.equal(upstream.requestsFor('current/a').length, 3);
    assert.equal(upstream.requestsFor('current/b').length, 3);
  });
});

describe('freshness arithmetic', () => {
  it('keeps a max-age file fresh for its lifetime less its Age, and sends the Age', async (t) => {
    const clock = testClock();
    const upstream = await startUpstream(t, {
      'current/max-age': { body: Buffer.from('m'), headers: { 'cache-control': 'max-age=60' } },
      'current/aged': { body: Buffer.from('a'), headers: { 'cache-control': 'max-age=60', age: '50' } },
    });
    const { base, mirror } = await startMirror(t, upstream.url, { now: clock.now });
    await fetchRaw(`${base}/mirror/up/current/max-age`);
    await fetchRaw(`${base}/mirror/up/current/aged`);
    await mirror.settled();

    clock.advance(30);
    const fresh = await fetchRaw(`${base}/mirror/up/current/max-age`);
    assert.equal(fresh.headers['x-cache-status'], 'HIT');
    assert.equal(fresh.headers['cache-control'], 'max-age=60');
    const age = Number(fresh.headers.age);
    assert.ok(age >= 30 && age <= 32, `Age ${fresh.headers.age}`);
    assert.equal(upstream.requestsFor('current/max-age').length, 1);
    // 50 s old when it came, 30 s here: past its 60 s.
    await fetchRaw(`${base}/mirror/up/current/aged`);
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/aged').length, 2);

    clock.advance(40);
    await fetchRaw(`${base}/mirror/up/current/max-age`);
    await mirror.settled();
    const seen = upstream.requestsFor('current/max-age');
    assert.equal(seen.length, 2);
    assert.ok(seen[1]?.headers['if-none-match'], 'the revalidation is conditional');
  });

  it('takes s-maxage over max-age, and Expires against the upstream Date', async (t) => {
    const clock = testClock();
    const start = clock.now();
    const upstream = await startUpstream(t, {
      'current/shared': { body: Buffer.from('s'), headers: { 'cache-control': 'max-age=10, s-maxage=100' } },
      // The upstream's clock is 1000 s ahead: Expires counts from its Date, not from the mirror's clock.
      'current/expires': { body: Buffer.from('e'), headers: { date: httpDate(start + 1000_000), expires: httpDate(start + 1000_000 + 100_000) } },
      'current/expired': { body: Buffer.from('x'), headers: { expires: '0' } },
      // A Date 1000 s behind the mirror's clock makes the answer that old (RFC 9111 apparent age).
      'current/old-date': { body: Buffer.from('o'), headers: { date: httpDate(start - 1000_000), 'cache-control': 'max-age=600' } },
    });
    const { base, mirror } = await startMirror(t, upstream.url, { now: clock.now });
    for (const name of ['shared', 'expires', 'expired', 'old-date']) await fetchRaw(`${base}/mirror/up/current/${name}`);
    await mirror.settled();

    clock.advance(50);
    for (const name of ['shared', 'expires', 'expired', 'old-date']) await fetchRaw(`${base}/mirror/up/current/${name}`);
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/shared').length, 1, 's-maxage=100 wins over max-age=10');
    assert.equal(upstream.requestsFor('current/expires').length, 1);
    assert.equal(upstream.requestsFor('current/expired').length, 2, 'an invalid Expires is already expired');
    assert.equal(upstream.requestsFor('current/old-date').length, 2);

    clock.advance(100);
    for (const name of ['shared', 'expires']) await fetchRaw(`${base}/mirror/up/current/${name}`);
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/shared').length, 2);
    assert.equal(upstream.requestsFor('current/expires').length, 2);
  });

  it('falls back to mutableMaxAge when the upstream says nothing, and the override wins for its mirror', async (t) => {
    const clock = testClock();
    const upstream = await startUpstream(t, { 'current/plain': { body: Buffer.from('p') }, 'current/nocache': { body: Buffer.from('n'), headers: { 'cache-control': 'no-store' } } });
    const { base, mirror } = await startMirror(t, upstream.url, {
      now: clock.now,
      settings: {
        mutableMaxAgeMs: 100_000,
        mirrors: {
          up: defineMirror('up', upstream.url),
          release: defineMirror('release', upstream.url, { freshness: { ignoreUpstream: true, maxAge: 1000 } }),
        },
      },
    });
    await fetchRaw(`${base}/mirror/up/current/plain`);
    await fetchRaw(`${base}/mirror/release/current/nocache`);
    await mirror.settled();
    clock.advance(50);
    const plain = await fetchRaw(`${base}/mirror/up/current/plain`);
    assert.equal(plain.headers['cache-control'], 'public, no-cache', 'the mirror says no-cache when the upstream says nothing');
    const ignored = await fetchRaw(`${base}/mirror/release/current/nocache`);
    assert.equal(ignored.headers['x-cache-status'], 'HIT', 'no-store is ignored for this mirror');
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/plain').length, 1);
    assert.equal(upstream.requestsFor('current/nocache').length, 1);

    clock.advance(100);
    await fetchRaw(`${base}/mirror/up/current/plain`);
    await fetchRaw(`${base}/mirror/release/current/nocache`);
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/plain').length, 2);
    assert.equal(upstream.requestsFor('current/nocache').length, 1, 'fresh for the override maxAge');
  });

  it('never revalidates a versioned path, whatever the upstream says', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/4152.2.0/kernel': { body: Buffer.from('k'), headers: { 'cache-control': 'no-cache' } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    for (let i = 0; i < 3; i++) {
      const response = await fetchRaw(`${base}/mirror/up/amd64-usr/4152.2.0/kernel`);
      assert.equal(response.headers['cache-control'], 'public, max-age=31536000, immutable');
      await mirror.settled();
    }
    assert.equal(upstream.requestsFor('amd64-usr/4152.2.0/kernel').length, 1);
  });
});

describe('what is not kept', () => {
  it('serves a no-store answer through and keeps nothing, dropping the copy it replaces', async (t) => {
    const upstream = await startUpstream(t, { 'current/list': { body: Buffer.from('one\n'), headers: { 'cache-control': 'no-cache' } } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/current/list`);
    await mirror.settled();
    assert.equal(mirror.list().length, 1);

    upstream.files.set('current/list', { body: Buffer.from('two\n'), headers: { 'cache-control': 'no-store' } });
    for (let i = 0; i < 2; i++) {
      const response = await fetchRaw(`${base}/mirror/up/current/list`);
      assert.deepEqual(response.body, Buffer.from('two\n'));
      assert.equal(response.headers['cache-control'], 'no-store');
      await mirror.settled();
    }
    assert.equal(mirror.list().length, 0);
    assert.deepEqual(await readdir(path.join(cacheDir, 'objects')), []);
    assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), []);
    assert.equal(upstream.requestsFor('current/list').length, 3);
  });

  it('does not let a second request ride a no-store answer: it asks on its own', async (t) => {
    const body = bodyOf(32 * 1024);
    const answer = Promise.withResolvers<void>();
    const upstream = await startUpstream(t, { 'current/private': { body, headers: { 'cache-control': 'private' }, fault: { kind: 'delay', until: answer.promise } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const first = fetchRaw(`${base}/mirror/up/current/private`);
    await until(() => upstream.requestsFor('current/private').length === 1, 'the first request upstream');
    const second = fetchRaw(`${base}/mirror/up/current/private`);
    await until(() => mirror.stats().coalesced === 1, 'the second request to wait for the first');
    answer.resolve();
    for (const response of await Promise.all([first, second])) assert.equal(sha256(response.body), sha256(body));
    await mirror.settled();
    assert.equal(upstream.requestsFor('current/private').length, 2);
    assert.equal(mirror.list().length, 0);
  });

  it('keeps a Vary: Accept-Encoding answer and passes any other Vary through unkept', async (t) => {
    const upstream = await startUpstream(t, {
      'current/encoded': { body: Buffer.from('e'), headers: { vary: 'Accept-Encoding' } },
      'current/negotiated': { body: Buffer.from('n'), headers: { vary: 'Accept-Language, Accept-Encoding' } },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    for (let i = 0; i < 2; i++) {
      const encoded = await fetchRaw(`${base}/mirror/up/current/encoded`);
      assert.equal(encoded.headers.vary, 'Accept-Encoding');
      await fetchRaw(`${base}/mirror/up/current/negotiated`);
      await mirror.settled();
    }
    assert.deepEqual(mirror.list().map((file) => file.path), ['current/encoded']);
    assert.equal(upstream.requestsFor('current/encoded').length, 1);
    assert.equal(upstream.requestsFor('current/negotiated').length, 2);
  });
});

describe('stale-if-error', () => {
  it('serves the stale copy while the upstream is down, says so, and stops at the stale-if-error bound', async (t) => {
    const clock = testClock();
    const body = Buffer.from('FLATCAR_VERSION=4152.2.0\n');
    const upstream = await startUpstream(t, {
      'current/version.txt': { body, headers: { 'cache-control': 'no-cache, stale-if-error=600' } },
      'current/default': { body, headers: { 'cache-control': 'no-cache' } },
      'current/strict': { body, headers: { 'cache-control': 'max-age=0, must-revalidate' } },
    });
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (_fields: object, message: string) => void warnings.push(message), error: () => undefined };
    const { base, mirror } = await startMirror(t, upstream.url, { now: clock.now, log, settings: { staleIfErrorMs: 3600_000 } });
    for (const name of ['version.txt', 'default', 'strict']) await fetchRaw(`${base}/mirror/up/current/${name}`);
    await mirror.settled();
    await upstream.close();

    clock.advance(300);
    const stale = await fetchRaw(`${base}/mirror/up/current/version.txt`);
    assert.equal(stale.status, 200);
    assert.deepEqual(stale.body, body);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.equal(stale.headers.warning, undefined);
    assert.equal((await fetchRaw(`${base}/mirror/up/current/default`)).headers['x-cache-status'], 'STALE');
    assert.equal((await fetchRaw(`${base}/mirror/up/current/strict`)).status, 502, 'must-revalidate forbids a stale answer');
    assert.equal(mirror.stats().staleServed, 2);
    assert.equal(warnings.filter((w) => w === 'mirror upstream failed; serving the stale copy').length, 2);

    // Past the upstream's 600 s, but within the mirror's default of an hour for the other.
    clock.advance(600);
    assert.equal((await fetchRaw(`${base}/mirror/up/current/version.txt`)).status, 502);
    assert.equal((await fetchRaw(`${base}/mirror/up/current/default`)).status, 200);
    clock.advance(3600);
    assert.equal((await fetchRaw(`${base}/mirror/up/current/default`)).status, 502);
    assert.equal(mirror.stats().staleServed, 3);
  });
});

describe('the whole URL', () => {
  it('keys and asks for the query: ?test=A and ?test=B are two files', async (t) => {
    const upstream = await startUpstream(t, {
      'current/file?test=A': { body: Buffer.from('A') },
      'current/file?test=B': { body: Buffer.from('B') },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/current/file?test=A`)).body, Buffer.from('A'));
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/current/file?test=B`)).body, Buffer.from('B'));
    await mirror.settled();
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/current/file?test=A`)).body, Buffer.from('A'));
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/current/file?test=%41`)).body, Buffer.from('A'), 'escapes of unreserved characters are one spelling');
    assert.deepEqual(
      upstream.requestsFor('current/file').map((request) => request.query),
      ['test=A', 'test=B'],
    );
    assert.deepEqual(mirror.list().map((file) => file.query).sort(), ['test=A', 'test=B']);
    assert.equal(mirror.list()[0]?.lifetimeFrom, 'default');

    assert.equal(mirror.purge('up', 'current/file', 'test=A'), true);
    const purged = await fetchRaw(`${base}/api/v1/mirror/up/current/file?test=B`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(purged.status, 204);
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
  });

  it('leaves ignoreQueryParams out of the key only: the upstream still gets them', async (t) => {
    const upstream = await startUpstream(t, { 'current/signed': { body: Buffer.from('s'), headers: { 'cache-control': 'max-age=3600' } } });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mirrors: { up: defineMirror('up', upstream.url, { ignoreQueryParams: ['signature', 'expires'] }) } } });
    await fetchRaw(`${base}/mirror/up/current/signed?v=1&signature=abc&expires=100`);
    await mirror.settled();
    const second = await fetchRaw(`${base}/mirror/up/current/signed?v=1&signature=def&expires=200`);
    assert.equal(second.headers['x-cache-status'], 'HIT');
    await fetchRaw(`${base}/mirror/up/current/signed?v=2&signature=ghi`);
    await mirror.settled();
    assert.deepEqual(
      upstream.requestsFor('current/signed').map((request) => request.query),
      ['v=1&signature=abc&expires=100', 'v=2&signature=ghi'],
    );
  });
});

describe('headers', () => {
  const kept = {
    'content-disposition': 'attachment; filename="kernel"',
    'content-location': '/files/kernel-4152',
    'content-language': 'en',
    link: '</kernel.sig>; rel="describedby"',
    'x-release': '4152.2.0',
  };

  it("keeps and serves the upstream's end-to-end headers, never hop-by-hop ones, growing or cached", async (t) => {
    const upstream = await startUpstream(t, {
      [MUTABLE]: { body: bodyOf(10_000), headers: { ...kept, connection: 'x-hop', 'x-hop': 'one hop', 'keep-alive': 'timeout=5', 'set-cookie': 'id=1', 'clear-site-data': '"*"', 'content-security-policy': "default-src 'none'" } },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    const growing = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    await mirror.settled();
    const cached = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.equal(growing.headers['x-cache-status'], 'MISS');
    assert.equal(cached.headers['x-cache-status'], 'HIT');
    for (const response of [growing, cached]) {
      for (const [name, value] of Object.entries(kept)) assert.equal(response.headers[name], value, name);
      assert.equal(response.headers['x-hop'], undefined);
      assert.equal(response.headers['clear-site-data'], undefined, "acts on bootdepot's host, not the file");
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
      assert.equal(response.headers['content-security-policy'], "default-src 'none', sandbox", "the upstream's policy and the mirror's sandbox");
      assert.equal(response.headers['set-cookie'], undefined);
      assert.notEqual(response.headers['keep-alive'], 'timeout=5');
    }
  });

  it("sends the upstream's strong ETag and answers If-None-Match with it 304", async (t) => {
    const body = bodyOf(5000);
    const upstream = await startUpstream(t, { [MUTABLE]: { body, etag: '"origin-v1"', headers: { 'cache-control': 'max-age=600' } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const first = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.equal(first.headers.etag, '"origin-v1"');
    await mirror.settled();
    const cached = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.equal(cached.headers.etag, '"origin-v1"');
    const notModified = await fetchRaw(`${base}/mirror/up/${MUTABLE}`, { headers: { 'if-none-match': '"origin-v1"' } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
    assert.equal(notModified.headers.etag, '"origin-v1"');
    const range = await fetchRaw(`${base}/mirror/up/${MUTABLE}`, { headers: { range: 'bytes=0-9', 'if-range': '"origin-v1"' } });
    assert.equal(range.status, 206);
    assert.deepEqual(range.body, body.subarray(0, 10));
    assert.equal((await fetchRaw(`${base}/mirror/up/${MUTABLE}`, { headers: { 'if-none-match': '"other"' } })).status, 200);
  });

  it('keeps its own strong ETag beside a weak upstream one, and accepts the weak one in If-None-Match', async (t) => {
    const upstream = await startUpstream(t, { [MUTABLE]: { body: bodyOf(5000), etag: 'W/"weak-1"' } });
    const { base, mirror } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    await mirror.settled();
    const cached = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.match(cached.headers.etag ?? '', /^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal((await fetchRaw(`${base}/mirror/up/${MUTABLE}`, { headers: { 'if-none-match': 'W/"weak-1"' } })).status, 304);
    assert.equal((await fetchRaw(`${base}/mirror/up/${MUTABLE}`, { headers: { 'if-none-match': cached.headers.etag ?? '' } })).status, 304);
  });

  it('updates kept headers from a 304', async (t) => {
    const upstream = await startUpstream(t, { [MUTABLE]: { body: Buffer.from('k'), headers: { 'cache-control': 'no-cache', 'x-release': 'one' } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    await mirror.settled();
    const file = upstream.files.get(MUTABLE);
    assert.ok(file);
    const confirmedAt = 'Tue, 01 Dec 2026 10:00:00 GMT';
    file.headers = { 'cache-control': 'no-cache', 'x-release': 'two', date: confirmedAt };
    const revalidated = await fetchRaw(`${base}/mirror/up/${MUTABLE}`);
    assert.equal(revalidated.headers['x-cache-status'], 'HIT');
    assert.equal(revalidated.headers['x-release'], 'two');
    assert.equal(revalidated.headers.date, confirmedAt, "the 304's Date is the copy's now");
  });
});
