/** The mirror checks an upstream's Repr-Digest (RFC 9530) before it keeps a file, as it checks Flatcar DIGESTS. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { bodyOf, fetchRaw, sha512, startMirror } from './support.ts';

const b64 = (algorithm: string, data: Buffer | string) => createHash(algorithm).update(data).digest('base64');

interface Served {
  body: Buffer;
  /** The Repr-Digest header to send, as a function of the body (or none). */
  reprDigest?: string;
}

/** An upstream that answers every path with one file and the Repr-Digest it is told to send. */
async function digestUpstream(t: TestContext, served: Served) {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(served.body.length), etag: '"v1"', 'accept-ranges': 'bytes' };
    if (served.reprDigest !== undefined) headers['repr-digest'] = served.reprDigest;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : served.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.closeAllConnections();
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function logCapture() {
  const lines: { level: string; fields: object; message: string }[] = [];
  const at = (level: string) => (fields: object, message: string) => lines.push({ level, fields, message });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('Repr-Digest from the upstream', () => {
  it('asks for it, checks it and keeps a file that matches as verified', async (t) => {
    const body = bodyOf(300_000);
    const upstream = await digestUpstream(t, { body, reprDigest: `sha-256=:${b64('sha256', body)}:, sha-512=:${b64('sha512', body)}:` });
    const { base, mirror } = await startMirror(t, upstream.url);
    const res = await fetchRaw(`${base}/mirror/up/images/kernel`);
    assert.equal(res.status, 200);
    assert.ok(res.complete);
    assert.equal(sha512(res.body), sha512(body));
    assert.match(String(upstream.seen[0]?.['want-repr-digest']), /sha-512=\d+/);
    await mirror.settled();
    const [cached] = mirror.list();
    assert.equal(cached?.path, 'images/kernel');
    assert.equal(cached.digestVerified, true);
    assert.equal(mirror.stats().digestMismatches, 0);
    // Served on from the cache with the digests it was checked against.
    const hit = await fetchRaw(`${base}/mirror/up/images/kernel`, { headers: { range: 'bytes=0-9' } });
    assert.equal(hit.status, 206);
    assert.equal(hit.headers['repr-digest'], `sha-256=:${b64('sha256', body)}:, sha-512=:${b64('sha512', body)}:`);
  });

  for (const wrong of ['sha-512', 'sha-256'] as const) {
    it(`cuts the clients off and keeps nothing when the ${wrong} differs`, async (t) => {
      const body = bodyOf(2 * 1024 * 1024);
      const other = Buffer.from(body);
      other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1;
      const sha256Of = wrong === 'sha-256' ? other : body;
      const sha512Of = wrong === 'sha-512' ? other : body;
      const upstream = await digestUpstream(t, { body, reprDigest: `sha-256=:${b64('sha256', sha256Of)}:, sha-512=:${b64('sha512', sha512Of)}:` });
      const { lines, log } = logCapture();
      const { base, mirror } = await startMirror(t, upstream.url, { log });
      const [first, second] = await Promise.all([fetchRaw(`${base}/mirror/up/disk.img`), fetchRaw(`${base}/mirror/up/disk.img`)]);
      for (const res of [first, second]) {
        // Either cut off mid-body or refused before it: never a complete, good-looking file.
        assert.equal(res.complete && res.status === 200, false, `status ${res.status}, ${res.body.length} bytes, complete ${res.complete}`);
        assert.ok(res.body.length < body.length);
      }
      await mirror.settled();
      assert.deepEqual(mirror.list(), []);
      assert.equal(mirror.objectFile('up', 'disk.img'), undefined);
      assert.equal(mirror.stats().digestMismatches, 1);
      assert.ok(lines.some((line) => line.level === 'error' && /Repr-Digest/.test(line.message)), 'logged as an error');
      assert.match(mirror.knownProblem('up', 'disk.img')?.error ?? '', new RegExp(`${wrong} does not match`));
    });
  }

  it('refuses a malformed Repr-Digest and keeps a file whose digests it does not check', async (t) => {
    const body = bodyOf(10_000);
    const malformed = await digestUpstream(t, { body, reprDigest: 'sha-512=:bm90IGEgZGlnZXN0:' });
    const first = await startMirror(t, malformed.url);
    const refused = await fetchRaw(`${first.base}/mirror/up/a.bin`);
    assert.equal(refused.status, 502);
    await first.mirror.settled();
    assert.deepEqual(first.mirror.list(), []);

    const foreign = await digestUpstream(t, { body, reprDigest: `md5=:${b64('md5', body)}:` });
    const second = await startMirror(t, foreign.url);
    const kept = await fetchRaw(`${second.base}/mirror/up/a.bin`);
    assert.equal(kept.status, 200);
    assert.ok(kept.complete);
    await second.mirror.settled();
    assert.equal(second.mirror.list()[0]?.digestVerified, false);
  });
});
