/**
 * The mirror benchmark (`npm run bench -- mirror`): a cold 256 MiB file fanned out to 50
 * clients at once, through bootdepot's mirror and through nginx with proxy_cache and
 * proxy_cache_lock, from the same upstream. The upstream is paced per connection (like a WAN
 * link to a release server) so that the cache, not loopback speed, decides the outcome.
 * Measured in one run: upstream requests, time to first byte (p50, p99) and total time,
 * against one direct download from the upstream.
 *
 * Bounded: every curl has --max-time; everything started is stopped at the end. Loopback only.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNginx, startNginx, type RunningNginx } from '../test/support/nginx.ts';
import { startPacedUpstream, type PacedUpstream } from './paced-upstream.ts';
import { freePort, waitForPort } from '../test/support/net.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(REPO, 'bench', '.work');
const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_MIRROR_MIB ?? 256) * MiB;
const CLIENTS = 50;
const UPSTREAM_MIBPS = Number(process.env.BENCH_UPSTREAM_MIBPS ?? 40);
const MAX_TIME_S = 120;
const TARGETS = { upstreamRequests: 1, ttfbSlackMs: 50, totalRatio: 1.2 };

const log = (message: string) => process.stderr.write(`[bench mirror] ${message}\n`);

type Upstream = PacedUpstream;

/** Serves one file at any path under /assets/, each connection paced to UPSTREAM_MIBPS. */
function startUpstream(file: string): Promise<Upstream> {
  return startPacedUpstream({ fileFor: (urlPath) => (urlPath.startsWith('/assets/') ? file : undefined), bytesPerSecond: UPSTREAM_MIBPS * MiB, link: 'per-connection', headers: { 'accept-ranges': 'none' } });
}

interface Fetch {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
  status: number;
}

function curl(url: string): Promise<Fetch> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', String(MAX_TIME_S), '-w', '%{time_starttransfer} %{time_total} %{size_download} %{http_code}', url]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const [ttfb, total, bytes, status] = out.trim().split(' ').map(Number);
      resolve({ ttfbMs: (ttfb ?? NaN) * 1000, totalMs: (total ?? NaN) * 1000, bytes: bytes ?? 0, status: status ?? 0 });
    });
  });
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};

interface FanOut {
  server: string;
  upstreamRequests: number;
  ttfbP50: number;
  ttfbP99: number;
  totalMs: number;
  complete: number;
}

async function fanOut(server: string, url: string, upstream: Upstream): Promise<FanOut> {
  const before = upstream.requests();
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: CLIENTS }, () => curl(url)));
  const totalMs = performance.now() - started;
  const complete = results.filter((r) => r.status === 200 && r.bytes === SIZE).length;
  const ttfbs = results.map((r) => r.ttfbMs);
  const result = { server, upstreamRequests: upstream.requests() - before, ttfbP50: percentile(ttfbs, 50), ttfbP99: percentile(ttfbs, 99), totalMs, complete };
  log(`${server}: ${result.upstreamRequests} upstream requests, TTFB p50 ${result.ttfbP50.toFixed(0)} ms p99 ${result.ttfbP99.toFixed(0)} ms, total ${(totalMs / 1000).toFixed(1)} s, ${complete}/${CLIENTS} complete`);
  return result;
}

async function ensureFile(file: string): Promise<void> {
  const existing = await stat(file).catch(() => undefined);
  if (existing?.size === SIZE) return;
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB);
    for (let written = 0; written < SIZE; written += MiB) {
      for (let i = 0; i < MiB; i += 4) chunk.writeUInt32LE(((written + i) ^ 0x9e3779b9) >>> 0, i);
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
}

