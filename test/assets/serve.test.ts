/** /assets over a real socket: bytes, headers, conditions, ranges, path safety, hang-ups. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, symlink, truncate } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { captureLogger, makeTree, testApp, waitFor } from '../helpers.ts';

const BIG = randomBytes(3 * 1024 * 1024 + 17);
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function serve(t: TestContext, assets: Record<string, string | Buffer> = {}) {
  const { logger, lines } = captureLogger();
  const built = await testApp(t, { data: {}, assets: { 'linuxkit/demo-kernel': BIG, 'notes.txt': 'hello world\n', 'empty.bin': '', '.hidden': 'secret', ...assets }, logger });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { ...built, base: `http://127.0.0.1:${port}`, lines };
}

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

describe('serving files', () => {
  it('sends exact bytes with validators, type and caching headers', async (t) => {
    const { base } = await serve(t);
    const res = await get(`${base}/assets/linuxkit/demo-kernel`);
    assert.equal(res.status, 200);
    assert.equal(sha(res.body), sha(BIG));
    assert.equal(res.headers['content-length'], String(BIG.length));
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['cache-control'], 'public, no-cache');
    assert.match(String(res.headers.etag), /^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/, 'strong ETag');
    assert.ok(!Number.isNaN(Date.parse(String(res.headers['last-modified']))));
    const text = await get(`${base}/assets/notes.txt`);
    assert.equal(text.headers['content-type'], 'text/plain');
    const empty = await get(`${base}/assets/empty.bin`);
    assert.equal(empty.status, 200);
    assert.equal(empty.body.length, 0);
  });

  it('answers HEAD with GET\'s headers and no body', async (t) => {
    const { base } = await serve(t);
    const getRes = await get(`${base}/assets/linuxkit/demo-kernel`, { range: 'bytes=10-19' });
    const headRes = await get(`${base}/assets/linuxkit/demo-kernel`, { range: 'bytes=10-19' }, 'HEAD');
    assert.equal(headRes.body.length, 0);
    for (const name of ['content-length', 'content-type', 'content-range', 'etag', 'last-modified', 'accept-ranges', 'cache-control']) {
      assert.equal(headRes.headers[name], getRes.headers[name], name);
    }
  });

  it('answers conditions with 304 and 412, and impossible ranges with 416', async (t) => {
    const { base } = await serve(t);
    const url = `${base}/assets/notes.txt`;
    const first = await get(url);
    const etag = String(first.headers.etag);
    const notModified = await get(url, { 'if-none-match': etag });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
    assert.equal(notModified.headers.etag, etag);
    assert.equal((await get(url, { 'if-modified-since': String(first.headers['last-modified']) })).status, 304);
    assert.equal((await get(url, { 'if-match': '"nope"' })).status, 412);
    assert.equal((await get(url, { 'if-match': etag })).status, 200);
    const unsatisfiable = await get(url, { range: 'bytes=100-' });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['content-range'], 'bytes */12');
  });

  it('serves one range, and several as multipart/byteranges', async (t) => {
    const { base } = await serve(t);
    const url = `${base}/assets/linuxkit/demo-kernel`;
    const one = await get(url, { range: 'bytes=1000-1999' });
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], `bytes 1000-1999/${BIG.length}`);
    assert.deepEqual(one.body, BIG.subarray(1000, 2000));
    const suffix = await get(url, { range: 'bytes=-5' });
    assert.deepEqual(suffix.body, BIG.subarray(BIG.length - 5));

    const many = await get(url, { range: 'bytes=0-9,2000000-2000009' });
    assert.equal(many.status, 206);
    const boundary = /boundary=([0-9a-f]+)$/.exec(String(many.headers['content-type']))?.[1];
    assert.ok(boundary);
    assert.equal(Number(many.headers['content-length']), many.body.length);
    const parts = many.body.toString('latin1').split(`--${boundary}`).slice(1, -1);
    assert.equal(parts.length, 2);
    const expected = [
      [0, 9],
      [2000000, 2000009],
    ] as const;
    parts.forEach((part, i) => {
      const [head, data] = part.split('\r\n\r\n');
      const [start, end] = expected[i] ?? [0, 0];
      assert.match(head ?? '', new RegExp(`Content-Range: bytes ${start}-${end}/${BIG.length}`));
      assert.deepEqual(Buffer.from((data ?? '').replace(/\r\n$/, ''), 'latin1'), BIG.subarray(start, end + 1));
    });
  });
});

