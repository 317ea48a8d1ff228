/**
 * An origin bootdepot and a site bootdepot in front of it, both on loopback: files uploaded on
 * the origin boot machines through the site, a replaced file is the new one at once, the site
 * keeps booting from its copies while the origin is down (and says so), a copy that does not
 * match the origin's Repr-Digest is never kept, and query strings are part of what is cached.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { loadConfig } from '../../src/config/loader.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { siteToken } from '../../src/site/tokens.ts';
import { round } from './support.ts';
import { captureLogger, makeTree, runBootdepot, waitFor, writeFiles, type LogLine } from '../helpers.ts';

const TOKEN = 'origin-admin-token-0123456789';
const MAC = '52:54:00:12:34:56';
const b64 = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('base64');
/** Bodies are compared by digest: a failing deepEqual of two large buffers prints (and computes) a huge diff. */
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** One profile that boots /assets/os/k (kernel) and /assets/os/i (initrd), for every machine: the origin's data, synced to the site. */
const DATA = {
  'profiles/node.json': JSON.stringify({ id: 'node', boot: { kernel: '/assets/os/k', initrd: ['/assets/os/i'], args: ['console=ttyS0'] } }),
  'groups/all.json': JSON.stringify({ id: 'all', profile: 'node' }),
};

interface Tier {
  server: RunningServer;
  base: string;
  dir: string;
  lines: LogLine[];
}

