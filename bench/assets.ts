/**
 * The asset benchmark (`npm run bench -- assets`): bootdepot's /assets/ against nginx (sendfile on, one worker) on the same
 * 1 GiB file, over 127.0.0.1, with curl as the client. Not part of the tests.
 *
 * In one run, alternating between the servers and repeating (BENCH_ROUNDS, default 5; medians):
 *   - one client's throughput;
 *   - eight concurrent clients' aggregate throughput;
 *   - bootdepot's single-client throughput at assets.readSize 256 KiB, 1 MiB and 4 MiB (one
 *     bootdepot process per size), taking turns with nginx;
 *   - then, nginx stopped, bootdepot's peak RSS (VmHWM of a fresh process; VmRSS and RssAnon
 *     sampled too) while 50 concurrent downloads run.
 * bootdepot runs as its own process (bin/bootdepot.js serve), so its RSS and CPU are its own.
 * Prints a table with ratios to nginx; bench/run.ts puts the report into docs/benchmarks.md.
 *
 * Every loop is bounded in count, every download in time (curl --max-time), the whole run by a
 * watchdog (BENCH_TIME_LIMIT_S, default 420 s); everything started is killed at the end, on
 * failure, on Ctrl-C. The test file lives in bench/.work/ (gitignored) and is reused.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, findNginx, freePort, killOnExit, startNginx, stopChild, waitForPort, type RunningNginx } from '../test/support/nginx.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(REPO, 'bench', '.work');
const ASSETS = path.join(WORK, 'assets');
const DATA = path.join(WORK, 'data');

const MiB = 1024 * 1024;
const FILE_SIZE = positiveInt('BENCH_FILE_MIB', 1024) * MiB;
const FILE_NAME = `bench-${FILE_SIZE / MiB}m.img`;
const FILE = path.join(ASSETS, FILE_NAME);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const CONCURRENT = 8;
const RSS_CLIENTS = 50;
const READ_SIZES = [256 * 1024, MiB, 4 * MiB];
/** Single-client downloads per server per round (alternating with the other server). */
const SINGLE_PER_ROUND = 3;
/** Single-client downloads per server for each read size (alternating with nginx). */
const SWEEP_RUNS = 3;
const TIME_LIMIT_MS = positiveInt('BENCH_TIME_LIMIT_S', 420) * 1000;
/** No single download of the file may take longer than this. */
const CURL_MAX_TIME_S = 60;

const TARGETS = { single: 0.8, concurrent: 0.6, rssMiB: 150 };

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return value;
}

const started = Date.now();
/** 1-minute load averages: before the run, and at each measurement (other work skews every figure). */
const loadBefore = os.loadavg()[0] ?? NaN;
const loads: number[] = [];
const noteLoad = () => loads.push(os.loadavg()[0] ?? NaN);
const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);

// ---- processes: every one registered, every one killed at the end ----

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  const unregister = killOnExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  child.once('exit', () => {
    children.delete(child);
    unregister();
  });
  return child;
}

function deadline(): void {
  if (Date.now() - started > TIME_LIMIT_MS) throw new Error(`time limit of ${TIME_LIMIT_MS / 1000} s reached (BENCH_TIME_LIMIT_S)`);
}

// ---- the file ----

async function ensureFile(): Promise<void> {
  await mkdir(ASSETS, { recursive: true });
  await mkdir(DATA, { recursive: true });
  const existing = await stat(FILE).catch(() => undefined);
  if (existing?.size === FILE_SIZE) {
    log(`reusing ${path.relative(REPO, FILE)} (${FILE_SIZE / MiB} MiB)`);
    return;
  }
  log(`writing ${FILE_SIZE / MiB} MiB of random bytes to ${path.relative(REPO, FILE)}`);
  const partial = `${FILE}.partial`;
  const handle = await open(partial, 'w');
  try {
    const chunk = Buffer.allocUnsafe(16 * MiB);
    for (let written = 0; written < FILE_SIZE; ) {
      const n = Math.min(chunk.length, FILE_SIZE - written);
      randomFillSync(chunk, 0, n);
      await handle.write(chunk, 0, n, written);
      written += n;
    }
  } finally {
    await handle.close();
  }
  await rename(partial, FILE);
}

