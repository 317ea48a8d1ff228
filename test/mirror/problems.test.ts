/**
 * What the script path can learn at once, from memory: `knownProblem` says why a request for a
 * file would fail right now, and a read-only mirror (render, check) changes nothing on disk.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { defaultMirrorSettings, defineMirror } from '../../src/mirror/config.ts';
import { PullThroughMirror } from '../../src/mirror/mirror.ts';
import { bodyOf, closedPort, fetchRaw, sha512, startMirror, startUpstream } from './support.ts';

const V = 'amd64-usr/4152.2.0';
const KERNEL = `${V}/flatcar_production_pxe.vmlinuz`;

describe('known problems', () => {
  it('knows nothing of a file never asked for, or of one that is cached', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/ok`]: { body: bodyOf(1000) } });
    const { base, mirror } = await startMirror(t, upstream.url);
    assert.equal(mirror.knownProblem('up', `${V}/ok`), undefined);
    await fetchRaw(`${base}/mirror/up/${V}/ok`);
    await mirror.settled();
    assert.equal(mirror.knownProblem('up', `${V}/ok`), undefined);
    assert.equal(mirror.knownProblem('nope', `${V}/ok`), undefined);
  });

  it('remembers an unreachable upstream, with the upstream URL and one line', async (t) => {
    const port = await closedPort();
    const { base, mirror } = await startMirror(t, `http://127.0.0.1:${port}`);
    const before = Date.now();
    assert.equal((await fetchRaw(`${base}/mirror/up/${V}/file`)).status, 502);
    const problem = mirror.knownProblem('up', `${V}/file`);
    assert.ok(problem);
    assert.equal(problem.upstream, `http://127.0.0.1:${port}/${V}/file`);
    assert.equal(problem.error, `connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.ok(problem.since instanceof Date && problem.since.getTime() >= before - 1000);
  });

  it('remembers a 404, a 5xx, a digest mismatch and a stall', async (t) => {
    const kernel = bodyOf(100 * 1024);
    const upstream = await startUpstream(t, {
      [`${V}/broken`]: { body: bodyOf(10), fault: { kind: 'status', status: 503 } },
      [KERNEL]: { body: kernel },
      [`${KERNEL}.DIGESTS`]: { body: Buffer.from(`# SHA512 HASH\n${sha512('other')}  flatcar_production_pxe.vmlinuz\n`) },
      [`${V}/stalls`]: { body: bodyOf(1024 * 1024), ranges: false, fault: { kind: 'stall', after: 512 * 1024 } },
    });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { bodyInactivityMs: 200 } });
    await fetchRaw(`${base}/mirror/up/${V}/missing`);
    await fetchRaw(`${base}/mirror/up/${V}/broken`);
    await fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`);
    await fetchRaw(`${base}/mirror/up/${V}/stalls`);
    await mirror.settled();
    assert.equal(mirror.knownProblem('up', `${V}/missing`)?.error, 'HTTP 404');
    assert.equal(mirror.knownProblem('up', `${V}/broken`)?.error, 'HTTP 503');
    assert.equal(mirror.knownProblem('flatcar-test', KERNEL)?.error, 'SHA-512 does not match flatcar_production_pxe.vmlinuz.DIGESTS');
    assert.equal(mirror.knownProblem('up', `${V}/stalls`)?.error, 'stalled after 512 KiB');

    // A fixed upstream and a good fill clear the problem.
    upstream.files.set(`${V}/broken`, { body: bodyOf(10) });
    assert.equal((await fetchRaw(`${base}/mirror/up/${V}/broken`)).status, 200);
    await mirror.settled();
    assert.equal(mirror.knownProblem('up', `${V}/broken`), undefined);
  });

  it('says nothing while a stale copy is on disk', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    await mirror.settled();
    upstream.files.set('amd64-usr/current/version.txt', { body: Buffer.from('x'), fault: { kind: 'status', status: 500 } });
    const stale = await fetchRaw(`${base}/mirror/up/amd64-usr/current/version.txt`);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.equal(mirror.knownProblem('up', 'amd64-usr/current/version.txt'), undefined);
  });
});

describe('read-only mirror', () => {
  it('creates nothing for a missing cache directory, and reads small files from the upstream without keeping them', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const parent = await mkdtemp(path.join(tmpdir(), 'bootdepot-ro-'));
    t.after(() => rm(parent, { recursive: true, force: true }));
    const cacheDir = path.join(parent, 'cache');
    const mirror = await PullThroughMirror.open({ settings: defaultMirrorSettings(cacheDir, { mirrors: { up: defineMirror('up', upstream.url) } }), readOnly: true });
    assert.equal(await mirror.readText('up', 'amd64-usr/current/version.txt'), 'FLATCAR_VERSION=4152.2.0\n');
    const served = await mirror.lookup('up', `${V}/kernel`);
    assert.equal(served.kind, 'error');
    await mirror.close();
    assert.equal(existsSync(cacheDir), false);
    assert.deepEqual(await readdir(parent), []);
  });

  it('leaves the temp files of a live mirror alone and reads what is cached', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const live = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    await live.mirror.readText('up', 'amd64-usr/current/version.txt');
    await live.mirror.settled();
    // A fill in progress on the live mirror.
    const partial = path.join(live.cacheDir, 'tmp', `${'ab'.repeat(16)}.part`);
    await writeFile(partial, 'half a file');
    const objectsBefore = (await readdir(path.join(live.cacheDir, 'objects'))).sort();

    await upstream.close();
    const mirror = await PullThroughMirror.open({ settings: live.mirror.settings, readOnly: true });
    // Stale (mutableMaxAge 0) and the upstream gone: the cached copy answers.
    assert.equal(await mirror.readText('up', 'amd64-usr/current/version.txt'), 'FLATCAR_VERSION=4152.2.0\n');
    const cached = await mirror.lookup('up', 'amd64-usr/current/version.txt');
    assert.equal(cached.kind, 'cached');
    if (cached.kind === 'cached') cached.lease.release();
    await mirror.close();
    assert.deepEqual(await readdir(path.join(live.cacheDir, 'tmp')), [path.basename(partial)]);
    assert.deepEqual((await readdir(path.join(live.cacheDir, 'objects'))).sort(), objectsBefore);
  });
});
