/**
 * The mirror cannot be used as an amplifier: whoever reaches /mirror/ cannot make it open
 * unbounded upstream connections, keep transfers running for nobody, download bodies for HEADs,
 * fetch paths outside a mirror's patterns, push out the files the fleet boots, or follow
 * redirects into the local network.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { defaultMirrorSettings, defineMirror, FLATCAR_RELEASE_PATHS, type MirrorDefinition } from '../../src/mirror/config.ts';
import { bodyOf, fetchRaw, loopbackTestNames, sha256, sha512, startMirror, startUpstream, until, type UpstreamFile } from './support.ts';

const V = 'amd64-usr/4152.2.0';

/** The mirrors startMirror configures (built-ins, `up`, `flatcar-test`), with some replaced or added. */
function mirrorsWith(upstreamUrl: string, extra: Record<string, MirrorDefinition>): Record<string, MirrorDefinition> {
  return { ...defaultMirrorSettings('/nonexistent').mirrors, up: defineMirror('up', upstreamUrl), 'flatcar-test': defineMirror('flatcar-test', upstreamUrl), ...extra };
}

/** Requests a file, takes its first bytes, and hangs up. */
function readSomeAndLeave(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.once('data', (chunk: Buffer) => {
        req.destroy();
        resolve(chunk.length);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') reject(error);
    });
  });
}

describe('upstream slots', () => {
  it('runs at most the per-mirror and global number of fills, queues the next, and refuses beyond the queue with 503 and Retry-After', async (t) => {
    const gate = Promise.withResolvers<void>();
    const files: Record<string, UpstreamFile> = {};
    const bodies: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const body = bodyOf(64 * 1024);
      bodies.push(body);
      files[`${V}/file${i}`] = { body, fault: { kind: 'gate', after: 1024, gate: gate.promise } };
    }
    const upstream = await startUpstream(t, files);
    // Three at once in all, two for `up`, two waiting.
    const mirrors = mirrorsWith(upstream.url, { up: defineMirror('up', upstream.url, { maxConcurrentFills: 2 }) });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { maxConcurrentFills: 3, maxQueuedFills: 2, mirrors } });

    const pending = [0, 1, 2, 3].map((i) => fetchRaw(`${base}/mirror/up/${V}/file${i}`));
    await until(() => mirror.stats().queuedFills === 2, 'two fills to wait for a slot');
    assert.equal(upstream.requests.length, 2, 'two transfers upstream, the per-mirror limit');

    const refused = await fetchRaw(`${base}/mirror/up/${V}/file4`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '5');
    assert.match(refused.body.toString(), /too many upstream transfers at once/);
    assert.equal(mirror.stats().rejectedFills, 1);
    assert.equal(upstream.requestsFor(`${V}/file4`).length, 0);

    gate.resolve();
    const answers = await Promise.all(pending);
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 200);
      assert.equal(answer.complete, true);
      assert.equal(sha256(answer.body), sha256(bodies[i] ?? Buffer.alloc(0)));
    });
    const retried = await fetchRaw(`${base}/mirror/up/${V}/file4`);
    assert.equal(retried.status, 200);
  });

  it('verifies a Flatcar file with a single slot: its DIGESTS goes ahead of the queue once the body is in', async (t) => {
    const kernel = bodyOf(200 * 1024);
    const file = `${V}/flatcar_production_pxe.vmlinuz`;
    const upstream = await startUpstream(t, { [file]: { body: kernel }, [`${file}.DIGESTS`]: { body: Buffer.from(`# SHA512 HASH\n${sha512(kernel)}  flatcar_production_pxe.vmlinuz\n`) } });
    const mirrors = mirrorsWith(upstream.url, { 'flatcar-test': defineMirror('flatcar-test', upstream.url, { maxConcurrentFills: 1 }) });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mirrors } });
    const answer = await fetchRaw(`${base}/mirror/flatcar-test/${file}`);
    assert.equal(answer.complete, true);
    await mirror.settled();
    assert.equal(mirror.list().find((f) => f.path === file)?.digestVerified, true);
  });
});