/** Reads the file once so every measurement serves it from the page cache. */
async function warmPageCache(): Promise<void> {
  const handle = await open(FILE, 'r');
  try {
    const buffer = Buffer.allocUnsafe(16 * MiB);
    for (let pos = 0; pos < FILE_SIZE; pos += buffer.length) await handle.read(buffer, 0, buffer.length, pos);
  } finally {
    await handle.close();
  }
}

// ---- curl ----

function ensureCurl(): string {
  const found = ['/usr/bin/curl', '/usr/local/bin/curl'].find((p) => existsSync(p));
  if (found) return found;
  if (process.getuid?.() === 0) {
    log('curl is missing: apt-get install curl');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', timeout: 180_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'curl'], {
      stdio: 'inherit',
      timeout: 180_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (existsSync('/usr/bin/curl')) return '/usr/bin/curl';
  }
  throw new Error('curl is needed as the client: apt-get install curl');
}

let CURL = '/usr/bin/curl';

interface Download {
  bytes: number;
  seconds: number;
  status: number;
}

/** One download with curl to /dev/null; resolves with curl's own byte count and time. */
function curl(url: string, maxTimeS = CURL_MAX_TIME_S): Promise<Download> {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(CURL, ['-s', '-o', '/dev/null', '--max-time', String(maxTimeS), '-w', '%{size_download} %{time_total} %{http_code}', url], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', reject);
    // 'close', not 'exit': stdout may still hold the -w line when the process has exited.
    child.once('close', (code) => {
      const [bytes, seconds, status] = out.trim().split(' ').map(Number);
      if (code !== 0 || bytes === undefined || seconds === undefined || status === undefined) {
        reject(new Error(`curl ${url}: exit ${code} ${out} ${err}`.trim()));
        return;
      }
      resolve({ bytes, seconds, status });
    });
  });
}

function checkDownload(d: Download, what: string): void {
  if (d.status !== 200 || d.bytes !== FILE_SIZE) throw new Error(`${what}: got HTTP ${d.status} and ${d.bytes} bytes, expected 200 and ${FILE_SIZE}`);
}

/** MiB/s of one client. */
async function singleClient(url: string, what: string): Promise<number> {
  deadline();
  noteLoad();
  const d = await curl(url);
  checkDownload(d, what);
  return d.bytes / MiB / d.seconds;
}

/** Aggregate MiB/s of n clients started together: all bytes over the wall time of the whole batch. */
async function concurrentClients(url: string, n: number, what: string): Promise<{ mibps: number; downloads: Download[] }> {
  deadline();
  noteLoad();
  const t0 = process.hrtime.bigint();
  const downloads = await Promise.all(Array.from({ length: n }, () => curl(url)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  downloads.forEach((d, i) => checkDownload(d, `${what} client ${i + 1}`));
  const bytes = downloads.reduce((sum, d) => sum + d.bytes, 0);
  return { mibps: bytes / MiB / seconds, downloads };
}

// ---- /proc ----

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pids: number[]): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of pids) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // gone
    }
  }
  return total;
}

// ---- bootdepot ----

