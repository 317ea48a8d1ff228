/** Flatcar through the mirror: SHA-512 checks against FILE.DIGESTS and resolving `current`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flatcarMirrorBaseUrl, parseFlatcarVersion, resolveFlatcarVersion } from '../../src/mirror/flatcar.ts';
import { bodyOf, closedPort, fetchRaw, sha256, sha512, startMirror, startUpstream } from './support.ts';

const DIR = 'amd64-usr/4152.2.0';
const KERNEL = `${DIR}/flatcar_production_pxe.vmlinuz`;

function digestsFile(name: string, sha512hex: string): Buffer {
  return Buffer.from(
    `# MD5 HASH\n${'0'.repeat(32)}  ${name}\n# SHA1 HASH\n${'1'.repeat(40)}  ${name}\n# SHA512 HASH\n${sha512hex}  ${name}\n${'2'.repeat(128)}  other_file.bin\n`,
  );
}

describe('Flatcar DIGESTS', () => {
  it('keeps a file whose SHA-512 matches its DIGESTS, and records that it was checked', async (t) => {
    const body = bodyOf(500 * 1024);
    const upstream = await startUpstream(t, {
      [KERNEL]: { body },
      [`${KERNEL}.DIGESTS`]: { body: digestsFile('flatcar_production_pxe.vmlinuz', sha512(body)) },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    const response = await fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`);
    assert.equal(response.complete, true);
    assert.equal(sha256(response.body), sha256(body));
    await mirror.settled();
    const kept = mirror.list().find((f) => f.path === KERNEL);
    assert.equal(kept?.digestVerified, true);
    assert.equal(kept?.sha512, sha512(body));
    assert.equal(upstream.requestsFor(`${KERNEL}.DIGESTS`).length, 1, 'the DIGESTS came through the mirror once');
    assert.ok(mirror.list().some((f) => f.path === `${KERNEL}.DIGESTS`));
  });

  it('refuses a file whose SHA-512 does not match: clients are cut off, nothing is kept, a fixed upstream heals', async (t) => {
    const body = bodyOf(500 * 1024);
    const upstream = await startUpstream(t, {
      [KERNEL]: { body },
      [`${KERNEL}.DIGESTS`]: { body: digestsFile('flatcar_production_pxe.vmlinuz', sha512('something else')), etag: '"old-digests"' },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    const [a, b] = await Promise.all([fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`), fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`)]);
    for (const response of [a, b]) {
      assert.equal(response.status, 200);
      assert.equal(response.complete, false, 'the last byte is held back until the check passes');
      assert.equal(response.body.length, body.length - 1);
    }
    await mirror.settled();
    assert.equal(mirror.list().find((f) => f.path === KERNEL), undefined);
    assert.equal(mirror.stats().failedFills, 1);

    upstream.files.set(`${KERNEL}.DIGESTS`, { body: digestsFile('flatcar_production_pxe.vmlinuz', sha512(body)) });
    mirror.purge('flatcar-test', `${KERNEL}.DIGESTS`);
    const healed = await fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`);
    assert.equal(healed.complete, true);
    assert.equal(sha256(healed.body), sha256(body));
  });

  it('keeps a file without a published DIGESTS unchecked, and never checks on other mirrors', async (t) => {
    const body = bodyOf(1000);
    const upstream = await startUpstream(t, { [KERNEL]: { body } });
    const { base, mirror } = await startMirror(t, upstream.url);
    assert.equal((await fetchRaw(`${base}/mirror/flatcar-test/${KERNEL}`)).complete, true);
    assert.equal((await fetchRaw(`${base}/mirror/up/${KERNEL}`)).complete, true);
    await mirror.settled();
    assert.equal(mirror.list().filter((f) => f.path === KERNEL).length, 2);
    assert.equal(upstream.requestsFor(`${KERNEL}.DIGESTS`).length, 1);
  });
});

describe('Flatcar current', () => {
  it('resolves current through the mirror cache, and follows a new release after mutableMaxAge', async (t) => {
    const upstream = await startUpstream(t, {
      'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_BUILD=4152\nFLATCAR_VERSION=4152.2.0\nFLATCAR_VERSION_ID=4152.2.0\n') },
    });
    const { mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current'), { version: '4152.2.0' });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', '4081.1.0'), { version: '4081.1.0' });
    await mirror.settled();
    upstream.files.set('amd64-usr/current/version.txt', { body: Buffer.from('FLATCAR_VERSION=4230.0.0\n') });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current'), { version: '4230.0.0' });
    // Internal reads do not count as client hits or misses.
    assert.equal(mirror.stats().misses, 0);
  });

  it('holds on to a resolution until mutableMaxAge passes', async (t) => {
    const upstream = await startUpstream(t, { 'arm64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const { mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 3_600_000 } });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'arm64', 'current'), { version: '4152.2.0' });
    await mirror.settled();
    upstream.files.set('arm64-usr/current/version.txt', { body: Buffer.from('FLATCAR_VERSION=4230.0.0\n') });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'arm64', 'current'), { version: '4152.2.0' });
    assert.equal(upstream.requestsFor('arm64-usr/current/version.txt').length, 1);
  });

  it('says why when current cannot be resolved', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from('nothing useful\n') } });
    const { mirror } = await startMirror(t, upstream.url);
    await assert.rejects(resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current'), /has no FLATCAR_VERSION=<major\.minor\.patch> line/);
    await assert.rejects(resolveFlatcarVersion(mirror, 'flatcar-test', 'arm64', 'current'), /cannot resolve Flatcar flatcar-test current: not found upstream/);
    await assert.rejects(resolveFlatcarVersion(mirror, 'nope', 'arm64', 'current'), /no mirror named "nope"/);
  });

  it('builds versioned mirror URLs and parses version.txt', () => {
    assert.equal(flatcarMirrorBaseUrl('http://10.0.0.5:8080', 'flatcar-stable', 'amd64', '4152.2.0'), 'http://10.0.0.5:8080/mirror/flatcar-stable/amd64-usr/4152.2.0');
    assert.equal(parseFlatcarVersion('FLATCAR_VERSION="4152.2.0"\n'), '4152.2.0');
    assert.equal(parseFlatcarVersion('FLATCAR_VERSION=4152.2.0; rm -rf\n'), undefined);
    assert.equal(parseFlatcarVersion('VERSION=1\n'), undefined);
  });
});

describe('Flatcar current within a time budget', () => {
  const VERSION_TXT = 'amd64-usr/current/version.txt';

  it('answers from the last known release when the upstream does not answer in time, and picks up the new one once the fill is done', { timeout: 10_000 }, async (t) => {
    const upstream = await startUpstream(t, { [VERSION_TXT]: { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const { mirror } = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current'), { version: '4152.2.0' });
    await mirror.settled();

    // The upstream takes the connection and says nothing until released.
    const answer = Promise.withResolvers<void>();
    upstream.files.set(VERSION_TXT, { body: Buffer.from('FLATCAR_VERSION=4230.0.0\n'), fault: { kind: 'delay', until: answer.promise } });
    const slow = await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 200 });
    assert.deepEqual(slow, { version: '4152.2.0', note: 'Flatcar flatcar-test current: upstream slow (no answer in 0.2 s); using the last known release 4152.2.0' });
    // Known to be slow now: the next boot does not wait the budget again (it would outlast the test).
    const again = await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 60_000 });
    assert.equal(again.version, '4152.2.0');
    assert.match(again.note ?? '', /upstream slow/);
    assert.equal(upstream.requestsFor(VERSION_TXT).length, 2, 'one revalidation, not one per boot');

    answer.resolve();
    await mirror.settled();
    assert.deepEqual(await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 200 }), { version: '4230.0.0' });
  });

  it('answers from the last known release at once when the upstream is unreachable', async (t) => {
    const upstream = await startUpstream(t, { [VERSION_TXT]: { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n') } });
    const first = await startMirror(t, upstream.url, { settings: { mutableMaxAgeMs: 0 } });
    await resolveFlatcarVersion(first.mirror, 'flatcar-test', 'amd64', 'current');
    await first.close();
    await upstream.close();
    // A restart over the same cache, with the release server gone.
    const { mirror } = await startMirror(t, upstream.url, { cacheDir: first.cacheDir, settings: { mutableMaxAgeMs: 0 } });
    const resolved = await resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 60_000 });
    assert.equal(resolved.version, '4152.2.0');
    assert.match(resolved.note ?? '', /^Flatcar flatcar-test current: upstream failed \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); using the last known release 4152\.2\.0$/);
  });

  it('says what and why when nothing is known: an upstream that never answers, or none at all', { timeout: 10_000 }, async (t) => {
    const upstream = await startUpstream(t, { [VERSION_TXT]: { body: Buffer.from('FLATCAR_VERSION=4152.2.0\n'), fault: { kind: 'hang' } } });
    const { mirror } = await startMirror(t, upstream.url);
    await assert.rejects(
      resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 200 }),
      /^Error: cannot resolve Flatcar flatcar-test current: upstream http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/current\/version\.txt gave no answer within 0\.2 s and no copy is cached$/,
    );
    await assert.rejects(resolveFlatcarVersion(mirror, 'flatcar-test', 'amd64', 'current', { budgetMs: 60_000 }), /is slow \(no answer in 60 s\) and no copy is cached/);

    const port = await closedPort();
    const down = await startMirror(t, `http://127.0.0.1:${port}`);
    await assert.rejects(resolveFlatcarVersion(down.mirror, 'flatcar-test', 'amd64', 'current'), /^Error: cannot resolve Flatcar flatcar-test current: cannot connect to upstream http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/current\/version\.txt: ECONNREFUSED$/);
  });
});
