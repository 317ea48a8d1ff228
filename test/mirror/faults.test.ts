/**
 * Upstream trouble. For each fault: no client gets a clean short body, nothing partial is
 * cached, and the next request heals.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { PullThroughMirror } from '../../src/mirror/mirror.ts';
import { bodyOf, fetchRaw, sha256, startMirror, startUpstream, until, type Fault, type UpstreamFile } from './support.ts';

const FILE = 'amd64-usr/4152.2.0/flatcar_production_pxe_image.cpio.gz';
const SIZE = 1024 * 1024 + 123;

/** The cache holds only whole, listed files: nothing in tmp/, two files (data, sidecar) per listed entry. */
async function assertCacheConsistent(mirror: PullThroughMirror, cacheDir: string): Promise<void> {
  await mirror.settled();
  assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), []);
  assert.equal((await readdir(path.join(cacheDir, 'objects'))).length, mirror.list().length * 2);
}

async function faulty(t: TestContext, fault: Fault, file: Partial<UpstreamFile> = {}, settings = {}) {
  const body = bodyOf(SIZE);
  const upstream = await startUpstream(t, { [FILE]: { body, fault, ...file } });
  // Only a stall needs the inactivity watchdog to fire soon; for the other faults a short one
  // would fire on a loaded machine before the first byte and turn the fault into a stall.
  const bodyInactivityMs = fault.kind === 'stall' ? 300 : 10_000;
  const mirror = await startMirror(t, upstream.url, { settings: { bodyInactivityMs, ...settings } });
  return { body, upstream, ...mirror };
}

describe('broken transfers without resume (no strong ETag or no ranges)', () => {
  const cases: { name: string; fault: Fault; file: Partial<UpstreamFile> }[] = [
    { name: 'connection dropped mid-body', fault: { kind: 'drop', after: 300 * 1024 }, file: { etag: null } },
    { name: 'stall mid-body', fault: { kind: 'stall', after: 300 * 1024 }, file: { ranges: false } },
    { name: 'body shorter than Content-Length', fault: { kind: 'short', after: 300 * 1024 }, file: { etag: 'W/"weak"' } },
  ];
  for (const { name, fault, file } of cases) {
    it(`${name}: clients are cut off, nothing is cached, the next request heals`, async (t) => {
      const { body, upstream, base, mirror, cacheDir } = await faulty(t, fault, file);
      const [a, b] = await Promise.all([fetchRaw(`${base}/mirror/up/${FILE}`), fetchRaw(`${base}/mirror/up/${FILE}`)]);
      for (const response of [a, b]) {
        // 0: reset before its first byte went out, which is as visible a failure.
        assert.ok(response.status === 200 || response.status === 0, String(response.status));
        assert.equal(response.complete, false, 'the client must see the transfer fail');
        assert.ok(response.body.length < body.length);
      }
      assert.equal(upstream.requestsFor(FILE).length, 1);
      assert.equal(mirror.stats().failedFills, 1);
      assert.equal(mirror.stats().resumes, 0);
      assert.equal(mirror.list().length, 0);
      await assertCacheConsistent(mirror, cacheDir);

      const healed = await fetchRaw(`${base}/mirror/up/${FILE}`);
      assert.equal(healed.complete, true);
      assert.equal(sha256(healed.body), sha256(body));
      assert.equal(upstream.requestsFor(FILE).length, 2);
      await assertCacheConsistent(mirror, cacheDir);
      assert.equal(mirror.list().length, 1);
    });
  }
});

describe('broken transfers resumed (strong ETag and byte ranges)', () => {
  // A reset can discard bytes the mirror's kernel already had, so the drop waits until they are in.
  const dropped = Promise.withResolvers<void>();
  const cases: { name: string; fault: Fault; broken?: () => void }[] = [
    { name: 'connection dropped mid-body', fault: { kind: 'drop', after: 300 * 1024, when: dropped.promise }, broken: () => dropped.resolve() },
    { name: 'stall mid-body', fault: { kind: 'stall', after: 300 * 1024 } },
    { name: 'body shorter than Content-Length', fault: { kind: 'short', after: 300 * 1024 } },
  ];
  for (const { name, fault, broken } of cases) {
    it(`${name}: the fill resumes with Range + If-Match and clients get the whole file`, async (t) => {
      const { body, upstream, base, mirror, cacheDir } = await faulty(t, fault);
      const pending = fetchRaw(`${base}/mirror/up/${FILE}`);
      // Only the drop needs the bytes before the break in first; for the other faults the count
      // passes 300 KiB at a moment a poll can miss (the resume starts at once).
      if (broken) {
        await until(() => (mirror.filling()[0]?.bytes ?? 0) >= 300 * 1024, 'the bytes before the break');
        broken();
      }
      const response = await pending;
      assert.equal(response.complete, true);
      assert.equal(sha256(response.body), sha256(body));
      const seen = upstream.requestsFor(FILE);
      assert.equal(seen.length, 2);
      assert.equal(seen[1]?.headers.range, `bytes=${300 * 1024}-`);
      assert.equal(seen[1]?.headers['if-match'], `"${sha256(body).slice(0, 16)}"`);
      assert.equal(mirror.stats().resumes, 1);
      assert.equal(mirror.stats().upstreamBytes, body.length);
      await assertCacheConsistent(mirror, cacheDir);
      assert.equal(mirror.list()[0]?.sha512.length, 128);
      const again = await fetchRaw(`${base}/mirror/up/${FILE}`);
      assert.equal(sha256(again.body), sha256(body));
      assert.equal(upstream.requestsFor(FILE).length, 2);
    });
  }

  it('refuses to splice when the file changed upstream between the break and the resume', async (t) => {
    const drop = Promise.withResolvers<void>();
    const { body, upstream, base, mirror, cacheDir } = await faulty(t, { kind: 'drop', after: 300 * 1024, when: drop.promise });
    const pending = fetchRaw(`${base}/mirror/up/${FILE}`);
    await until(() => mirror.filling()[0]?.bytes === 300 * 1024, 'the bytes before the break');
    const changed = bodyOf(SIZE);
    upstream.files.set(FILE, { body: changed });
    drop.resolve();
    const cut = await pending;
    assert.equal(cut.complete, false);
    const seen = upstream.requestsFor(FILE);
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.headers['if-match'], `"${sha256(body).slice(0, 16)}"`);
    assert.equal(mirror.list().length, 0);
    await assertCacheConsistent(mirror, cacheDir);
    const healed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(healed.complete, true);
    assert.equal(sha256(healed.body), sha256(changed));
  });

  it('gives up after a few resumes that keep breaking', async (t) => {
    const { body, upstream, base, mirror, cacheDir } = await faulty(t, { kind: 'drop', after: 1000 }, { faultTimes: 10 });
    const cut = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(cut.complete, false);
    assert.equal(upstream.requestsFor(FILE).length, 4, 'the first request and three resumes');
    assert.equal(mirror.stats().resumes, 3);
    await assertCacheConsistent(mirror, cacheDir);
    upstream.files.set(FILE, { body });
    const healed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(sha256(healed.body), sha256(body));
  });
});

