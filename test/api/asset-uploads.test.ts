import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { removeStaleUploads, UploadError, writeAssetAtomically } from '../../src/assets/upload.ts';
import { makeTree, testApp } from '../helpers.ts';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function server(t: TestContext, options: { token?: string; yaml?: string; assets?: Record<string, string | Buffer> } = {}) {
  const overrides = options.token === undefined ? [] : [{ key: 'adminToken' as const, value: options.token, source: 'test' }];
  const built = await testApp(t, { data: {}, assets: options.assets ?? {}, overrides, yaml: options.yaml });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  return { ...built, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

async function put(url: string, body: Buffer | string | Readable, headers: Record<string, string> = AUTH) {
  const res = await request(url, { method: 'PUT', body, headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function allFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('admin token', () => {
  it('turns uploads off when no token is configured', async (t) => {
    const { base } = await server(t);
    const res = await put(`${base}/api/v1/assets/a.bin`, 'x');
    assert.equal(res.status, 403);
    assert.match(String(res.json.error), /admin API is off/);
  });

  it('answers 401 to a missing or wrong token', async (t) => {
    const { base, assetsDir } = await server(t, { token: TOKEN });
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }] as Record<string, string>[]) {
      const res = await put(`${base}/api/v1/assets/a.bin`, 'x', headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="bootdepot"');
      const del = await request(`${base}/api/v1/assets/a.bin`, { method: 'DELETE', headers });
      await del.body.dump();
      assert.equal(del.statusCode, 401);
    }
    assert.deepEqual(await allFiles(assetsDir), []);
  });

  it('refuses a weak token at start', async (t) => {
    await assert.rejects(server(t, { token: 'short' }), /at least 16 printable characters/);
  });
});

describe('uploads', () => {
  it('create, replace and delete files that then serve exactly', async (t) => {
    const { base } = await server(t, { token: TOKEN });
    const v1 = randomBytes(300_000);
    const created = await put(`${base}/api/v1/assets/linuxkit/demo-kernel`, v1, { ...AUTH, 'x-checksum-sha256': sha(v1) });
    assert.equal(created.status, 201);
    assert.deepEqual(created.json, { path: 'linuxkit/demo-kernel', size: v1.length, sha256: sha(v1), created: true, url: '/assets/linuxkit/demo-kernel' });
    const served = await request(`${base}/assets/linuxkit/demo-kernel`);
    assert.equal(sha(Buffer.from(await served.body.arrayBuffer())), sha(v1));

    const v2 = Buffer.from('second version');
    const digest = `sha-256=:${createHash('sha256').update(v2).digest('base64')}:`;
    const replaced = await put(`${base}/api/v1/assets/linuxkit/demo-kernel`, v2, { ...AUTH, 'content-digest': digest, 'content-type': 'application/json' });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.json.created, false);
    assert.equal(await (await request(`${base}/assets/linuxkit/demo-kernel`)).body.text(), 'second version');

    const del = await request(`${base}/api/v1/assets/linuxkit/demo-kernel`, { method: 'DELETE', headers: AUTH });
    await del.body.dump();
    assert.equal(del.statusCode, 204);
    const again = await request(`${base}/api/v1/assets/linuxkit/demo-kernel`, { method: 'DELETE', headers: AUTH });
    assert.equal(again.statusCode, 404);
    assert.match(await again.body.text(), /no asset linuxkit\/demo-kernel/);
  });

  it('refuse a body whose SHA-256 differs, leaving the old file and no temp file', async (t) => {
    const { base, assetsDir } = await server(t, { token: TOKEN, assets: { 'a.bin': 'old' } });
    const res = await put(`${base}/api/v1/assets/a.bin`, 'new', { ...AUTH, 'x-checksum-sha256': sha('other') });
    assert.equal(res.status, 422);
    assert.match(String(res.json.error), /SHA-256 mismatch/);
    assert.equal(await readFile(path.join(assetsDir, 'a.bin'), 'utf8'), 'old');
    assert.deepEqual(await allFiles(assetsDir), ['a.bin']);
    const malformed = await put(`${base}/api/v1/assets/a.bin`, 'new', { ...AUTH, 'x-checksum-sha256': 'abc' });
    assert.equal(malformed.status, 400);
  });

  it('enforce the size limit, declared or streamed', async (t) => {
    const { base, assetsDir } = await server(t, { token: TOKEN, yaml: 'assets:\n  maxUploadBytes: 1000\n' });
    assert.equal((await put(`${base}/api/v1/assets/big.bin`, Buffer.alloc(1001))).status, 413);
    // Chunked, so the limit is only found while streaming.
    const chunked = Readable.from([Buffer.alloc(600), Buffer.alloc(600)]);
    const res = await put(`${base}/api/v1/assets/big.bin`, chunked);
    assert.equal(res.status, 413);
    assert.deepEqual(await allFiles(assetsDir), []);
    assert.equal((await put(`${base}/api/v1/assets/ok.bin`, Buffer.alloc(1000))).status, 201);
  });

  it('never write outside the assets root', async (t) => {
    const outside = await makeTree(t, {});
    const { base, assetsDir } = await server(t, { token: TOKEN });
    await symlink(outside, path.join(assetsDir, 'link'));
    for (const rel of ['..%2Fescape', '%2e%2e/escape', 'a/../../escape', '.hidden', 'a%5C..%5Cescape', 'x%00y', 'link/escape']) {
      const res = await put(`${base}/api/v1/assets/${rel}`, 'data');
      assert.ok([400, 404].includes(res.status), `${rel} -> ${res.status}`);
    }
    assert.deepEqual(await allFiles(outside), []);
    assert.deepEqual(await allFiles(assetsDir), ['link']);
  });

  it('are atomic: concurrent readers see the old file or the new one, never a mix', async (t) => {
    const versions = [Buffer.alloc(6 * 1024 * 1024, 'a'), Buffer.alloc(5 * 1024 * 1024 + 3, 'b')];
    const hashes = new Set(versions.map((v) => sha(v)));
    const { base } = await server(t, { token: TOKEN, assets: { 'disk.img': versions[0] ?? '' } });
    let stop = false;
    const seen: string[] = [];
    const reader = async () => {
      // Bounded: at most 200 reads, and the writer stops it after its uploads.
      for (let i = 0; i < 200 && !stop; i++) {
        const res = await request(`${base}/assets/disk.img`);
        const body = Buffer.from(await res.body.arrayBuffer());
        assert.equal(Number(res.headers['content-length']), body.length);
        seen.push(sha(body));
      }
    };
    const writer = async () => {
      for (let i = 1; i <= 12; i++) {
        const version = versions[i % 2] ?? Buffer.alloc(0);
        const res = await put(`${base}/api/v1/assets/disk.img`, version, { ...AUTH, 'x-checksum-sha256': sha(version) });
        assert.equal(res.status, 200);
      }
      stop = true;
    };
    await Promise.all([reader(), reader(), reader(), writer()]);
    assert.ok(seen.length >= 3);
    for (const digest of seen) assert.ok(hashes.has(digest), 'every read is one whole version');
  });
});

describe('the atomic writer', () => {
  it('answers 507 on a full disk and removes the temp file', async (t) => {
    const root = await makeTree(t, { 'kept.img': 'old' });
    let tempPath = '';
    const fullDisk = (file: string): Writable => {
      tempPath = file;
      const real = createWriteStream(file);
      let written = 0;
      return new Writable({
        write(chunk: Buffer, _e, callback) {
          written += chunk.length;
          if (written > 64 * 1024) {
            callback(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
            return;
          }
          real.write(chunk, callback);
        },
        final(callback) {
          real.end(callback);
        },
        destroy(error, callback) {
          real.destroy();
          callback(error);
        },
      });
    };
    await assert.rejects(
      writeAssetAtomically(root, 'kept.img', Readable.from([randomBytes(100_000), randomBytes(100_000)]), { maxBytes: 1e9, createWriteStream: fullDisk }),
      (error: unknown) => error instanceof UploadError && error.statusCode === 507,
    );
    assert.ok(tempPath.includes('.upload-'));
    assert.deepEqual(await allFiles(root), ['kept.img']);
    assert.equal(await readFile(path.join(root, 'kept.img'), 'utf8'), 'old');
  });

  it('cleans temp files an interrupted upload left', async (t) => {
    const root = await makeTree(t, { 'a/.upload-0123.tmp': 'partial', 'a/keep.img': 'k', '.upload-x.tmp': 'p' });
    const removed = await removeStaleUploads(root);
    assert.equal(removed.length, 2);
    assert.deepEqual(await allFiles(root), ['a', 'a/keep.img']);
  });
});