describe('abandoned fills', () => {
  it('stops a fill nobody reads any more and removes its temp file', async (t) => {
    const never = Promise.withResolvers<void>();
    t.after(() => never.resolve());
    const upstream = await startUpstream(t, { [`${V}/big`]: { body: bodyOf(2 * 1024 * 1024), fault: { kind: 'gate', after: 256 * 1024, gate: never.promise } } });
    const { base, mirror, cacheDir } = await startMirror(t, upstream.url, { settings: { abandonedFillTimeoutMs: 100 } });
    assert.ok((await readSomeAndLeave(`${base}/mirror/up/${V}/big`)) > 0);
    await until(() => mirror.filling().length === 0, 'the abandoned fill to stop');
    await mirror.settled();
    assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')), []);
    assert.equal(mirror.list().length, 0);
    assert.equal(mirror.stats().abandonedFills, 1);
    assert.equal(mirror.stats().failedFills, 0, 'not an upstream failure');
    assert.equal(mirror.knownProblem('up', `${V}/big`), undefined);
  });

  it('drops a queued fill whose client left without ever contacting the upstream', async (t) => {
    const gate = Promise.withResolvers<void>();
    const upstream = await startUpstream(t, {
      [`${V}/first`]: { body: bodyOf(64 * 1024), fault: { kind: 'gate', after: 1024, gate: gate.promise } },
      [`${V}/second`]: { body: bodyOf(64 * 1024) },
    });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { maxConcurrentFills: 1 } });
    const first = fetchRaw(`${base}/mirror/up/${V}/first`);
    await until(() => upstream.requestsFor(`${V}/first`).length === 1, 'the first transfer');
    const req = http.get(`${base}/mirror/up/${V}/second`, { agent: false });
    req.on('error', () => undefined);
    await until(() => mirror.stats().queuedFills === 1, 'the second fill to queue');
    req.destroy();
    await until(() => mirror.stats().queuedFills === 0 && mirror.filling().length === 1, 'the queued fill to go');
    gate.resolve();
    assert.equal((await first).complete, true);
    assert.equal(upstream.requestsFor(`${V}/second`).length, 0);
  });

  it('keeps a fill a warm request waits for, even with no client reading it', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/warm`]: { body: bodyOf(512 * 1024), fault: { kind: 'trickle', chunk: 64 * 1024, delayMs: 40 } } });
    const { mirror } = await startMirror(t, upstream.url, { settings: { abandonedFillTimeoutMs: 1 } });
    const { summary } = await mirror.warm([`up/${V}/warm`]);
    assert.equal(summary.filled, 1);
    assert.equal(mirror.stats().abandonedFills, 0);
  });
});

describe('HEAD', () => {
  it('never starts a fill: a cold file is answered from an upstream HEAD, a missing one 404, a cached one from the cache', async (t) => {
    const body = bodyOf(300 * 1024);
    const upstream = await startUpstream(t, { [`${V}/kernel`]: { body } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const cold = await fetchRaw(`${base}/mirror/up/${V}/kernel`, { method: 'HEAD' });
    assert.equal(cold.status, 200);
    assert.equal(cold.headers['content-length'], String(body.length));
    assert.equal(cold.headers['x-cache-status'], 'BYPASS');
    assert.deepEqual(upstream.requestsFor(`${V}/kernel`).map((r) => r.method), ['HEAD']);
    assert.equal(mirror.list().length, 0);
    assert.equal(mirror.stats().upstreamBytes, 0);

    assert.equal((await fetchRaw(`${base}/mirror/up/${V}/missing`, { method: 'HEAD' })).status, 404);

    await fetchRaw(`${base}/mirror/up/${V}/kernel`);
    await mirror.settled();
    const cached = await fetchRaw(`${base}/mirror/up/${V}/kernel`, { method: 'HEAD' });
    assert.equal(cached.headers['x-cache-status'], 'HIT');
    assert.deepEqual(upstream.requestsFor(`${V}/kernel`).map((r) => r.method), ['HEAD', 'GET']);
  });
});

describe('path patterns', () => {
  it('answers 404 for a path outside the mirror patterns without contacting the upstream', async (t) => {
    const upstream = await startUpstream(t, { 'etc/secret': { body: Buffer.from('no') }, [`${V}/flatcar_production_pxe.vmlinuz`]: { body: bodyOf(1000) } });
    // A mirror with the built-in Flatcar patterns, on the local upstream, and one with a glob.
    const mirrors = mirrorsWith(upstream.url, {
      'flatcar-local': defineMirror('flatcar-local', upstream.url, { paths: FLATCAR_RELEASE_PATHS }),
      glob: defineMirror('glob', upstream.url, { paths: ['amd64-usr/*/*.vmlinuz'] }),
    });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mirrors } });
    for (const asked of ['etc/secret', `${V}/sub/dir/file`, 'amd64-usr/latest/version.txt', `${V}/flatcar_production_pxe.vmlinuz`.replace('amd64', 'x86')]) {
      const refused = await fetchRaw(`${base}/mirror/flatcar-local/${asked}`);
      assert.equal(refused.status, 404, asked);
      assert.match(refused.body.toString(), /mirror flatcar-local does not serve .*: not one of its paths/);
    }
    assert.equal((await fetchRaw(`${base}/mirror/glob/etc/secret`)).status, 404);
    assert.equal(upstream.requests.length, 0);
    assert.equal(mirror.knownProblem('flatcar-local', 'etc/secret')?.error, 'not one of the paths mirror flatcar-local serves');

    assert.equal((await fetchRaw(`${base}/mirror/flatcar-local/${V}/flatcar_production_pxe.vmlinuz`)).status, 200);
    assert.equal((await fetchRaw(`${base}/mirror/glob/${V}/flatcar_production_pxe.vmlinuz`)).status, 200);
  });

  it('gives the built-in Flatcar mirrors the release patterns', async (t) => {
    const upstream = await startUpstream(t);
    const { base, mirror } = await startMirror(t, upstream.url);
    assert.ok(mirror.settings.mirrors['flatcar-stable']?.paths);
    const refused = await fetchRaw(`${base}/mirror/flatcar-stable/some/other/tree`);
    assert.equal(refused.status, 404);
    assert.equal(mirror.stats().misses, 0);
  });
});

describe('eviction of protected files', () => {
  it('evicts unprotected files first, and warmed or protected ones only when nothing else is left', async (t) => {
    const size = 400 * 1024;
    const names = ['a', 'b', 'c', 'd', 'e'];
    const upstream = await startUpstream(t, Object.fromEntries(names.map((n) => [`${V}/${n}`, { body: bodyOf(size) }])));
    // Room for two files: a third pushes one out.
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { maxBytes: 1024 * 1024 }, isProtected: (_mirror, p) => p.endsWith('/e') });
    const cached = () => mirror.list().map((f) => f.path.slice(V.length + 1)).sort();
    const get = async (n: string) => {
      await fetchRaw(`${base}/mirror/up/${V}/${n}`);
      await mirror.settled();
    };

    assert.equal((await mirror.warm([`up/${V}/a`])).summary.filled, 1);
    await mirror.settled();
    await get('b');
    await get('c');
    assert.deepEqual(cached(), ['a', 'c'], 'b went although a was used longer ago: a is warmed');

    mirror.protect('up', `${V}/c`);
    await get('d');
    assert.deepEqual(cached(), ['c', 'd'], 'with only protected files left, the least recently used of them went');

    // The callback protects e; d is the only unprotected file.
    await get('e');
    assert.deepEqual(cached(), ['c', 'e']);
    assert.equal(mirror.stats().evictions, 3);
  });
});

describe('redirects', () => {
  const FILE = `${V}/kernel`;

  it('follows a redirect within the upstream origin', async (t) => {
    const body = bodyOf(10_000);
    const upstream = await startUpstream(t, { [FILE]: { body: Buffer.alloc(0), redirect: `/${V}/moved` }, [`${V}/moved`]: { body } });
    const { base } = await startMirror(t, upstream.url);
    const answer = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(answer.status, 200);
    assert.equal(sha256(answer.body), sha256(body));
  });

  it('refuses a redirect to another origin that is not listed, says so, and keeps nothing; follows it when listed', async (t) => {
    const body = bodyOf(10_000);
    const other = await startUpstream(t, { [FILE]: { body } });
    const upstream = await startUpstream(t, { [FILE]: { body: Buffer.alloc(0), redirect: `${other.url}/${FILE}` } });
    const otherHost = new URL(other.url).host;
    const mirrors = mirrorsWith(upstream.url, { listed: defineMirror('listed', upstream.url, { redirectHosts: [otherHost] }) });
    const { base, mirror } = await startMirror(t, upstream.url, { settings: { mirrors } });
    const refused = await fetchRaw(`${base}/mirror/up/${FILE}`);
    assert.equal(refused.status, 502);
    assert.match(refused.body.toString(), /redirected to http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4152\.2\.0\/kernel; refused: 127\.0\.0\.1:\d+ is neither the upstream's origin nor listed in redirectHosts/);
    assert.equal(other.requests.length, 0);
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
    assert.match(mirror.knownProblem('up', FILE)?.error ?? '', /^redirect to http:\/\/127\.0\.0\.1:\d+\/\S+ refused: /);

    const followed = await fetchRaw(`${base}/mirror/listed/${FILE}`);
    assert.equal(followed.status, 200);
    assert.equal(sha256(followed.body), sha256(body));
  });

  it('never follows a redirect to a loopback address, by number or by name, when the upstream is not on one', async (t) => {
    const body = bodyOf(10_000);
    const internal = await startUpstream(t, { [FILE]: { body } });
    const internalPort = new URL(internal.url).port;
    const upstream = await startUpstream(t, {
      [`${V}/by-number`]: { body: Buffer.alloc(0), redirect: `http://127.0.0.1:${internalPort}/${FILE}` },
      [`${V}/by-name`]: { body: Buffer.alloc(0), redirect: `http://sneaky.test:${internalPort}/${FILE}` },
      [`${V}/by-ipv6`]: { body: Buffer.alloc(0), redirect: `http://[::ffff:127.0.0.1]:${internalPort}/${FILE}` },
    });
    // The configured upstream is a name (which the test resolves to loopback); any host may be redirected to.
    const publicName = `http://upstream.test:${new URL(upstream.url).port}`;
    const mirrors = mirrorsWith(upstream.url, { cdn: defineMirror('cdn', publicName, { redirectHosts: ['*'] }) });
    const { base, mirror } = await startMirror(t, upstream.url, { lookup: loopbackTestNames, settings: { mirrors } });

    const byNumber = await fetchRaw(`${base}/mirror/cdn/${V}/by-number`);
    assert.equal(byNumber.status, 502);
    assert.match(byNumber.body.toString(), /refused: 127\.0\.0\.1 is a loopback or link-local address/);
    const byIpv6 = await fetchRaw(`${base}/mirror/cdn/${V}/by-ipv6`);
    assert.equal(byIpv6.status, 502);
    assert.match(byIpv6.body.toString(), /loopback or link-local address/);
    const byName = await fetchRaw(`${base}/mirror/cdn/${V}/by-name`);
    assert.equal(byName.status, 502);
    assert.match(byName.body.toString(), /sneaky\.test resolves to 127\.0\.0\.1, a loopback or link-local address/);
    assert.equal(internal.requests.length, 0);
    assert.equal(upstream.requests.length, 3, 'the upstream itself, by its name, is reachable');
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
  });
});