/** Runs the mirror benchmark; returns its section of docs/benchmarks.md. */
export async function mirrorBenchmark(): Promise<string> {
  const nginxBinary = findNginx();
  if (!nginxBinary) throw new Error('nginx is needed for the comparison: apt-get install nginx');
  const file = path.join(WORK, `mirror-${SIZE / MiB}m.img`);
  await ensureFile(file);
  const upstream = await startUpstream(file);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-bench-mirror-'));
  let nginx: RunningNginx | undefined;
  let bootdepot: ReturnType<typeof spawn> | undefined;
  try {
    log(`one direct download from the upstream (${UPSTREAM_MIBPS} MiB/s per connection)`);
    const direct = await curl(`${upstream.url}/assets/file.img`);
    log(`direct: TTFB ${direct.ttfbMs.toFixed(0)} ms, total ${(direct.totalMs / 1000).toFixed(1)} s`);

    const port = await freePort();
    bootdepot = spawn(process.execPath, ['--max-semi-space-size=2', path.join(REPO, 'bin/bootdepot.js'), 'serve', '--data-dir', dir, '--assets-dir', dir, '--cache-dir', path.join(dir, 'cache'), '--mirror', `bench=${upstream.url}/assets`, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'], { stdio: 'ignore' });
    const child = bootdepot;
    await waitForPort(port, 20_000, () => child.exitCode === null);
    const ours = await fanOut('bootdepot', `http://127.0.0.1:${port}/mirror/bench/file.img`, upstream);

    nginx = await startNginx({ proxyCache: { upstream: upstream.url, ignoreCacheControl: true, maxSize: '2g' }, workers: 1, masterProcess: true });
    const theirs = await fanOut('nginx proxy_cache_lock', `${nginx.url}/assets/file.img`, upstream);
    return report(direct, [ours, theirs]);
  } finally {
    await nginx?.stop();
    if (bootdepot && bootdepot.exitCode === null) {
      const exited = new Promise((resolve) => bootdepot?.once('exit', resolve));
      bootdepot.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      bootdepot.kill('SIGKILL');
    }
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function report(direct: Fetch, rows: FanOut[]): string {
  const ours = rows.find((r) => r.server === 'bootdepot');
  const met = (ok: boolean | undefined) => (ok ? 'met' : '**not met**');
  const f = (n: number) => n.toFixed(0);
  return `## Mirror: cold fan-out

Written by \`npm run bench -- mirror\` (bench/mirror.ts). ${CLIENTS} curl clients ask at once for a
${SIZE / MiB} MiB file nobody has cached yet, through bootdepot's mirror and through nginx
(\`proxy_cache\` with \`proxy_cache_lock on\`, default 5 s lock timeout, one worker), from the
same upstream: a local server pacing each connection to ${UPSTREAM_MIBPS} MiB/s, as a release
server across a WAN would. ${os.cpus().length} CPUs shared by everything; load average before:
${os.loadavg()[0]?.toFixed(2)}.

One direct download from the upstream: time to first byte ${f(direct.ttfbMs)} ms, total
${(direct.totalMs / 1000).toFixed(1)} s.

| Through | upstream requests | TTFB p50 ms | TTFB p99 ms | total s (all ${CLIENTS}) | complete |
| --- | --- | --- | --- | --- | --- |
${rows.map((r) => `| ${r.server} | ${r.upstreamRequests} | ${f(r.ttfbP50)} | ${f(r.ttfbP99)} | ${(r.totalMs / 1000).toFixed(1)} | ${r.complete}/${CLIENTS} |`).join('\n')}

Targets for bootdepot: ${TARGETS.upstreamRequests} upstream request (${met(ours?.upstreamRequests === TARGETS.upstreamRequests)}); TTFB within
${TARGETS.ttfbSlackMs} ms of the upstream's (p99 ${ours ? f(ours.ttfbP99 - direct.ttfbMs) : '?'} ms over it: ${met(ours && ours.ttfbP99 - direct.ttfbMs <= TARGETS.ttfbSlackMs)}); total within
${TARGETS.totalRatio}x of a single download (${ours ? (ours.totalMs / direct.totalMs).toFixed(2) : '?'}x: ${met(ours && ours.totalMs / direct.totalMs <= TARGETS.totalRatio)}).

Reproduce: \`npm run bench -- mirror\` (needs nginx and curl; \`BENCH_MIRROR_MIB\` and
\`BENCH_UPSTREAM_MIBPS\` change the file size and the upstream's pace).
`;
}
