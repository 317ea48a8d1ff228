/** Repr-Digest on /assets: computed once per file version, kept, and as Want-Repr-Digest asks. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { DIGEST_DIR, parseReprDigest, parseWantDigest, ReprDigests, reprDigestHeader } from '../../src/assets/repr-digest.ts';
import { makeTree, testApp } from '../helpers.ts';

const TOKEN = 'test-token-0123456789abcdef';
const b64 = (algorithm: string, data: Buffer | string) => createHash(algorithm).update(data).digest('base64');
const expected = (data: Buffer | string) => `sha-256=:${b64('sha256', data)}:, sha-512=:${b64('sha512', data)}:`;

async function serve(t: TestContext, assets: Record<string, string | Buffer>) {
  const built = await testApp(t, { data: {}, assets, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  return { ...built, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

async function fetchAsset(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

describe('Repr-Digest on /assets', () => {
  it('sends sha-256 and sha-512 of the whole file on GET, HEAD, ranges and 304', async (t) => {
    const data = randomBytes(200_000);
    const { base } = await serve(t, { 'images/kernel': data, 'empty.bin': '' });
    const url = `${base}/assets/images/kernel`;
    const full = await fetchAsset(url);
    assert.equal(full.status, 200);
    assert.equal(full.headers['repr-digest'], expected(data));
    const head = await fetchAsset(url, {}, 'HEAD');
    assert.equal(head.headers['repr-digest'], expected(data));
    // A range's Repr-Digest is the whole representation's (RFC 9530 3), not the part's.
    const part = await fetchAsset(url, { range: 'bytes=10-99' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['repr-digest'], expected(data));
    const notModified = await fetchAsset(url, { 'if-none-match': String(full.headers.etag) });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers['repr-digest'], expected(data));
    // Answers that are not the file carry none.
    const unsatisfiable = await fetchAsset(url, { range: 'bytes=900000-' });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['repr-digest'], undefined);
    const failed = await fetchAsset(url, { 'if-match': '"other"' });
    assert.equal(failed.status, 412);
    assert.equal(failed.headers['repr-digest'], undefined);
    assert.equal((await fetchAsset(`${base}/assets/empty.bin`)).headers['repr-digest'], expected(''));
  });

  it('knows an upload\'s digests before its first download, and a replacement\'s at once', async (t) => {
    const { base, assetsDir } = await serve(t, {});
    for (const version of [randomBytes(70_000), randomBytes(90_000)]) {
      const put = await request(`${base}/api/v1/assets/flatcar/kernel`, { method: 'PUT', body: version, headers: { authorization: `Bearer ${TOKEN}` } });
      await put.body.dump();
      assert.ok(put.statusCode === 201 || put.statusCode === 200);
      const sidecar = JSON.parse(await readFile(path.join(assetsDir, DIGEST_DIR, 'flatcar/kernel.json'), 'utf8')) as { digests: { sha512: string } };
      assert.equal(sidecar.digests.sha512, createHash('sha512').update(version).digest('hex'), 'recorded by the upload');
      const res = await fetchAsset(`${base}/assets/flatcar/kernel`);
      assert.deepEqual(res.body, version);
      assert.equal(res.headers['repr-digest'], expected(version));
    }
    const del = await request(`${base}/api/v1/assets/flatcar/kernel`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    await del.body.dump();
    assert.equal(del.statusCode, 204);
    await assert.rejects(readFile(path.join(assetsDir, DIGEST_DIR, 'flatcar/kernel.json')), { code: 'ENOENT' });
  });

  it('hashes a file placed by hand again when it changes in place or is replaced', async (t) => {
    const { base, assetsDir } = await serve(t, { 'a.img': 'first version' });
    assert.equal((await fetchAsset(`${base}/assets/a.img`)).headers['repr-digest'], expected('first version'));
    // Same size, new bytes and mtime: a new version.
    await writeFile(path.join(assetsDir, 'a.img'), 'other version');
    await utimes(path.join(assetsDir, 'a.img'), new Date(), new Date(Date.now() + 5000));
    assert.equal((await fetchAsset(`${base}/assets/a.img`)).headers['repr-digest'], expected('other version'));
    await writeFile(path.join(assetsDir, 'b.tmp'), 'renamed over it');
    await rename(path.join(assetsDir, 'b.tmp'), path.join(assetsDir, 'a.img'));
    assert.equal((await fetchAsset(`${base}/assets/a.img`)).headers['repr-digest'], expected('renamed over it'));
    // The dot directory is never served.
    assert.equal((await fetchAsset(`${base}/assets/${DIGEST_DIR}/a.img.json`)).status, 404);
  });

  it('answers Want-Repr-Digest with what it asks for', async (t) => {
    const { base } = await serve(t, { 'f.bin': 'data' });
    const url = `${base}/assets/f.bin`;
    const sha256 = `sha-256=:${b64('sha256', 'data')}:`;
    const sha512 = `sha-512=:${b64('sha512', 'data')}:`;
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'sha-512=3' })).headers['repr-digest'], sha512);
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'sha-256=1, sha-512=0' })).headers['repr-digest'], sha256);
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'sha-256=2, sha-512=9' })).headers['repr-digest'], `${sha512}, ${sha256}`);
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'md5=10' })).headers['repr-digest'], `${sha256}, ${sha512}`, 'nothing it names is supported: both');
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'sha-256=0, sha-512=0' })).headers['repr-digest'], undefined, 'it refuses both');
    assert.equal((await fetchAsset(url, { 'want-repr-digest': 'sha-512=high' })).headers['repr-digest'], `${sha256}, ${sha512}`, 'malformed: ignored');
  });
});

describe('ReprDigests', () => {
  it('hashes a large file in the background and answers without a digest until it is known', async (t) => {
    const root = await makeTree(t, { 'big.iso': randomBytes(300_000) });
    const digests = new ReprDigests({ root, inlineBytes: 100_000 });
    const { open } = await import('node:fs/promises');
    const file = path.join(root, 'big.iso');
    const handle = await open(file, 'r');
    t.after(() => handle.close());
    const version = await handle.stat({ bigint: true });
    assert.equal(await digests.forAnswer('big.iso', handle, file, version), undefined, 'not waited for');
    await digests.settled();
    const known = await digests.peek('big.iso', version);
    assert.equal(known?.sha256, createHash('sha256').update(await readFile(file)).digest('hex'));
    // Kept on disk: another process (a restart) knows it without hashing.
    const again = new ReprDigests({ root, inlineBytes: 100_000 });
    assert.deepEqual(await again.peek('big.iso', version), known);
    assert.equal(await again.peek('big.iso', { ...version, mtimeNs: version.mtimeNs + 1n }), undefined, 'another version');
  });

  it('parses Repr-Digest and Want-Repr-Digest', () => {
    const hex256 = createHash('sha256').update('x').digest('hex');
    const hex512 = createHash('sha512').update('x').digest('hex');
    const header = reprDigestHeader({ sha256: hex256, sha512: hex512 }, {}) ?? '';
    assert.deepEqual(parseReprDigest(header), new Map([['sha-256', hex256], ['sha-512', hex512]]));
    assert.deepEqual(parseReprDigest('md5=:AAAA:'), new Map());
    assert.throws(() => parseReprDigest('sha-256=:AAAA:'), /malformed sha-256/);
    assert.deepEqual(parseWantDigest('sha-256=1, sha-512=10'), new Map([['sha-256', 1], ['sha-512', 10]]));
    assert.equal(parseWantDigest('sha-256=11'), undefined);
    assert.equal(parseWantDigest('sha-256'), undefined);
  });
});
