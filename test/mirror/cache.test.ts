/** The cache on disk: restarts, the byte budget and eviction, freshness, stale-if-error, a full disk. */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeWholeChunk } from '../../src/mirror/fill.ts';
import { bodyOf, fetchRaw, sha256, startMirror, startUpstream, until } from './support.ts';

const V = 'amd64-usr/4152.2.0';

describe('restart', () => {
  it('keeps the cache: the same files, validators and counts, without asking the upstream again', async (t) => {
    const body = bodyOf(300 * 1024);
    const upstream = await startUpstream(t, { [`${V}/kernel`]: { body, lastModified: 'Tue, 01 Oct 2024 10:00:00 GMT' } });
    const first = await startMirror(t, upstream.url);
    const before = await fetchRaw(`${first.base}/mirror/up/${V}/kernel`);
    assert.equal(before.headers['last-modified'], 'Tue, 01 Oct 2024 10:00:00 GMT');
    await first.mirror.settled();
    await first.close();

    const second = await startMirror(t, upstream.url, { cacheDir: first.cacheDir });
    assert.equal(second.mirror.list().length, 1);
    const after = await fetchRaw(`${second.base}/mirror/up/${V}/kernel`);
    assert.equal(after.status, 200);
    assert.equal(sha256(after.body), sha256(body));
    assert.equal(after.headers.etag, before.headers.etag);
    assert.equal(after.headers['last-modified'], before.headers['last-modified']);
    assert.equal(upstream.requestsFor(`${V}/kernel`).length, 1);
    assert.equal(second.mirror.stats().hits, 1);
  });

  it('removes stray temp files, half-written objects and files of mirrors no longer configured', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/kernel`]: { body: bodyOf(1000) } });
    const first = await startMirror(t, upstream.url);
    await fetchRaw(`${first.base}/mirror/up/${V}/kernel`);
    await fetchRaw(`${first.base}/mirror/flatcar-test/${V}/kernel`);
    await first.mirror.settled();
    await first.close();
    const { cacheDir } = first;
    const stray = 'ab'.repeat(16);
    await writeFile(path.join(cacheDir, 'tmp', `${stray}.part`), 'half a fill');
    await writeFile(path.join(cacheDir, 'objects', 'cd'.repeat(16)), 'data without a sidecar');
    await writeFile(path.join(cacheDir, 'objects', `${'ef'.repeat(16)}.meta.json`), '{"version":1}');
    await writeFile(path.join(cacheDir, 'tmp', 'not-ours.txt'), 'left alone');

    const other = await startUpstream(t, { [`${V}/kernel`]: { body: bodyOf(1000) } });
    // `flatcar-test` now names another upstream; `up` is unchanged.
    const second = await startMirror(t, upstream.url, { cacheDir, settings: { mirrors: { up: { name: 'up', url: upstream.url, flatcarDigests: false }, 'flatcar-test': { name: 'flatcar-test', url: other.url, flatcarDigests: true } } } });
    assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), ['not-ours.txt']);
    assert.deepEqual(
      second.mirror.list().map((f) => `${f.mirror}/${f.path}`),
      [`up/${V}/kernel`],
    );
    assert.equal((await readdir(path.join(cacheDir, 'objects'))).length, 2);
  });
});

describe('byte budget', () => {
  it('evicts the least recently used files and stays within maxBytes', async (t) => {
    const files = Object.fromEntries(['a', 'b', 'c', 'd'].map((name) => [`${V}/${name}`, { body: bodyOf(100 * 1024) }]));
    const upstream = await startUpstream(t, files);
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { settings: { maxBytes: 350 * 1024 } });
    // One at a time into the index: a file enters it when committed, after its client is done.
    for (const name of ['a', 'b', 'c']) {
      await fetchRaw(`${base}/mirror/up/${V}/${name}`);
      await mirror.settled();
    }
    // `a` is used again, so `b` is now the least recently used.
    await fetchRaw(`${base}/mirror/up/${V}/a`);
    await fetchRaw(`${base}/mirror/up/${V}/d`);
    await mirror.settled();
    assert.deepEqual(mirror.list().map((f) => f.path).sort(), [`${V}/a`, `${V}/c`, `${V}/d`]);
    assert.equal(mirror.stats().evictions, 1);
    assert.ok(mirror.stats().cachedBytes <= 350 * 1024);
    assert.equal((await readdir(path.join(cacheDir, 'objects'))).length, 6);
  });

  it('never deletes a file under a reader: the delete waits for the last one', async (t) => {
    const files = Object.fromEntries(['a', 'b', 'c'].map((name) => [`${V}/${name}`, { body: bodyOf(100 * 1024) }]));
    const upstream = await startUpstream(t, files);
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { maxBytes: 250 * 1024 } });
    await fetchRaw(`${base}/mirror/up/${V}/a`);
    await mirror.settled();
    const objectOfA = mirror.objectFile('up', `${V}/a`);
    assert.ok(objectOfA);
    const reading = await mirror.lookup('up', `${V}/a`);
    assert.equal(reading.kind, 'cached');
    if (reading.kind !== 'cached') return;

    await fetchRaw(`${base}/mirror/up/${V}/b`);
    await mirror.settled();
    await fetchRaw(`${base}/mirror/up/${V}/c`);
    await mirror.settled();
    assert.equal(mirror.objectFile('up', `${V}/a`), undefined, 'a left the index');
    assert.equal(mirror.stats().evictions, 1);
    assert.equal((await stat(objectOfA)).size, 100 * 1024, 'its file stays while it is being read');

    reading.lease.release();
    await mirror.settled();
    await assert.rejects(stat(objectOfA), { code: 'ENOENT' });
  });

  it('serves a file larger than the whole budget without keeping it', async (t) => {
    const body = bodyOf(200 * 1024);
    const upstream = await startUpstream(t, { [`${V}/big`]: { body } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { settings: { maxBytes: 100 * 1024 } });
    const response = await fetchRaw(`${base}/mirror/up/${V}/big`);
    assert.equal(sha256(response.body), sha256(body));
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
    assert.deepEqual(await readdir(path.join(cacheDir, 'objects')), []);
    assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), []);
  });
});

describe('freshness', () => {
  it('never revalidates versioned paths; revalidates mutable ones after mutableMaxAge with a conditional request', async (t) => {
    const versioned = bodyOf(1000);
    const mutable = Buffer.from('FLATCAR_VERSION=4152.2.0\n');
    const upstream = await startUpstream(t, {
      [`${V}/kernel`]: { body: versioned, lastModified: 'Tue, 01 Oct 2024 10:00:00 GMT' },
      'amd64-usr/current/version.txt': { body: mutable, lastModified: 'Tue, 01 Oct 2024 10:00:00 GMT' },
    });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await fetchRaw(`${base}/mirror/up/${V}/kernel`)).body, versioned);
      assert.deepEqual((await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`)).body, mutable);
      await mirror.settled();
    }
    assert.equal(upstream.requestsFor(`${V}/kernel`).length, 1);
    const revalidations = upstream.requestsFor('amd64-usr/current/version.txt');
    assert.equal(revalidations.length, 3);
    assert.equal(revalidations[1]?.headers['if-none-match'], `"${sha256(mutable).slice(0, 16)}"`);
    assert.equal(revalidations[1]?.headers['if-modified-since'], 'Tue, 01 Oct 2024 10:00:00 GMT');
    assert.equal(mirror.stats().revalidations, 2);

    const versionedHead = await fetchRaw(`${base}/mirror/up/${V}/kernel`, { method: 'HEAD' });
    const mutableHead = await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`, { method: 'HEAD' });
    assert.equal(versionedHead.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(mutableHead.headers['cache-control'], 'public, no-cache');
  });

  it('replaces a mutable file that changed upstream and deletes the old copy', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    await mirror.settled();
    const newer = Buffer.from('FLATCAR_VERSION=4230.0.0\n');
    upstream.files.set('amd64-usr/current/version.txt', { body: newer });
    assert.deepEqual((await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`)).body, newer);
    await mirror.settled();
    assert.equal(mirror.list().length, 1);
    assert.equal((await readdir(path.join(cacheDir, 'objects'))).length, 2);
    const sidecar = (await readdir(path.join(cacheDir, 'objects'))).find((name) => name.endsWith('.meta.json')) ?? '';
    const meta = JSON.parse(await readFile(path.join(cacheDir, 'objects', sidecar), 'utf8')) as { sha512: string; path: string };
    assert.equal(meta.path, 'amd64-usr/current/version.txt');
    assert.equal(meta.sha512.length, 128);
  });

  it('serves the stale copy when the upstream fails (stale-if-error), and says so', async (t) => {
    const body = Buffer.from('FLATCAR_VERSION=4152.2.0\n');
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body } });
    const warnings: string[] = [];
    const log = { info: () => undefined, warn: (_fields: object, message: string) => void warnings.push(message), error: () => undefined };
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 }, log });
    await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    await mirror.settled();

    upstream.files.set('amd64-usr/current/version.txt', { body, fault: { kind: 'status', status: 503 } });
    const stale = await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    assert.equal(stale.status, 200);
    assert.deepEqual(stale.body, body);
    assert.equal(stale.headers['x-cache-status'], 'STALE');

    await upstream.close();
    const unreachable = await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    assert.equal(unreachable.status, 200);
    assert.deepEqual(unreachable.body, body);
    assert.equal(mirror.stats().staleServed, 2);
    assert.ok(warnings.filter((w) => w === 'mirror upstream failed; serving the stale copy').length >= 2);
  });

  it('forgets a mutable file the upstream no longer has', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('x') } });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    await mirror.settled();
    upstream.files.delete('amd64-usr/current/version.txt');
    assert.equal((await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`)).status, 404);
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
  });
});

describe('disk full while filling', () => {
  it('gives the clients every upstream byte, caches nothing, and fills again next time', async (t) => {
    const body = bodyOf(3 * 1024 * 1024 + 5);
    const upstream = await startUpstream(t, { [`${V}/initrd`]: { body } });
    let failing = true;
    const diskLimit = 256 * 1024;
    const writeChunk = async (handle: FileHandle, chunk: Buffer, position: number) => {
      if (failing && position + chunk.length > diskLimit) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      await writeWholeChunk(handle, chunk, position);
    };
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { writeChunk });
    const [a, b] = await Promise.all([fetchRaw(`${base}/mirror/up/${V}/initrd`), fetchRaw(`${base}/mirror/up/${V}/initrd`)]);
    for (const response of [a, b]) {
      assert.equal(response.complete, true);
      assert.equal(sha256(response.body), sha256(body));
    }
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
    assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), []);
    assert.deepEqual(await readdir(path.join(cacheDir, 'objects')), []);

    failing = false;
    const healed = await fetchRaw(`${base}/mirror/up/${V}/initrd`);
    assert.equal(sha256(healed.body), sha256(body));
    await mirror.settled();
    assert.equal(mirror.list().length, 1);
    assert.equal(upstream.requestsFor(`${V}/initrd`).length, 2);
  });
});

describe('disk full, newcomer', () => {
  it('sends a newcomer its own uncached transfer once memory no longer holds the first bytes', async (t) => {
    const body = bodyOf(1024 * 1024);
    const release = Promise.withResolvers<void>();
    const upstream = await startUpstream(t, { [`${V}/initrd`]: { body, fault: { kind: 'gate', after: 512 * 1024, gate: release.promise } } });
    const writeChunk = () => Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    const { base, mirror } = await startMirror(t, upstream.url, { writeChunk });
    const first = await mirror.lookup('up', `${V}/initrd`);
    assert.equal(first.kind, 'filling');
    if (first.kind !== 'filling') return;
    const { reader } = first;
    await until(() => reader.fill.received === 512 * 1024, 'the first half');
    const received = Buffer.alloc(body.length);
    let position = 0;
    // Reading all there is lets the fill drop what this, its only reader, no longer needs.
    while (position < 512 * 1024) position += (await reader.read(received, position, 512 * 1024 - position, position)).bytesRead;

    const newcomer = await fetchRaw(`${base}/mirror/up/${V}/initrd`);
    assert.equal(newcomer.headers['x-cache-status'], 'BYPASS');
    assert.equal(newcomer.complete, true);
    assert.equal(sha256(newcomer.body), sha256(body));
    assert.equal(upstream.requestsFor(`${V}/initrd`).length, 2);

    release.resolve();
    for (let reads = 0; position < body.length && reads < 10_000; reads++) {
      const { bytesRead } = await reader.read(received, position, body.length - position, position);
      if (bytesRead === 0) break;
      position += bytesRead;
    }
    reader.close();
    assert.equal(sha256(received), sha256(body));
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
  });
});

describe('purge', () => {
  it('deletes one file or all, and the next request fetches again', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/a`]: { body: bodyOf(1000) }, [`${V}/b`]: { body: bodyOf(1000) } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/${V}/a`);
    await fetchRaw(`${base}/mirror/up/${V}/b`);
    await mirror.settled();
    assert.equal(mirror.purge('up', `${V}/a`), true);
    assert.equal(mirror.purge('up', `${V}/a`), false);
    await mirror.settled();
    assert.deepEqual(mirror.list().map((f) => f.path), [`${V}/b`]);
    assert.equal(mirror.purgeAll(), 1);
    await mirror.settled();
    assert.deepEqual(await readdir(path.join(cacheDir, 'objects')), []);
    await fetchRaw(`${base}/mirror/up/${V}/a`);
    assert.equal(upstream.requestsFor(`${V}/a`).length, 2);
  });
});