describe('upstream errors', () => {
  it('answers an upstream 500 with 502 and a clear message, caches nothing, then heals', async (t) => {
    const { body, base, mirror, cacheDir } = await faulty(t, { kind: 'status', status: 500 });
    const failed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(failed.status, 502);
    assert.match(failed.body.toString(), /upstream http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4152\.2\.0\/flatcar_production_pxe_image\.cpio\.gz answered 500/);
    assert.equal(failed.headers['cache-control'], 'no-store');
    await assertCacheConsistent(mirror, cacheDir);
    const healed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(healed.status, 200);
    assert.equal(sha256(healed.body), sha256(body));
  });

  it('answers 504 when the upstream sends no headers in time', async (t) => {
    const { body, base, mirror } = await faulty(t, { kind: 'hang' }, {}, { headersTimeoutMs: 300 });
    const failed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(failed.status, 504);
    assert.match(failed.body.toString(), /did not answer within 0\.3 s/);
    assert.equal(mirror.stats().failedFills, 1);
    const healed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(sha256(healed.body), sha256(body));
  });

  it('answers 502 when the upstream cannot be reached', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url);
    await upstream.close();
    const failed = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(failed.status, 502);
    assert.match(failed.body.toString(), /cannot connect to upstream .*ECONNREFUSED/);
  });

  it('serves a slow trickle whole (inactivity is not slowness)', async (t) => {
    const body = bodyOf(64 * 1024);
    const upstream = await startUpstream(t, { [FILE]: { body, etag: null, fault: { kind: 'trickle', chunk: 4096, delayMs: 5 } } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { settings: { bodyInactivityMs: 2000 } });
    const [a, b] = await Promise.all([fetchRaw(`${base}/mirror/up/${FILE}`), fetchRaw(`${base}/mirror/up/${FILE}`)]);
    assert.equal(sha256(a.body), sha256(body));
    assert.equal(sha256(b.body), sha256(body));
    assert.equal(mirror.stats().failedFills, 0);
    await assertCacheConsistent(mirror, cacheDir);
    assert.equal(mirror.list().length, 1);
  });

  it('answers 404, remembers it for notFoundTtl, and forgets it on purge', async (t) => {
    const upstream = await startUpstream(t);
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { notFoundTtlMs: 60_000 } });
    const first = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(first.status, 404);
    assert.match(first.body.toString(), /not found upstream/);
    const second = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(second.status, 404);
    assert.equal(upstream.requestsFor(FILE).length, 1);
    assert.equal(mirror.stats().notFoundCached, 1);
    // Published meanwhile: the remembered 404 still answers until it expires or is purged.
    const body = bodyOf(1000);
    upstream.files.set(FILE, { body });
    assert.equal((await fetchRaw(`${base}/mirror/up/${FILE}`)).status, 404);
    assert.equal(mirror.purge('up', FILE), true);
    const found = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(found.status, 200);
    assert.deepEqual(found.body, body);
  });

  it('does not remember a 404 when notFoundTtl is 0', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url, { settings: { notFoundTtlMs: 0 } });
    assert.equal((await fetchRaw(`${base}/mirror/up/${FILE}`)).status, 404);
    assert.equal((await fetchRaw(`${base}/mirror/up/${FILE}`)).status, 404);
    assert.equal(upstream.requestsFor(FILE).length, 2);
  });

  it('refuses unknown mirrors and unsafe paths', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url);
    const unknown = await fetchRaw(`${base}/mirror/nope/${FILE}`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.toString(), /no mirror named "nope"/);
    for (const bad of ['a/%2e%2e/b', 'a/.hidden', 'a//b', 'a/%5cb']) {
      const response = await fetchRaw(`${base}/mirror/up/${bad}`);
      assert.equal(response.status, 400, bad);
    }
    assert.equal(upstream.requests.length, 0);
  });
});