/** A whole bootdepot (store, mirror, app) from a config file in a temp directory; closed after the test. */
async function startTier(t: TestContext, yaml: string, options: { assets?: Record<string, string | Buffer>; data?: Record<string, string>; mirror?: string } = {}): Promise<Tier> {
  const { assets = {}, data = {}, mirror = '' } = options;
  const dir = await makeTree(t, { 'data/.keep': '', ...Object.fromEntries(Object.entries(data).map(([name, text]) => [`data/${name}`, text])), 'site-token': `${siteToken(TOKEN, 'rack-7')}\n` });
  await mkdir(path.join(dir, 'assets'));
  await writeFiles(path.join(dir, 'assets'), assets);
  const configPath = path.join(dir, 'bootdepot.yaml');
  const text = `server: {host: 127.0.0.1, port: 0}\npaths: {data: data, assets: assets}\nmirror: {cacheDir: cache, builtins: false${mirror}}\n${yaml}`;
  await writeFile(configPath, text);
  const { config, problems } = loadConfig({ file: { path: configPath, text }, cwd: dir, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
  if (!config) throw new Error(`bad config: ${JSON.stringify(problems)}`);
  const { logger, lines } = captureLogger();
  const server = await startServer(config, logger);
  let closed = false;
  const close = server.close.bind(server);
  server.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  t.after(() => server.close());
  return { server, base: server.url.replace(/\/+$/, ''), dir, lines };
}

async function startOrigin(t: TestContext, assets: Record<string, string | Buffer> = {}) {
  return startTier(t, '', { assets, data: DATA });
}

async function startSite(t: TestContext, origin: string) {
  // Mirror settings as shipped: the origin's `Cache-Control: public, no-cache` alone makes the site revalidate.
  const site = await startTier(t, `site: {name: rack-7, origin: '${origin}', tokenFile: site-token, syncIntervalSeconds: 86400}\n`);
  // The site boots from its copy of the origin's data: the first sync has run.
  await round(site.server);
  return site;
}

async function upload(origin: string, relativePath: string, body: Buffer) {
  const res = await request(`${origin}/api/v1/assets/${relativePath}`, { method: 'PUT', body, headers: { authorization: `Bearer ${TOKEN}` } });
  await res.body.dump();
  assert.ok(res.statusCode === 200 || res.statusCode === 201, `upload answered ${res.statusCode}`);
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

/** A boot through the site: the script, then every kernel and initrd it downloads. */
async function boot(site: string) {
  const script = await get(`${site}/ipxe?mac=${MAC}`);
  assert.equal(script.status, 200);
  const text = script.body.toString();
  const kernel = /^kernel (\S+)/m.exec(text)?.[1];
  const initrd = /^initrd (?:--name \S+ )?(\S+)/m.exec(text)?.[1];
  assert.ok(kernel && initrd, `a booting script:\n${text}`);
  // The script links the site's own URLs, never the origin's.
  assert.ok(kernel.startsWith(`${site}/b/`) && kernel.endsWith('/assets/os/k'), kernel);
  const downloads = { script: text, kernel: await get(kernel), initrd: await get(initrd) };
  await settled(site);
  return downloads;
}

/** Waits until the site has no fill in progress: what it fetched is in its cache (or dropped). */
async function settled(site: string): Promise<void> {
  await waitFor(async () => {
    const res = await request(`${site}/api/v1/mirror`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return ((await res.body.json()) as { filling: unknown[] }).filling.length === 0;
  }, 10_000, 'the site\'s fills to end');
}

async function metric(base: string, name: string): Promise<number> {
  const text = (await get(`${base}/metrics`)).body.toString();
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

describe('a site in front of an origin', () => {
  it('boots the origin\'s files, the new one at once after a replacement, and stale ones while the origin is down', async (t) => {
    const origin = await startOrigin(t);
    const kernel1 = randomBytes(300_000);
    const initrd1 = randomBytes(500_000);
    await upload(origin.base, 'os/k', kernel1);
    await upload(origin.base, 'os/i', initrd1);
    const site = await startSite(t, origin.base);
    // `check` on the site finds the images where its machines will: at the origin.
    const checked = await runBootdepot(['check', '--config', path.join(site.dir, 'bootdepot.yaml')]);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);

    const first = await boot(site.base);
    assert.equal(first.kernel.status, 200);
    assert.equal(sha(first.kernel.body), sha(kernel1));
    assert.equal(sha(first.initrd.body), sha(initrd1));

    // Served again from the site's cache, with the digests the origin published and the site checked.
    const again = await boot(site.base);
    assert.equal(sha(again.kernel.body), sha(kernel1));
    assert.equal(again.kernel.headers['repr-digest'], `sha-256=:${b64('sha256', kernel1)}:, sha-512=:${b64('sha512', kernel1)}:`);

    const kernel2 = randomBytes(310_000);
    await upload(origin.base, 'os/k', kernel2);
    const replaced = await boot(site.base);
    assert.equal(sha(replaced.kernel.body), sha(kernel2), 'the replaced kernel at once');
    assert.equal(sha(replaced.initrd.body), sha(initrd1));

    await origin.server.close();
    const down = await boot(site.base);
    assert.match(down.script, /^boot /m, "the script boots");
    assert.equal(down.kernel.status, 200);
    assert.equal(sha(down.kernel.body), sha(kernel2), 'the copy the site has');
    assert.equal(down.kernel.headers['x-cache-status'], 'STALE');
    assert.ok((await metric(site.base, 'bootdepot_mirror_stale_served')) >= 1, 'counted');
    assert.ok(site.lines.some((line) => /stale/i.test(line.msg) && line.level >= 40), 'logged');
  });

  it('keeps nothing that does not match the origin\'s Repr-Digest, and cuts its client off', async (t) => {
    const good = randomBytes(400_000);
    const origin = await startOrigin(t, { 'os/k': good });
    const version = await stat(path.join(origin.dir, 'assets/os/k'), { bigint: true });
    // The origin's record of the file says other bytes (a corrupted copy on its disk, say).
    const wrong = createHash('sha512').update('other bytes').digest('hex');
    const sidecar = path.join(origin.dir, 'assets/.digests/os/k.json');
    await mkdir(path.dirname(sidecar), { recursive: true });
    const versionKey = `${version.ino.toString(16)}-${version.size.toString(16)}-${version.mtimeNs.toString(16)}`;
    await writeFile(sidecar, JSON.stringify({ version: versionKey, digests: { sha256: createHash('sha256').update(good).digest('hex'), sha512: wrong } }));
    const site = await startSite(t, origin.base);

    const res = await rawGet(`${site.base}/assets/os/k`);
    assert.equal(res.complete && res.status === 200 && res.bytes === good.length, false, 'never a complete, good-looking file');
    assert.equal(await metric(site.base, 'bootdepot_mirror_digest_mismatches'), 1);
    assert.equal(await metric(site.base, 'bootdepot_mirror_cached_files'), 0);
    assert.ok(site.lines.some((line) => line.level >= 50 && /Repr-Digest/.test(line.msg)), 'logged as an error');
    // Nothing kept: the next request asks the origin again.
    const list = await request(`${site.base}/api/v1/mirror`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const listing = (await list.body.json()) as { files: unknown[] };
    assert.deepEqual(listing.files, []);
  });

  it('keys the site\'s copies by the whole URL, query string included, and asks the origin with it', async (t) => {
    const data = randomBytes(100_000);
    const origin = await startOrigin(t, { 'os/k': data });
    const site = await startSite(t, origin.base);
    for (const query of ['?version=A', '?version=B', '?version=A']) {
      const res = await get(`${site.base}/assets/os/k${query}`);
      assert.equal(res.status, 200, query);
      assert.equal(sha(res.body), sha(data));
      await settled(site.base);
    }
    const list = await request(`${site.base}/api/v1/mirror`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const { files } = (await list.body.json()) as { files: { path: string }[] };
    assert.equal(files.filter((file) => file.path === 'os/k').length, 2, 'one copy per query');
    // The third request revalidated the ?version=A copy, asking the origin with its query.
    assert.ok(origin.lines.some((line) => line.url === '/assets/os/k?version=A' && line.status === 304), 'a conditional request with the query');
  });

  it('answers PUT and DELETE of /assets with a pointer to the origin', async (t) => {
    const origin = await startOrigin(t);
    const site = await startSite(t, origin.base);
    for (const [method, url] of [['PUT', `${site.base}/api/v1/assets/os/new%20k`], ['DELETE', `${site.base}/api/v1/assets/os/k`], ['PUT', `${site.base}/assets/os/k`]] as const) {
      const res = await request(url, { method, body: method === 'PUT' ? 'data' : undefined, headers: { authorization: `Bearer ${TOKEN}` } });
      const body = (await res.body.json()) as { detail: string; origin: string; status: number };
      assert.equal(res.statusCode, 307, `${method} ${url}`);
      assert.equal(res.headers.location, `${origin.base}/api/v1/assets/os/${url.endsWith('new%20k') ? 'new%20k' : 'k'}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(body.status, 307);
      assert.equal(body.origin, origin.base);
      assert.match(body.detail, /site rack-7/);
    }
    // `bootdepot push` to a site says where to push instead, and sends nothing on.
    const file = path.join(site.dir, 'kernel');
    await writeFile(file, 'kernel bytes');
    const pushed = await runBootdepot(['push', file, '--to', 'os/k', '--server', site.base, '--token', TOKEN]);
    assert.equal(pushed.code, 1);
    assert.match(pushed.stderr, new RegExp(`is a site: .*bootdepot push --server ${origin.base.replace(/[.]/g, '\\.')} `));
    assert.equal((await get(`${origin.base}/assets/os/k`)).status, 404, 'nothing was uploaded to the origin');
  });

  it('makes a machine wait, saying why, for files neither the origin nor the site has', async (t) => {
    const origin = await startOrigin(t);
    const site = await startSite(t, origin.base);
    const missing = (await get(`${site.base}/ipxe?mac=${MAC}`)).body.toString();
    assert.doesNotMatch(missing, /^kernel /m);
    assert.match(missing, /assets\/os\/k and assets\/os\/i missing/);
    const checked = await runBootdepot(['check', '--config', path.join(site.dir, 'bootdepot.yaml')]);
    assert.equal(checked.code, 1);
    assert.match(checked.stdout, /assets\/os\/k and assets\/os\/i missing/);
    await origin.server.close();
    // Asked again once the remembered answer has expired: the origin cannot be asked now.
    await waitFor(async () => /cannot be asked/.test((await get(`${site.base}/ipxe?mac=${MAC}`)).body.toString()), 10_000, 'the wait script to name the origin');
    const down = (await get(`${site.base}/ipxe?mac=${MAC}`)).body.toString();
    assert.doesNotMatch(down, /^kernel /m);
    assert.match(down, new RegExp(`the origin ${origin.base.replace(/[.]/g, '\\.')}/assets cannot be asked for /assets/os/k`));
  });
});

/** A GET that reports whether its body arrived complete (the mirror cuts a bad file off). */
function rawGet(url: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve({ status: 0, bytes: 0, complete: false }) : reject(error)));
  });
}
