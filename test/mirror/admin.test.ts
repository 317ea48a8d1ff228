/** The mirror's admin API (warm, list, purge) and `bootdepot warm` against it. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { request } from 'undici';
import { Metrics } from '../../src/http/metrics.ts';
import { defaultMirrorSettings, defineMirror } from '../../src/mirror/config.ts';
import { mirrorGauges } from '../../src/mirror/metrics.ts';
import mirrorRoutes from '../../src/mirror/routes.ts';
import { captureLogger, makeTree } from '../helpers.ts';
import { bodyOf, fetchRaw, startMirror, startUpstream, TOKEN } from './support.ts';

const AUTH = { authorization: `Bearer ${TOKEN}` };
const V = 'amd64-usr/4152.2.0';

async function call(url: string, method: 'GET' | 'POST' | 'DELETE', body?: unknown, headers: Record<string, string> = AUTH) {
  const res = await request(url, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: text && res.headers['content-type']?.toString().startsWith('application/json') ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function runWarm(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'warm-cli.ts'), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('admin API', () => {
  it('requires the admin token', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url);
    for (const [method, url] of [['GET', '/api/v1/mirror'], ['DELETE', '/api/v1/mirror'], ['DELETE', `/api/v1/mirror/up/${V}/a`], ['POST', '/api/v1/mirror/warm']] as const) {
      const res = await call(`${base}${url}`, method, method === 'POST' ? { paths: ['up/a/b'] } : undefined, {});
      assert.equal(res.status, 401, `${method} ${url}`);
    }
  });

  it('warms files, lists them with size, age and hits, and purges one or all', async (t) => {
    const a = bodyOf(200 * 1024);
    const upstream = await startUpstream(t, { [`${V}/a`]: { body: a }, [`${V}/b`]: { body: bodyOf(1000) } });
    const { base, mirror } = await startMirror(t, upstream.url);

    const warmed = await call(`${base}/api/v1/mirror/warm`, 'POST', { paths: [`up/${V}/a`, `up/${V}/b`, `up/${V}/missing`, 'nope/x/y', 'no-slash'] });
    assert.equal(warmed.status, 200);
    assert.deepEqual(warmed.json.summary, { requested: 5, filled: 2, cached: 0, notFound: 2, failed: 1, bytes: a.length + 1000 });
    const results = warmed.json.results as { path: string; outcome: string }[];
    assert.deepEqual(results.map((r) => [r.path, r.outcome]), [
      [`up/${V}/a`, 'filled'],
      [`up/${V}/b`, 'filled'],
      [`up/${V}/missing`, 'not-found'],
      ['nope/x/y', 'not-found'],
      ['no-slash', 'failed'],
    ]);
    const again = await call(`${base}/api/v1/mirror/warm`, 'POST', { paths: [`up/${V}/a`] });
    assert.deepEqual(again.json.summary, { requested: 1, filled: 0, cached: 1, notFound: 0, failed: 0, bytes: a.length });
    assert.equal(upstream.requestsFor(`${V}/a`).length, 1);

    await request(`${base}/mirror/up/${V}/a`).then((res) => res.body.dump());
    const listed = await call(`${base}/api/v1/mirror`, 'GET');
    const files = listed.json.files as { mirror: string; path: string; size: number; age: number; hits: number }[];
    assert.deepEqual(files.map((f) => [f.mirror, f.path, f.size, f.hits]).sort(), [
      ['up', `${V}/a`, a.length, 1],
      ['up', `${V}/b`, 1000, 0],
    ]);
    assert.ok(files.every((f) => f.age >= 0));
    const stats = listed.json.stats as Record<string, number>;
    assert.equal(stats.hits, 1);
    assert.equal(stats.cachedFiles, 2);
    assert.ok((listed.json.mirrors as { name: string }[]).some((m) => m.name === 'flatcar-stable'));

    assert.equal((await call(`${base}/api/v1/mirror/up/${V}/a`, 'DELETE')).status, 204);
    assert.equal((await call(`${base}/api/v1/mirror/up/${V}/a`, 'DELETE')).status, 404);
    const purged = await call(`${base}/api/v1/mirror`, 'DELETE');
    assert.deepEqual(purged.json, { purged: 1 });
    await mirror.settled();
    assert.equal(mirror.list().length, 0);
  });

  it('streams progress and results as JSON lines when asked', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/a`]: { body: bodyOf(300 * 1024) } });
    const { base } = await startMirror(t, upstream.url);
    const res = await call(`${base}/api/v1/mirror/warm`, 'POST', { paths: [`up/${V}/a`] }, { ...AUTH, accept: 'application/x-ndjson' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
    const lines = res.text.trim().split('\n').map((line) => JSON.parse(line) as { type: string });
    assert.ok(lines.some((line) => line.type === 'progress'));
    assert.deepEqual(lines.at(-2), { type: 'result', result: { path: `up/${V}/a`, outcome: 'filled', bytes: 300 * 1024 } });
    assert.deepEqual(lines.at(-1), { type: 'summary', summary: { requested: 1, filled: 1, cached: 0, notFound: 0, failed: 0, bytes: 300 * 1024 } });
  });

  it('rejects a malformed warm request', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url);
    assert.equal((await call(`${base}/api/v1/mirror/warm`, 'POST', { paths: [] })).status, 400);
    assert.equal((await call(`${base}/api/v1/mirror/warm`, 'POST', { files: ['up/a/b'] })).status, 400);
  });
});

describe('bootdepot warm', () => {
  it('warms files through a running server and prints a summary', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/a`]: { body: bodyOf(100 * 1024) } });
    const { base, mirror } = await startMirror(t, upstream.url);
    const ok = await runWarm([`up/${V}/a`, '--server', `${base}/`], { BOOTDEPOT_ADMIN_TOKEN: TOKEN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^1 of 1 file\(s\) warmed; 0 failed \(1 fetched, 0 already cached, 0 not found; 100\.0 KiB in the cache\)$/m);
    assert.match(ok.stderr, /fetched up\/amd64-usr\/4152\.2\.0\/a \(100\.0 KiB\)/);
    assert.equal(mirror.list().length, 1);

    const partly = await runWarm([`up/${V}/a`, `up/${V}/missing`, '--server', base, '--token', TOKEN]);
    assert.equal(partly.code, 1);
    assert.match(partly.stdout, /^1 of 2 file\(s\) warmed; 1 failed \(0 fetched, 1 already cached, 1 not found;/m);
    assert.match(partly.stderr, /^failed up\/amd64-usr\/4152\.2\.0\/missing: not found upstream/m);
  });

  it('reports every file that failed, with its reason, and says none was warmed', async (t) => {
    const upstream = await startUpstream(t, {
      [`${V}/a`]: { body: bodyOf(1000), fault: { kind: 'status', status: 503 } },
      [`${V}/b`]: { body: bodyOf(1000), fault: { kind: 'status', status: 500 } },
    });
    const { base, mirror } = await startMirror(t, upstream.url);
    const failed = await runWarm([`up/${V}/a`, `up/${V}/b`, '--server', base, '--token', TOKEN]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^0 of 2 file\(s\) warmed; 2 failed /m);
    assert.doesNotMatch(failed.stdout, /warmed 2/);
    assert.match(failed.stderr, /^failed up\/amd64-usr\/4152\.2\.0\/a: upstream http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4152\.2\.0\/a answered 503$/m);
    assert.match(failed.stderr, /^failed up\/amd64-usr\/4152\.2\.0\/b: upstream http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4152\.2\.0\/b answered 500$/m);
    assert.equal(mirror.list().length, 0);

    // The upstream heals for one of them: one of two warmed, one failed, still not a success.
    upstream.files.set(`${V}/b`, { body: bodyOf(1000), fault: { kind: 'status', status: 502 } });
    const half = await runWarm([`up/${V}/a`, `up/${V}/b`, '--server', base, '--token', TOKEN]);
    assert.equal(half.code, 1);
    assert.match(half.stdout, /^1 of 2 file\(s\) warmed; 1 failed \(1 fetched, 0 already cached, 0 not found;/m);
    assert.match(half.stderr, /^fetched up\/amd64-usr\/4152\.2\.0\/a /m);
    assert.match(half.stderr, /^failed up\/amd64-usr\/4152\.2\.0\/b: .*answered 502$/m);
  });

  it('explains a missing server, token or a refused token', async (t) => {
    const upstream = await startUpstream(t);
    const { base } = await startMirror(t, upstream.url);
    const noServer = await runWarm(['up/a/b'], { BOOTDEPOT_SERVER: '', BOOTDEPOT_ADMIN_TOKEN: '' });
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /--server \(or BOOTDEPOT_SERVER\) is required/);
    const refused = await runWarm(['up/a/b', '--server', base, '--token', 'wrong-token-0123456789']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /rejected the token \(401\)/);
  });
});

describe('the plugin on its own', () => {
  it('opens its own mirror from settings, logs one line per download, and closes the mirror with the app', async (t) => {
    const body = bodyOf(100 * 1024);
    const upstream = await startUpstream(t, { [`${V}/kernel`]: { body } });
    const cacheDir = await makeTree(t, {});
    const { logger, lines } = captureLogger();
    const app = Fastify({ loggerInstance: logger });
    await app.register(mirrorRoutes, { settings: defaultMirrorSettings(cacheDir, { mirrors: { up: defineMirror('up', upstream.url) } }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    t.after(() => app.close());

    const response = await fetchRaw(`http://127.0.0.1:${port}/mirror/up/${V}/kernel`);
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-cache-status'], 'MISS');
    const again = await fetchRaw(`http://127.0.0.1:${port}/mirror/up/${V}/kernel`, { headers: { range: 'bytes=0-99' } });
    assert.equal(again.status, 206);
    const downloads = lines.filter((line) => line.msg === 'download');
    assert.equal(downloads.length, 1);
    assert.equal(typeof downloads[0]?.bytesPerSecond, 'number');
    assert.deepEqual({ ...downloads[0], time: undefined, pid: undefined, hostname: undefined, ms: undefined, reqId: undefined, bytesPerSecond: undefined }, {
      level: 30,
      msg: 'download',
      path: `mirror/up/${V}/kernel`,
      client: '127.0.0.1',
      status: 200,
      bytes: body.length,
      total: body.length,
      bytesPerSecond: undefined,
      outcome: 'complete',
      time: undefined,
      pid: undefined,
      hostname: undefined,
      ms: undefined,
      reqId: undefined,
    });
    await app.close();
    assert.ok(lines.some((line) => line.msg === 'ranged download' && line.path === `mirror/up/${V}/kernel` && line.requests === 1));
    assert.ok(lines.some((line) => line.msg === 'mirror cached a file'));
  });
});

describe('metrics', () => {
  it('exposes the counters as bootdepot_mirror_* gauges for /metrics', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/kernel`]: { body: bodyOf(1000) } });
    const { base, mirror } = await startMirror(t, upstream.url);
    await fetchRaw(`${base}/mirror/up/${V}/kernel`);
    await mirror.settled();
    await fetchRaw(`${base}/mirror/up/${V}/kernel`);
    const metrics = new Metrics({ extra: mirrorGauges(mirror) });
    const text = await metrics.registry.metrics();
    assert.match(text, /^bootdepot_mirror_hits 1$/m);
    assert.match(text, /^bootdepot_mirror_misses 1$/m);
    assert.match(text, /^bootdepot_mirror_upstream_bytes 1000$/m);
    assert.match(text, /^# HELP bootdepot_mirror_failed_fills Mirror transfers that ended without a usable file$/m);
  });
});
