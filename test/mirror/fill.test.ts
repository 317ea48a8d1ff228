/** One upstream transfer per file: coalescing, late joiners, ranges and HEAD during a fill, chunked upstreams. */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bodyOf, fetchRaw, sha256, startMirror, startUpstream, until } from './support.ts';

const FILE = 'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz';

function gate() {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, open: resolve };
}

describe('coalescing', () => {
  it('answers 50 cold concurrent requests with one upstream GET and 50 identical bodies', async (t) => {
    const body = bodyOf(2 * 1024 * 1024 + 3);
    const release = gate();
    const upstream = await startUpstream(t, { [FILE]: { body, fault: { kind: 'gate', after: 64 * 1024, gate: release.promise } } });
    const { base, mirror } = await startMirror(t, upstream.url);

    const responses = Array.from({ length: 50 }, () => fetchRaw(`${base}/mirror/up/${FILE}`));
    // Every request has reached the mirror (and joined the one transfer) before the upstream goes on.
    await until(() => mirror.stats().misses + mirror.stats().coalesced === 50, 'all 50 requests to arrive');
    release.open();
    const results = await Promise.all(responses);

    assert.equal(upstream.requestsFor(FILE).length, 1);
    const expected = sha256(body);
    for (const result of results) {
      assert.equal(result.status, 200);
      assert.equal(result.complete, true);
      assert.equal(sha256(result.body), expected);
    }
    const stats = mirror.stats();
    assert.equal(stats.misses, 1);
    assert.equal(stats.coalesced, 49);
    assert.equal(stats.upstreamBytes, body.length);
    assert.equal(new Set(results.map((r) => r.headers.etag)).size, 1);
  });

  it('gives a late joiner what is on disk and then the rest, and answers a Range as soon as its bytes are there', async (t) => {
    const body = bodyOf(1024 * 1024);
    const release = gate();
    const half = 512 * 1024;
    const upstream = await startUpstream(t, { [FILE]: { body, fault: { kind: 'gate', after: half, gate: release.promise } } });
    const { base, mirror } = await startMirror(t, upstream.url);

    const first = fetchRaw(`${base}/mirror/up/${FILE}`);
    await until(() => mirror.filling()[0]?.bytes === half, 'the first half to arrive');

    // Bytes that are there: answered completely while the upstream is still held.
    const early = await fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(early.status, 206);
    assert.equal(early.complete, true);
    assert.equal(early.headers['content-range'], `bytes 1000-1999/${body.length}`);
    assert.deepEqual(early.body, body.subarray(1000, 2000));
    assert.equal(mirror.filling().length, 1, 'the fill is still in progress');

    const late = fetchRaw(`${base}/mirror/up/${FILE}`);
    const beyond = fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { range: 'bytes=900000-900099' } });
    const head = await fetchRaw(`${base}/mirror/up/${FILE}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(body.length));
    await until(() => mirror.stats().coalesced >= 4, 'the late requests to join');
    release.open();

    const [a, b, c] = await Promise.all([first, late, beyond]);
    assert.equal(sha256(a.body), sha256(body));
    assert.equal(sha256(b.body), sha256(body));
    assert.equal(a.complete && b.complete, true);
    assert.equal(c.status, 206);
    assert.deepEqual(c.body, body.subarray(900000, 900100));
    assert.equal(upstream.requestsFor(FILE).length, 1);

    // The validators seen during the fill are the cached file's.
    await until(() => mirror.filling().length === 0, 'the fill to be committed');
    const cached = await fetchRaw(`${base}/mirror/up/${FILE}`, { method: 'HEAD' });
    assert.equal(cached.headers.etag, head.headers.etag);
    assert.equal(cached.headers['last-modified'], head.headers['last-modified']);
    const revalidated = await fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { 'if-none-match': String(head.headers.etag) } });
    assert.equal(revalidated.status, 304);
  });

  it('serves multipart ranges and 304s during a fill like for a cached file', async (t) => {
    const body = bodyOf(256 * 1024);
    const release = gate();
    const upstream = await startUpstream(t, { [FILE]: { body, fault: { kind: 'gate', after: 128 * 1024, gate: release.promise } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const first = fetchRaw(`${base}/mirror/up/${FILE}`);
    await until(() => (mirror.filling()[0]?.bytes ?? 0) >= 128 * 1024, 'half the file');
    const head = await fetchRaw(`${base}/mirror/up/${FILE}`, { method: 'HEAD' });
    const notModified = await fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { 'if-none-match': String(head.headers.etag) } });
    assert.equal(notModified.status, 304);
    const multipart = await fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { range: 'bytes=0-9,100-109' } });
    assert.equal(multipart.status, 206);
    assert.match(String(multipart.headers['content-type']), /^multipart\/byteranges; boundary=/);
    assert.ok(multipart.body.includes(body.subarray(100, 110)));
    const unsatisfiable = await fetchRaw(`${base}/mirror/up/${FILE}`, { headers: { range: `bytes=${body.length + 10}-` } });
    assert.equal(unsatisfiable.status, 416);
    release.open();
    assert.equal(sha256((await first).body), sha256(body));
  });
});

describe('chunked upstream (no Content-Length)', () => {
  it('streams a plain GET chunked and answers Range and HEAD once the fill is complete', async (t) => {
    const body = bodyOf(700 * 1024);
    const release = gate();
    const upstream = await startUpstream(t, { 'pub/file.iso': { body, chunked: true, fault: { kind: 'gate', after: 100 * 1024, gate: release.promise } } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url);

    const plain = fetchRaw(`${base}/mirror/up/pub/file.iso`);
    await until(() => (mirror.filling()[0]?.bytes ?? 0) >= 100 * 1024, 'the first bytes');
    const ranged = fetchRaw(`${base}/mirror/up/pub/file.iso`, { headers: { range: 'bytes=-100' } });
    const head = fetchRaw(`${base}/mirror/up/pub/file.iso`, { method: 'HEAD' });
    await until(() => mirror.stats().coalesced >= 2, 'the Range and HEAD requests to join');
    release.open();

    const [a, b, c] = await Promise.all([plain, ranged, head]);
    assert.equal(a.status, 200);
    assert.equal(a.headers['transfer-encoding'], 'chunked');
    assert.equal(a.complete, true);
    assert.equal(sha256(a.body), sha256(body));
    assert.equal(b.status, 206);
    assert.deepEqual(b.body, body.subarray(body.length - 100));
    assert.equal(c.headers['content-length'], String(body.length));
    await until(() => mirror.filling().length === 0, 'commit');
    assert.equal((await readdir(path.join(cacheDir, 'objects'))).length, 2);
  });

  it('cuts chunked clients off without the closing chunk when the fill fails', async (t) => {
    const body = bodyOf(300 * 1024);
    const upstream = await startUpstream(t, { 'pub/file.iso': { body, chunked: true, fault: { kind: 'drop', after: 100 * 1024 } } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const cut = await fetchRaw(`${base}/mirror/up/pub/file.iso`);
    assert.equal(cut.complete, false);
    assert.ok(cut.body.length < body.length);
    assert.equal(mirror.list().length, 0);
    const healed = await fetchRaw(`${base}/mirror/up/pub/file.iso`);
    assert.equal(healed.complete, true);
    assert.equal(sha256(healed.body), sha256(body));
  });
});