describe('path safety', () => {
  it('never leaves the assets root, never lists directories, never shows dotfiles', async (t) => {
    const outside = await makeTree(t, { 'secret.txt': 'outside' });
    const { base, assetsDir } = await serve(t);
    await symlink(path.join(outside, 'secret.txt'), path.join(assetsDir, 'escape'));
    await symlink(path.join(outside), path.join(assetsDir, 'escape-dir'));
    await symlink(path.join(assetsDir, 'notes.txt'), path.join(assetsDir, 'inside'));
    await mkdir(path.join(assetsDir, 'sub'));
    const refused = [
      '/assets/../../etc/passwd',
      '/assets/%2e%2e/%2e%2e/etc/passwd',
      '/assets/%2E%2E%2Fetc%2Fpasswd',
      '/assets/%252e%252e/etc/passwd',
      '/assets/linuxkit/..%5c..%5cetc%5cpasswd',
      '/assets/notes.txt%00.img',
      '/assets//etc/passwd',
      '/assets/%2fetc%2fpasswd',
      '/assets/.hidden',
      '/assets/linuxkit/../.hidden',
      '/assets/escape',
      '/assets/escape-dir/secret.txt',
      '/assets/sub',
      '/assets/sub/',
      '/assets/',
      '/assets/linuxkit',
    ];
    for (const url of refused) {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        // node:http sends the path exactly as written (fetch/undici would normalise `..`).
        http.get(`${base}${url}`, (r) => {
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        }).on('error', reject);
      });
      assert.ok(res.status === 404 || res.status === 400, `${url} -> ${res.status}`);
      assert.doesNotMatch(res.body, /outside|secret|root:/, url);
    }
    const inside = await get(`${base}/assets/inside`);
    assert.equal(inside.status, 200, 'a symlink inside the root is followed');
    assert.equal(inside.body.toString(), 'hello world\n');
  });
});

/** Open file descriptors of this process that point at a file with this name. */
function openFdsTo(name: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).endsWith(`/${name}`)) count++;
    } catch {
      // closed while we looked
    }
  }
  return count;
}

describe('clients that leave and files that break', () => {
  it('treat a hang-up as normal: no error line, the file closed, one aborted summary', async (t) => {
    const big = randomBytes(64 * 1024 * 1024);
    const { base, lines } = await serve(t, { 'big.img': big });
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/assets/big.img`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
    });
    await waitFor(() => lines.some((l) => l.msg === 'download'), 5000, 'download summary');
    const summary = lines.find((l) => l.msg === 'download');
    assert.equal(summary?.outcome, 'aborted');
    assert.ok(Number(summary?.bytes) < big.length);
    assert.deepEqual(lines.filter((l) => l.level >= 50), [], 'no error lines');
    await waitFor(() => openFdsTo('big.img') === 0, 5000, 'the file to be closed');
  });

  it('cut the connection, never end cleanly, when the file shrinks mid-transfer', async (t) => {
    const big = randomBytes(48 * 1024 * 1024);
    const { base, lines, assetsDir } = await serve(t, { 'shrinks.img': big });
    const received = await new Promise<{ bytes: number; complete: boolean }>((resolve, reject) => {
      http.get(`${base}/assets/shrinks.img`, (res) => {
        let bytes = 0;
        res.once('data', (chunk: Buffer) => {
          bytes += chunk.length;
          res.pause();
          // Shrink the file while the server waits for this client to read.
          truncate(path.join(assetsDir, 'shrinks.img'), 1024 * 1024)
            .then(() => {
              res.on('data', (c: Buffer) => (bytes += c.length));
              res.resume();
            })
            .catch(reject);
        });
        res.on('close', () => resolve({ bytes, complete: res.complete }));
      }).on('error', reject);
    });
    assert.equal(received.complete, false, 'the client sees an incomplete body');
    assert.ok(received.bytes < big.length);
    await waitFor(() => lines.some((l) => l.msg === 'download failed mid-response'), 5000, 'an error line');
  });
});