interface Bootdepot {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startBootdepot(readSize?: number): Promise<Bootdepot> {
  const name = readSize === undefined ? 'bootdepot.yaml' : `bootdepot-read-${readSize}.yaml`;
  const configPath = path.join(WORK, name);
  const yaml = ['# Written by bench/run.ts', 'paths:', '  data: data', '  assets: assets', ...(readSize === undefined ? [] : ['assets:', `  readSize: ${readSize}`]), ''];
  await writeFile(configPath, yaml.join('\n'));
  const port = await freePort();
  const child = track(
    spawn(process.execPath, ['--max-semi-space-size=2', path.join(REPO, 'bin', 'bootdepot.js'), 'serve', '--config', configPath, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'], {
      cwd: WORK,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const collect = (s: string) => {
    if (output.length < 16_384) output += s;
  };
  child.stdout?.setEncoding('utf8').on('data', collect);
  child.stderr?.setEncoding('utf8').on('data', collect);
  const alive = () => child.exitCode === null && child.signalCode === null;
  try {
    await waitForPort(port, 15_000, alive);
  } catch (error) {
    await stopChild(child, { graceMs: 1000 });
    throw new Error(`bootdepot did not start (${name}): ${(error as Error).message}\n${output}`, { cause: error });
  }
  if (child.pid === undefined) throw new Error('bootdepot: no pid');
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child, { first: 'SIGTERM', graceMs: 3000 }) };
}

// ---- the measurements ----

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};

interface Results {
  single: { nginx: number[]; bootdepot: number[] };
  concurrent: { nginx: number[]; bootdepot: number[] };
  /** Server CPU seconds per GiB sent, single client. */
  cpuPerGiB: { nginx: number[]; bootdepot: number[] };
  rss?: { startedMiB: number; idleMiB: number; peakSampledMiB: number; hwmMiB: number; peakAnonMiB: number; seconds: number };
  /** Per read size: bootdepot's and nginx's single-client MiB/s, measured alternately. */
  sweep: { readSize: number; runs: number[]; nginx: number[]; error?: string }[];
}

async function measure(nginx: RunningNginx, results: Results): Promise<void> {
  const bootdepot = await startBootdepot();
  try {
    const urls = { nginx: `${nginx.url}/assets/${FILE_NAME}`, bootdepot: `${bootdepot.url}/assets/${FILE_NAME}` };
    const pids = { nginx: () => nginx.workerPids(), bootdepot: () => [bootdepot.pid] };
    // The first downloads after reading the file are slower for both servers: warm up properly.
    log('warm-up: two downloads from each');
    for (let i = 0; i < 2; i++) {
      checkDownload(await curl(urls.nginx), 'nginx warm-up');
      checkDownload(await curl(urls.bootdepot), 'bootdepot warm-up');
    }
    for (let round = 1; round <= ROUNDS; round++) {
      const order: ('nginx' | 'bootdepot')[] = round % 2 === 1 ? ['nginx', 'bootdepot'] : ['bootdepot', 'nginx'];
      for (let i = 0; i < SINGLE_PER_ROUND; i++) {
        for (const server of i % 2 === 0 ? order : [...order].reverse()) {
          const cpu0 = cpuSeconds(pids[server]());
          const mibps = await singleClient(urls[server], `${server} single`);
          const cpu = cpuSeconds(pids[server]()) - cpu0;
          results.single[server].push(mibps);
          results.cpuPerGiB[server].push(cpu / (FILE_SIZE / (1024 * MiB)));
          log(`round ${round}/${ROUNDS} ${server.padEnd(9)} 1 client:  ${mibps.toFixed(0)} MiB/s (server CPU ${cpu.toFixed(2)} s)`);
        }
      }
      for (const server of order) {
        const { mibps } = await concurrentClients(urls[server], CONCURRENT, `${server} x${CONCURRENT}`);
        results.concurrent[server].push(mibps);
        log(`round ${round}/${ROUNDS} ${server.padEnd(9)} ${CONCURRENT} clients: ${mibps.toFixed(0)} MiB/s aggregate`);
      }
    }
  } finally {
    await bootdepot.stop();
  }
}

async function measureRss(results: Results): Promise<void> {
  deadline();
  const bootdepot = await startBootdepot();
  try {
    const url = `${bootdepot.url}/assets/${FILE_NAME}`;
    const startedMiB = procStatusKiB(bootdepot.pid, 'VmRSS') / 1024;
    // One request first, so the idle figure includes the code paths a download loads.
    checkDownload(await curl(url), 'bootdepot rss warm-up');
    await new Promise((r) => setTimeout(r, 500));
    const idle = procStatusKiB(bootdepot.pid, 'VmRSS');
    let peak = idle;
    let peakAnon = procStatusKiB(bootdepot.pid, 'RssAnon');
    const sampler = setInterval(() => {
      const now = procStatusKiB(bootdepot.pid, 'VmRSS');
      if (now > peak) peak = now;
      const anon = procStatusKiB(bootdepot.pid, 'RssAnon');
      if (anon > peakAnon) peakAnon = anon;
    }, 50);
    const t0 = Date.now();
    let downloads: Download[] = [];
    try {
      downloads = await Promise.all(Array.from({ length: RSS_CLIENTS }, () => curl(url, 180)));
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - t0) / 1000;
    downloads.forEach((d, i) => checkDownload(d, `rss client ${i + 1}`));
    const hwm = procStatusKiB(bootdepot.pid, 'VmHWM');
    results.rss = { startedMiB, idleMiB: idle / 1024, peakSampledMiB: peak / 1024, hwmMiB: hwm / 1024, peakAnonMiB: peakAnon / 1024, seconds };
    log(
      `${RSS_CLIENTS} concurrent downloads in ${seconds.toFixed(1)} s: bootdepot VmRSS idle ${(idle / 1024).toFixed(0)} MiB, peak sampled ${(peak / 1024).toFixed(0)} MiB (anonymous ${(peakAnon / 1024).toFixed(0)} MiB), VmHWM ${(hwm / 1024).toFixed(0)} MiB`,
    );
  } finally {
    await bootdepot.stop();
  }
}

async function measureReadSizes(nginx: RunningNginx, results: Results): Promise<void> {
  const nginxUrl = `${nginx.url}/assets/${FILE_NAME}`;
  for (const readSize of READ_SIZES) {
    deadline();
    let bootdepot: Bootdepot;
    try {
      bootdepot = await startBootdepot(readSize);
    } catch (error) {
      const message = (error as Error).message.split('\n').slice(0, 4).join(' ');
      results.sweep.push({ readSize, runs: [], nginx: [], error: message });
      log(`readSize ${readSize}: bootdepot did not start: ${message}`);
      continue;
    }
    try {
      const url = `${bootdepot.url}/assets/${FILE_NAME}`;
      checkDownload(await curl(url), `readSize ${readSize} warm-up`);
      const runs: number[] = [];
      const nginxRuns: number[] = [];
      for (let i = 0; i < SWEEP_RUNS; i++) {
        // Alternate which goes first, as in the main rounds.
        if (i % 2 === 0) nginxRuns.push(await singleClient(nginxUrl, 'nginx (read-size step)'));
        runs.push(await singleClient(url, `readSize ${readSize}`));
        if (i % 2 === 1) nginxRuns.push(await singleClient(nginxUrl, 'nginx (read-size step)'));
      }
      results.sweep.push({ readSize, runs, nginx: nginxRuns });
      log(`readSize ${readSize / 1024} KiB: bootdepot ${runs.map((r) => r.toFixed(0)).join(', ')} MiB/s; nginx ${nginxRuns.map((r) => r.toFixed(0)).join(', ')} MiB/s`);
    } finally {
      await bootdepot.stop();
    }
  }
}

// ---- the report ----

/** The first line a command prints, on stdout or (nginx -v) stderr. */
function versionOf(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return text.split('\n')[0]?.trim() || '?';
}

function machine(nginxBinary: string): Record<string, string> {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  let commit = '?';
  try {
    commit = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 }).trim();
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8', timeout: 5000 }).trim();
    if (dirty) commit += ' + uncommitted changes in src/';
  } catch {
    // not a checkout
  }
  const nginxV = versionOf(nginxBinary, ['-v']);
  return {
    CPUs: `${os.availableParallelism()} (nproc) × ${cpuModel}`,
    Memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    Kernel: `${os.type()} ${os.release()}`,
    Node: process.version,
    nginx: nginxV.replace(/^nginx version:\s*/, ''),
    curl: versionOf(CURL, ['--version']).split(' ').slice(0, 2).join(' '),
    bootdepot: commit,
    Date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function report(results: Results, info: Record<string, string>): { table: string; markdown: string } {
  const s = { nginx: median(results.single.nginx), bootdepot: median(results.single.bootdepot) };
  const c = { nginx: median(results.concurrent.nginx), bootdepot: median(results.concurrent.bootdepot) };
  const cpu = { nginx: median(results.cpuPerGiB.nginx), bootdepot: median(results.cpuPerGiB.bootdepot) };
  // Each bootdepot figure was measured next to an nginx one (same index): the median of those
  // ratios follows drifts in the machine's speed better than the ratio of the medians.
  const paired = (r: { nginx: number[]; bootdepot: number[] }) => median(r.bootdepot.map((b, i) => b / (r.nginx[i] ?? NaN)));
  const ratioSingle = paired(results.single);
  const ratioConcurrent = paired(results.concurrent);
  const loadMax = Math.max(...loads);
  const rss = results.rss;
  const rssPeak = rss ? Math.max(rss.hwmMiB, rss.peakSampledMiB) : NaN;

  const rows: string[][] = [
    ['Measurement', 'nginx', 'bootdepot', 'bootdepot / nginx', 'target', 'result'],
    ['1 client, MiB/s (median)', f0(s.nginx), f0(s.bootdepot), `${f2(ratioSingle)} (ratio of medians ${f2(s.bootdepot / s.nginx)})`, `>= ${TARGETS.single}`, verdict(ratioSingle >= TARGETS.single)],
    [
      `${CONCURRENT} clients, aggregate MiB/s (median)`,
      f0(c.nginx),
      f0(c.bootdepot),
      `${f2(ratioConcurrent)} (ratio of medians ${f2(c.bootdepot / c.nginx)})`,
      `>= ${TARGETS.concurrent}`,
      verdict(ratioConcurrent >= TARGETS.concurrent),
    ],
    ['server CPU s per GiB, 1 client (median)', f2(cpu.nginx), f2(cpu.bootdepot), f2(cpu.bootdepot / cpu.nginx), '', ''],
    [`bootdepot peak RSS, ${RSS_CLIENTS} downloads, MiB`, '', rss ? f0(rssPeak) : '–', '', `< ${TARGETS.rssMiB}`, rss ? verdict(rssPeak < TARGETS.rssMiB) : 'not measured'],
    [`  of which anonymous (RssAnon), MiB`, '', rss ? f0(rss.peakAnonMiB) : '–', '', '', ''],
    [`  bootdepot RSS once listening, MiB`, '', rss ? f0(rss.startedMiB) : '–', '', '', ''],
  ];
  const sweepRows: string[][] = [['assets.readSize', 'bootdepot runs, MiB/s', 'bootdepot median', 'nginx runs, MiB/s', 'nginx median', 'bootdepot / nginx']];
  for (const entry of results.sweep) {
    const m = median(entry.runs);
    const n = median(entry.nginx);
    sweepRows.push([
      `${entry.readSize / 1024} KiB`,
      entry.error ? `did not start: ${entry.error}` : entry.runs.map(f0).join(', '),
      entry.error ? '–' : f0(m),
      entry.nginx.map(f0).join(', ') || '–',
      f0(n),
      entry.error ? '–' : f2(median(entry.runs.map((b, i) => b / (entry.nginx[i] ?? NaN)))),
    ]);
  }
  const markdownTable = (table: string[][]) =>
    table.map((row, i) => `| ${row.join(' | ')} |${i === 0 ? `\n|${row.map(() => '---').join('|')}|` : ''}`).join('\n');
  const plainTable = (table: string[][]) => {
    const widths = table[0]?.map((_, col) => Math.max(...table.map((row) => (row[col] ?? '').length))) ?? [];
    return table.map((row) => row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join('  ')).join('\n');
  };
  const raw = [
    `1-minute load average: ${f2(loadBefore)} before the run${loadBefore > 0.5 ? ' (other work was running: the figures may be noisy)' : ''}, ${f2(loadMax)} at most during it (the client and the server under test add about 2)`,
    `paired ratios, 1 client: ${results.single.bootdepot.map((b, i) => f2(b / (results.single.nginx[i] ?? NaN))).join(', ')}`,
    `paired ratios, ${CONCURRENT} clients: ${results.concurrent.bootdepot.map((b, i) => f2(b / (results.concurrent.nginx[i] ?? NaN))).join(', ')}`,
    `1 client, MiB/s: nginx ${results.single.nginx.map(f0).join(', ')}; bootdepot ${results.single.bootdepot.map(f0).join(', ')}`,
    `${CONCURRENT} clients, MiB/s: nginx ${results.concurrent.nginx.map(f0).join(', ')}; bootdepot ${results.concurrent.bootdepot.map(f0).join(', ')}`,
    `server CPU s/GiB: nginx ${results.cpuPerGiB.nginx.map(f2).join(', ')}; bootdepot ${results.cpuPerGiB.bootdepot.map(f2).join(', ')}`,
    rss
      ? `RSS: ${f0(rss.startedMiB)} MiB once listening, ${f0(rss.idleMiB)} MiB idle after one download; peak sampled VmRSS ${f0(rss.peakSampledMiB)} MiB (RssAnon ${f0(rss.peakAnonMiB)} MiB); VmHWM ${f0(rss.hwmMiB)} MiB; growth over idle ${f0(rssPeak - rss.idleMiB)} MiB, ${f2((rssPeak - rss.idleMiB) / RSS_CLIENTS)} MiB per download; the ${RSS_CLIENTS} downloads (${(RSS_CLIENTS * FILE_SIZE) / 1024 ** 3} GiB) took ${rss.seconds.toFixed(1)} s`
      : 'RSS: not measured',
  ];

  const table = `${plainTable(rows)}\n\n${plainTable(sweepRows)}\n\n${raw.join('\n')}`;
  const markdown = `## Assets: /assets/ against nginx

Written by \`npm run bench -- assets\` (bench/assets.ts); rerun it to refresh this section. It
compares \`GET /assets/<file>\` from bootdepot with nginx serving the same file.

### Setup

- File: ${FILE_SIZE / MiB} MiB of random bytes in \`bench/.work/\` (gitignored, kept between runs), read
  once before measuring so both servers serve it from the page cache.
- nginx: ${info.nginx}, \`sendfile on\`, \`tcp_nopush on\`, one worker (\`worker_processes 1\`, master
  process on), \`access_log off\`, from a private prefix (test/support/nginx.ts).
- bootdepot: its own process, \`node --max-semi-space-size=2 bin/bootdepot.js serve --log-level warn\` (the flag its launchers use), default config
  (\`assets.readSize\` 1 MiB) except in the read-size sweep.
- Client: \`curl -s -o /dev/null -w '%{size_download} %{time_total}'\` over 127.0.0.1; every
  download is checked for status 200 and ${FILE_SIZE} bytes.
- One client: MiB/s from curl's own time, ${SINGLE_PER_ROUND} downloads per server per round, the
  servers taking turns. ${CONCURRENT} clients: all bytes over the wall time of the batch, one batch per
  server per round. ${ROUNDS} rounds, alternating which server goes first; the figures are medians.
  The ratio is the median of the ratios of neighbouring measurements (each bootdepot figure over
  the nginx one taken next to it), which follows drifts in the machine's speed; the ratio of the
  medians is given too. The 1-minute load average is recorded: other work on the machine makes
  every figure noisy.
- Server CPU: user + system time of the nginx worker / the bootdepot process over a
  single-client download (/proc/PID/stat), per GiB sent.
- RSS: a fresh bootdepot process; one download, then ${RSS_CLIENTS} concurrent downloads of the whole
  file; VmRSS and RssAnon sampled every 50 ms and VmHWM read at the end (/proc/PID/status). The
  peak is the larger of VmRSS and VmHWM; RssAnon leaves out the file-backed pages (mostly the
  node binary's code), which the kernel can drop and which are shared with other node processes.
- Client, servers and kernel share the machine's CPUs, so with few CPUs the client's own cost
  limits the numbers for both servers.

### Machine

${Object.entries(info)
  .map(([k, v]) => `- ${k}: ${v}`)
  .join('\n')}

### Results

On a small shared machine single figures vary a lot from one download to the next (see the raw
figures); the paired ratios are steadier than the absolute numbers. Rerun with more rounds to
tighten them.

${markdownTable(rows)}

Read size (\`assets.readSize\`), one client, one bootdepot process per size, ${SWEEP_RUNS} downloads each
after a warm-up, taking turns with ${SWEEP_RUNS} nginx downloads (the ratio is the median of the paired ratios):

${markdownTable(sweepRows)}

Raw figures:

${raw.map((line) => `- ${line}`).join('\n')}

### Targets

- One client: at least ${TARGETS.single} of nginx's throughput.
- ${CONCURRENT} concurrent clients: at least ${TARGETS.concurrent} of nginx's aggregate throughput.
- Peak RSS of bootdepot while ${RSS_CLIENTS} downloads run: under ${TARGETS.rssMiB} MiB.

### Reproduce

\`\`\`sh
npm run bench -- assets             # about 2-5 minutes; needs nginx and curl (apt-get install nginx curl)
BENCH_ROUNDS=9 npm run bench -- assets   # more rounds, steadier medians
\`\`\`

Knobs: \`BENCH_ROUNDS\` (default 5), \`BENCH_FILE_MIB\` (default 1024; a different size writes a new
file), \`BENCH_TIME_LIMIT_S\` (default 420: the run is stopped, everything killed, after that).
The run prints progress on stderr and the tables on stdout, and rewrites this section.
`;
  return { table, markdown };
}

// ---- main ----

/** Runs the asset benchmark; returns its section of docs/benchmarks.md. */
export async function assetsBenchmark(): Promise<string> {
  const nginxBinary = findNginx();
  if (!nginxBinary) throw new Error('nginx is needed for the comparison: apt-get install nginx (or set BOOTDEPOT_NGINX)');
  CURL = ensureCurl();
  const watchdog = setTimeout(() => {
    log(`time limit of ${TIME_LIMIT_MS / 1000} s + 60 s grace exceeded: killing everything`);
    for (const child of children) child.kill('SIGKILL');
    process.exit(1);
  }, TIME_LIMIT_MS + 60_000);
  let nginx: RunningNginx | undefined;
  try {
    await ensureFile();
    log('reading the file once (page cache)');
    await warmPageCache();
    nginx = await startNginx({ root: ASSETS, sendfile: true, workers: 1, masterProcess: true });
    log(`nginx on ${nginx.url} (workers ${nginx.workerPids().join(', ')})`);
    const results: Results = {
      single: { nginx: [], bootdepot: [] },
      concurrent: { nginx: [], bootdepot: [] },
      cpuPerGiB: { nginx: [], bootdepot: [] },
      sweep: [],
    };
    await measure(nginx, results);
    await measureReadSizes(nginx, results);
    await nginx.stop();
    nginx = undefined;
    await measureRss(results);
    const { table, markdown } = report(results, machine(nginxBinary));
    process.stdout.write(`\n${table}\n`);
    log(`assets benchmark done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return markdown;
  } finally {
    clearTimeout(watchdog);
    await nginx?.stop();
    for (const child of children) await stopChild(child, { graceMs: 1000, alsoKill: () => (child.pid ? childPids(child.pid) : []) });
    await rm(`${FILE}.partial`, { force: true });
  }
}

