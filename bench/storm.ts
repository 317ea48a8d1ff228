/**
 * The boot-storm benchmark (`npm run bench -- storm`): a rack powered on at once. N simulated
 * machines (BENCH_STORM_MACHINES, default 300) arrive over BENCH_STORM_SPREAD_S seconds (default
 * 3) and each does what iPXE does (bench/storm-machines.ts): bootstrap script, own script,
 * kernel (8 MiB) and initrd (48 MiB), beacon, a report from the booted OS. Three runs, one after
 * the other on the same machine:
 *   - nginx (one worker, sendfile) serving the same files and static scripts: the reference;
 *   - bootdepot with the files warm in /assets;
 *   - bootdepot with the files behind a cold mirror whose upstream is one link paced to
 *     BENCH_STORM_UPSTREAM_MIBPS (default 100 MiB/s, shared by all its connections).
 * Reported per run: time until every machine has booted, time to first byte of scripts and
 * images (p50/p99, and the longest wait for a machine's first image byte), upstream bytes,
 * peak RSS and CPU of the server, errors; and the ratios to nginx and to the wire's limit (all
 * image bytes over the loopback bandwidth nginx reaches with 8 parallel downloads).
 *
 * Bounded: machines are capped at 2,000, every request times out after 60 s, and a run is
 * stopped after 180 s. Loopback only. Every process started is stopped at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, findNginx, startNginx, stopChild, type RunningNginx } from '../test/support/nginx.ts';
import { freePort, waitForPort } from '../test/support/net.ts';
import { startPacedUpstream, type PacedUpstream } from './paced-upstream.ts';
import type { MachineResult, Plan, ProbeResult } from './storm-machines.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(REPO, 'bench', '.work');
const MiB = 1024 * 1024;
const MACHINES = Math.min(2000, Math.max(1, Number(process.env.BENCH_STORM_MACHINES ?? 300)));
const SPREAD_MS = Number(process.env.BENCH_STORM_SPREAD_S ?? 3) * 1000;
const UPSTREAM_MIBPS = Number(process.env.BENCH_STORM_UPSTREAM_MIBPS ?? 100);
const KERNEL_BYTES = 8 * MiB;
const INITRD_BYTES = 48 * MiB;
const CLIENT_PROCESSES = 2;
const REQUEST_TIMEOUT_MS = 60_000;
const RUN_LIMIT_MS = 180_000;
const TARGETS = { warmRatio: 1.25, coldRatio: 1.25, firstImageByteMs: 1000, scriptP99Ms: 50, listeningRssMiB: 100, peakRssMiB: 130 };
const CLOCK_TICKS = 100;
/** The throttled-link runs: machines, the link's speed, and the admission limit to compare. */
const THROTTLED_MACHINES = 100;
const LINK_MIBPS = Number(process.env.BENCH_STORM_LINK_MIBPS ?? 400);
const ADMIT = Number(process.env.BENCH_STORM_ADMIT ?? 8);
/** The script probe asks every 25 ms from the first arrival until 10 s after the last. */
const PROBE_INTERVAL_MS = 25;
const PROBE_AFTER_SPREAD_MS = 10_000;
/** Extra node flags for bootdepot, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a storm. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

const log = (message: string) => process.stderr.write(`[bench storm] ${message}\n`);

async function ensureFile(file: string, size: number, seed: number): Promise<void> {
  const existing = await stat(file).catch(() => undefined);
  if (existing?.size === size) return;
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB);
    for (let written = 0; written < size; written += MiB) {
      for (let i = 0; i < MiB; i += 4) chunk.writeUInt32LE(((written + i) ^ seed) >>> 0, i);
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Connections the kernel has completed and the server has not accepted yet, on the listening
 * socket of this port (/proc/net/tcp's rx_queue for a socket in LISTEN).
 */
async function acceptQueue(port: number): Promise<number> {
  let deepest = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state, queues] = line.trim().split(/\s+/);
      if (state !== '0A' || Number.parseInt(local?.split(':')[1] ?? '', 16) !== port) continue;
      deepest = Math.max(deepest, Number.parseInt(queues?.split(':')[1] ?? '0', 16));
    }
  }
  return deepest;
}

/** Samples RSS and CPU time of a set of processes, and the server's accept queue, every 100 ms from /proc. */
class Sampler {
  peakRssKiB = 0;
  deepestAcceptQueue = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly pids: () => number[];
  private port = 0;
  constructor(pids: () => number[]) {
    this.pids = pids;
  }

  /** Also samples the accept queue of the server listening on this port. */
  watchPort(port: number): void {
    this.port = port;
  }

  static async rssKiB(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  static async cpuTicks(pid: number): Promise<number> {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }

  async rssMiB(): Promise<number> {
    let total = 0;
    for (const pid of this.pids()) total += await Sampler.rssKiB(pid);
    return total / 1024;
  }

  async cpuSeconds(): Promise<number> {
    let total = 0;
    for (const pid of this.pids()) total += await Sampler.cpuTicks(pid);
    return total / CLOCK_TICKS;
  }

  start(): void {
    const tick = async () => {
      let total = 0;
      for (const pid of this.pids()) total += await Sampler.rssKiB(pid);
      this.peakRssKiB = Math.max(this.peakRssKiB, total);
      if (this.port > 0) this.deepestAcceptQueue = Math.max(this.deepestAcceptQueue, await acceptQueue(this.port));
      this.timer = setTimeout(() => void tick(), 100);
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

type Upstream = PacedUpstream;

/** A release server behind one link: every connection shares UPSTREAM_MIBPS. */
function startUpstream(files: Record<string, string>): Promise<Upstream> {
  return startPacedUpstream({ fileFor: (urlPath) => files[urlPath.replace(/^\/+/, '')], bytesPerSecond: UPSTREAM_MIBPS * MiB, link: 'shared' });
}

interface StormRun {
  name: string;
  machines: MachineResult[];
  bootedMs: number;
  scriptTtfb: { p50: number; p99: number; max: number };
  /** Scripts asked by an idle probe process during the storm: the server's own latency. */
  probeTtfb: { p50: number; p99: number; max: number; count: number };
  imageTtfb: { p50: number; p99: number };
  /** Half the machines took at most this long from power-on to booted. */
  bootP50Ms: number;
  /** The longest any machine waited for the first byte of its first image. */
  firstImageByteMaxMs: number;
  errors: string[];
  listeningRssMiB: number;
  peakRssMiB: number;
  /** The most connections waiting to be accepted at once (sampled every 100 ms). */
  deepestAcceptQueue: number;
  cpuSeconds: number;
  imageBytes: number;
  upstreamBytes?: number;
  upstreamRequests?: number;
}

/** The kernel's count of connections dropped because a listen queue was full (/proc/net/netstat). */
async function listenOverflows(): Promise<number> {
  const text = await readFile('/proc/net/netstat', 'utf8').catch(() => '');
  const [names, values] = text.split('\n').filter((line) => line.startsWith('TcpExt:'));
  const index = names?.split(' ').indexOf('ListenOverflows') ?? -1;
  return index > 0 ? Number(values?.split(' ')[index] ?? 0) : 0;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};

/** Arrival offsets spread evenly over the spread, with a fixed jitter so they are not a metronome. */
function arrivals(count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.round((i / count) * SPREAD_MS + ((i * 7919) % 97)));
}

function runClient(plan: Plan): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-semi-space-size=16', path.join(REPO, 'bench', 'storm-machines.ts'), JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out.split('\n').filter(Boolean));
    });
  });
}

const stats = (values: number[]) => ({ p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) });

interface StormShape {
  machines: number;
  /** A link all machines sit behind, bytes/s (0: loopback speed). */
  linkBytesPerSecond: number;
}

const FULL_STORM: StormShape = { machines: MACHINES, linkBytesPerSecond: 0 };

async function storm(name: string, entry: string, probeUrl: string, report: boolean, sampler: Sampler, upstream?: Upstream, shape: StormShape = FULL_STORM): Promise<StormRun> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const listeningRssMiB = await sampler.rssMiB();
  const cpuBefore = await sampler.cpuSeconds();
  const upstreamBefore = upstream?.bytes() ?? 0;
  const upstreamRequestsBefore = upstream?.requests() ?? 0;
  const overflowsBefore = await listenOverflows();
  const offsets = arrivals(shape.machines);
  const start = Date.now() + 1000;
  sampler.watchPort(Number(new URL(entry).port));
  sampler.start();
  const probing = runClient({ entry, start, report: false, requestTimeoutMs: REQUEST_TIMEOUT_MS, machines: [], probe: { url: probeUrl, intervalMs: PROBE_INTERVAL_MS, durationMs: SPREAD_MS + PROBE_AFTER_SPREAD_MS } });
  const parts = await Promise.all(
    Array.from({ length: CLIENT_PROCESSES }, (_, part) =>
      runClient({
        entry,
        start,
        report,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        linkBytesPerSecond: shape.linkBytesPerSecond / CLIENT_PROCESSES,
        machines: offsets.map((arrivalMs, index) => ({ index, arrivalMs })).filter(({ index }) => index % CLIENT_PROCESSES === part),
      }),
    ),
  );
  sampler.stop();
  const probe = JSON.parse((await probing)[0] ?? '{"scriptTtfbMs":[],"errors":["no probe result"]}') as ProbeResult;
  const machines = parts.flat().map((line) => JSON.parse(line) as MachineResult);
  const cpuSeconds = (await sampler.cpuSeconds()) - cpuBefore;
  const overflows = (await listenOverflows()) - overflowsBefore;
  const errors = [...(overflows > 0 ? [`${overflows} connections dropped by a full listen queue (the client retried after 1-3 s)`] : []), ...machines.filter((m) => m.error).map((m) => `machine ${m.index}: ${m.error}`), ...probe.errors.map((e) => `probe: ${e}`)];
  if (machines.length < shape.machines) errors.push(`${shape.machines - machines.length} machines did not finish within ${RUN_LIMIT_MS / 1000} s`);
  const scripts = machines.flatMap((m) => m.scriptTtfbMs);
  const images = machines.flatMap((m) => m.imageTtfbMs);
  const run: StormRun = {
    name,
    machines,
    bootedMs: Math.max(...machines.map((m) => m.doneMs)) - Math.min(...machines.map((m) => m.askedMs)),
    scriptTtfb: stats(scripts),
    probeTtfb: { ...stats(probe.scriptTtfbMs), count: probe.scriptTtfbMs.length },
    imageTtfb: { p50: percentile(images, 50), p99: percentile(images, 99) },
    bootP50Ms: percentile(machines.map((m) => m.doneMs - m.askedMs), 50),
    firstImageByteMaxMs: Math.max(...machines.map((m) => m.imageTtfbMs[0] ?? Infinity)),
    errors,
    listeningRssMiB,
    peakRssMiB: sampler.peakRssKiB / 1024,
    deepestAcceptQueue: sampler.deepestAcceptQueue,
    cpuSeconds,
    imageBytes: machines.reduce((sum, m) => sum + m.imageBytes, 0),
    ...(upstream ? { upstreamBytes: upstream.bytes() - upstreamBefore, upstreamRequests: upstream.requests() - upstreamRequestsBefore } : {}),
  };
  log(
    `${name}: all ${machines.length} booted in ${(run.bootedMs / 1000).toFixed(2)} s (each in p50 ${(run.bootP50Ms / 1000).toFixed(2)} s); scripts TTFB p50 ${run.scriptTtfb.p50.toFixed(1)} p99 ${run.scriptTtfb.p99.toFixed(1)} ms (probe p50 ${run.probeTtfb.p50.toFixed(1)} p99 ${run.probeTtfb.p99.toFixed(1)} ms); ` +
      `images TTFB p50 ${run.imageTtfb.p50.toFixed(1)} p99 ${run.imageTtfb.p99.toFixed(1)} ms (first byte max ${run.firstImageByteMaxMs.toFixed(0)} ms); ` +
      `accept queue up to ${run.deepestAcceptQueue}; RSS ${listeningRssMiB.toFixed(0)} -> ${run.peakRssMiB.toFixed(0)} MiB; CPU ${cpuSeconds.toFixed(1)} s; errors ${errors.length}` +
      (upstream ? `; upstream ${((run.upstreamBytes ?? 0) / MiB).toFixed(1)} MiB in ${run.upstreamRequests} requests` : ''),
  );
  for (const error of errors.slice(0, 5)) log(`  ${error}`);
  return run;
}

/** 8 parallel downloads of the initrd from nginx: the loopback bandwidth the wire's limit is measured by. */
async function wireBandwidth(url: string): Promise<number> {
  const started = performance.now();
  const sizes = await Promise.all(
    Array.from(
      { length: 8 },
      () =>
        new Promise<number>((resolve, reject) => {
          const child = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '60', '-w', '%{size_download}', url]);
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('error', reject);
          child.on('close', () => resolve(Number(out.trim())));
        }),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0) / ((performance.now() - started) / 1000);
}

async function startBootdepot(dir: string, extra: string[]): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = ['--max-semi-space-size=2', ...NODE_FLAGS, path.join(REPO, 'bin', 'bootdepot.js'), 'serve', '--data-dir', path.join(dir, 'data'), '--assets-dir', path.join(dir, 'assets'), '--cache-dir', path.join(dir, 'cache'), '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BOOTDEPOT_CONFIG: path.join(dir, 'bootdepot.yaml') } });
  await waitForPort(port, 20_000, () => child.exitCode === null);
  return { url: `http://127.0.0.1:${port}`, child };
}

async function bootdepotDir(kernel: string, initrd: string, profile: 'assets' | 'mirror', extraYaml = ''): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-bench-storm-'));
  for (const sub of ['data/profiles', 'data/groups', 'assets/linuxkit', 'cache']) await mkdir(path.join(dir, sub), { recursive: true });
  // The built-in defaults (limits included): what an operator gets without tuning.
  // BENCH_STORM_YAML: more config for every bootdepot run, to compare settings (e.g. state.enabled: false).
  await writeFile(path.join(dir, 'bootdepot.yaml'), `log:\n  level: warn\n${extraYaml}${process.env.BENCH_STORM_YAML ?? ''}`);
  await writeFile(path.join(dir, 'data/groups/all.yaml'), 'name: the rack\nprofile: storm\n');
  if (profile === 'assets') {
    await writeFile(path.join(dir, 'data/profiles/storm.yaml'), 'linuxkit:\n  name: storm\n');
    await copyFile(kernel, path.join(dir, 'assets/linuxkit/storm-kernel'));
    await copyFile(initrd, path.join(dir, 'assets/linuxkit/storm-initrd.img'));
    await writeFile(path.join(dir, 'assets/linuxkit/storm-cmdline'), 'console=ttyS0\n');
  } else {
    await writeFile(path.join(dir, 'data/profiles/storm.json'), JSON.stringify({ id: 'storm', boot: { kernel: '/mirror/up/storm-kernel', initrd: ['/mirror/up/storm-initrd.img'], args: ['console=ttyS0'] } }));
  }
  return dir;
}

async function stopBootdepot(child: ChildProcess | undefined): Promise<void> {
  if (child && child.exitCode === null) await stopChild(child, { first: 'SIGTERM', graceMs: 5000 });
}

/** Runs the storm benchmark; returns its section of docs/benchmarks.md. */
export async function stormBenchmark(): Promise<string> {
  if (!findNginx()) throw new Error('nginx is needed for the reference run: apt-get install nginx');
  await mkdir(WORK, { recursive: true });
  const kernel = path.join(WORK, 'storm-kernel');
  const initrd = path.join(WORK, 'storm-initrd.img');
  await ensureFile(kernel, KERNEL_BYTES, 0x2545f491);
  await ensureFile(initrd, INITRD_BYTES, 0x9e3779b9);
  log(`${MACHINES} machines over ${SPREAD_MS / 1000} s; kernel ${KERNEL_BYTES / MiB} MiB, initrd ${INITRD_BYTES / MiB} MiB`);

  const runs: StormRun[] = [];
  let wire: number;
  let directCopyMs = 0;
  const loadBefore = os.loadavg()[0] ?? 0;

  // nginx: the same files and the same script sequence, as static files.
  const nginxRoot = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-bench-storm-nginx-'));
  let nginx: RunningNginx | undefined;
  try {
    await copyFile(kernel, path.join(nginxRoot, 'storm-kernel'));
    await copyFile(initrd, path.join(nginxRoot, 'storm-initrd.img'));
    nginx = await startNginx({ root: nginxRoot, workers: 1, masterProcess: true });
    const base = `${nginx.url}/assets`;
    await writeFile(path.join(nginxRoot, 'boot.ipxe'), `#!ipxe\nchain ${base}/ipxe?mac=\${mac:hexhyp}&arch=\${buildarch:uristring}\n`);
    await writeFile(path.join(nginxRoot, 'ipxe'), `#!ipxe\nset base-url ${base}\nkernel \${base-url}/storm-kernel console=ttyS0\ninitrd \${base-url}/storm-initrd.img\nimgfetch --name beacon ${base}/boot.ipxe\nboot\n`);
    wire = await wireBandwidth(`${base}/storm-initrd.img`);
    log(`wire: nginx reaches ${(wire / MiB).toFixed(0)} MiB/s with 8 parallel downloads`);
    const running = nginx;
    runs.push(await storm('nginx (static, sendfile)', `${base}/boot.ipxe`, `${base}/ipxe?mac=MAC`, false, new Sampler(() => [running.pid, ...running.workerPids()])));
  } finally {
    await nginx?.stop();
    await rm(nginxRoot, { recursive: true, force: true });
  }

  for (const kind of ['assets', 'mirror'] as const) {
    const dir = await bootdepotDir(kernel, initrd, kind);
    const upstream = kind === 'mirror' ? await startUpstream({ 'storm-kernel': kernel, 'storm-initrd.img': initrd }) : undefined;
    let child: ChildProcess | undefined;
    try {
      if (upstream) {
        const started = performance.now();
        for (const name of ['storm-kernel', 'storm-initrd.img']) {
          await new Promise<void>((resolve, reject) => {
            http.get(`${upstream.url}/${name}`, (res) => res.resume().on('end', resolve).on('error', reject)).on('error', reject);
          });
        }
        directCopyMs = performance.now() - started;
        log(`one copy straight from the upstream (${UPSTREAM_MIBPS} MiB/s link): ${(directCopyMs / 1000).toFixed(2)} s`);
      }
      const started = await startBootdepot(dir, upstream ? ['--mirror', `up=${upstream.url}`] : []);
      child = started.child;
      const pid = child.pid ?? 0;
      runs.push(await storm(kind === 'assets' ? 'bootdepot, warm /assets' : `bootdepot, cold mirror (${UPSTREAM_MIBPS} MiB/s upstream)`, `${started.url}/boot.ipxe`, `${started.url}/ipxe?mac=MAC&platform=pcbios&arch=x86_64`, true, new Sampler(() => [pid, ...childPids(pid)]), upstream));
    } finally {
      await stopBootdepot(child);
      await upstream?.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  // A link that cannot carry the whole rack at once, without and with admission control.
  const throttled: StormRun[] = [];
  const shape: StormShape = { machines: Math.min(MACHINES, THROTTLED_MACHINES), linkBytesPerSecond: LINK_MIBPS * MiB };
  for (const admit of [0, ADMIT]) {
    const dir = await bootdepotDir(kernel, initrd, 'assets', admit > 0 ? `assets:\n  maxActiveDownloads: ${admit}\n` : '');
    let child: ChildProcess | undefined;
    try {
      const started = await startBootdepot(dir, []);
      child = started.child;
      const pid = child.pid ?? 0;
      const name = admit > 0 ? `${LINK_MIBPS} MiB/s link, assets.maxActiveDownloads ${admit}` : `${LINK_MIBPS} MiB/s link, no admission limit`;
      throttled.push(await storm(name, `${started.url}/boot.ipxe`, `${started.url}/ipxe?mac=MAC&platform=pcbios&arch=x86_64`, true, new Sampler(() => [pid, ...childPids(pid)]), undefined, shape));
    } finally {
      await stopBootdepot(child);
      await rm(dir, { recursive: true, force: true });
    }
  }
  return report(runs, wire, directCopyMs, loadBefore) + throttledReport(throttled, shape);
}

function throttledReport(runs: StormRun[], shape: StormShape): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const [open, admitted] = runs as [StormRun, StormRun];
  return `
### Boot storm on a throttled link: admission control

${shape.machines} machines behind one link of ${LINK_MIBPS} MiB/s (the clients read no faster, together), the files warm
in /assets, without a limit and with \`assets.maxActiveDownloads: ${ADMIT}\` (the rest wait with their headers sent).

| Run | all booted s | each machine p50 s | first image byte, max ms | probe script TTFB p99 ms | errors |
| --- | --- | --- | --- | --- | --- |
${runs.map((r) => `| ${r.name} | ${s(r.bootedMs)} | ${s(r.bootP50Ms)} | ${r.firstImageByteMaxMs.toFixed(0)} | ${r.probeTtfb.p99.toFixed(1)} | ${r.errors.length} |`).join('\n')}

With the limit, half the machines were booted after ${s(admitted.bootP50Ms)} s instead of ${s(open.bootP50Ms)} s; the last after
${s(admitted.bootedMs)} s instead of ${s(open.bootedMs)} s. Reproduce: \`BENCH_STORM_LINK_MIBPS\`, \`BENCH_STORM_ADMIT\`.
`;
}

function report(runs: StormRun[], wire: number, directCopyMs: number, loadBefore: number): string {
  const [reference, warm, cold] = runs as [StormRun, StormRun, StormRun];
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const f = (n: number) => n.toFixed(1);
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const wireMs = (reference.imageBytes / wire) * 1000;
  const warmRatio = warm.bootedMs / reference.bootedMs;
  const coldBound = directCopyMs + warm.bootedMs;
  const coldRatio = cold.bootedMs / coldBound;
  const oneCopy = KERNEL_BYTES + INITRD_BYTES;
  const ours = [warm, cold];
  const row = (r: StormRun) =>
    `| ${r.name} | ${s(r.bootedMs)} | ${(r.bootedMs / reference.bootedMs).toFixed(2)} | ${(r.bootedMs / wireMs).toFixed(2)} | ${f(r.probeTtfb.p50)} / ${f(r.probeTtfb.p99)} | ${f(r.scriptTtfb.p50)} / ${f(r.scriptTtfb.p99)} | ${f(r.imageTtfb.p50)} / ${f(r.imageTtfb.p99)} | ${r.firstImageByteMaxMs.toFixed(0)} | ${r.upstreamBytes === undefined ? '-' : `${(r.upstreamBytes / MiB).toFixed(1)} MiB (${r.upstreamRequests})`} | ${r.deepestAcceptQueue} | ${r.listeningRssMiB.toFixed(0)} / ${r.peakRssMiB.toFixed(0)} | ${r.cpuSeconds.toFixed(1)} | ${r.errors.length} |`;
  return `## Boot storm

Written by \`npm run bench -- storm\` (bench/storm.ts). ${MACHINES} simulated machines power on over
${SPREAD_MS / 1000} s; each fetches the bootstrap script, its own script, an ${KERNEL_BYTES / MiB} MiB kernel and a
${INITRD_BYTES / MiB} MiB initrd (one after the other, one keep-alive connection, as iPXE does), the
beacon, and posts a report (bootdepot runs). The clients run in ${CLIENT_PROCESSES} separate processes, which
are busy receiving, so the machines' own script times include their client's delay; a third,
idle process asks for a script every ${PROBE_INTERVAL_MS} ms on a new connection during the storm (the probe),
which measures the server.
nginx (one worker, sendfile) serves the same files and static scripts in the same sequence.
The cold run's upstream is one link paced to ${UPSTREAM_MIBPS} MiB/s shared by all its connections;
one copy of both files straight from it took ${s(directCopyMs)} s. The wire's limit: all image bytes
(${(reference.imageBytes / MiB / 1024).toFixed(1)} GiB) at the ${(wire / MiB).toFixed(0)} MiB/s nginx reaches with 8 parallel downloads
= ${s(wireMs)} s. ${os.cpus().length} CPUs shared by servers and clients; load average before: ${loadBefore.toFixed(2)}.

| Run | all booted s | x nginx | x wire | probe script TTFB p50 / p99 ms | machines' script TTFB p50 / p99 ms | image TTFB p50 / p99 ms | first image byte, max ms | upstream | accept queue, max | RSS listening / peak MiB | CPU s | errors |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${runs.map(row).join('\n')}

Targets:
- warm storm within ${TARGETS.warmRatio}x of nginx: ${warmRatio.toFixed(2)}x, ${met(warmRatio <= TARGETS.warmRatio)};
- cold storm within ${TARGETS.coldRatio}x of one upstream copy + the warm storm (${s(coldBound)} s): ${coldRatio.toFixed(2)}x, ${met(coldRatio <= TARGETS.coldRatio)};
  one upstream copy (${(oneCopy / MiB).toFixed(0)} MiB): ${((cold.upstreamBytes ?? 0) / MiB).toFixed(1)} MiB fetched, ${met(cold.upstreamBytes === oneCopy)};
  no first image byte later than ${TARGETS.firstImageByteMs} ms: ${cold.firstImageByteMaxMs.toFixed(0)} ms, ${met(cold.firstImageByteMaxMs <= TARGETS.firstImageByteMs)};
- scripts during the storm p99 under ${TARGETS.scriptP99Ms} ms (the probe's): ${ours.map((r) => `${f(r.probeTtfb.p99)} ms`).join(', ')}, ${met(ours.every((r) => r.probeTtfb.p99 < TARGETS.scriptP99Ms))};
- RSS under ${TARGETS.listeningRssMiB} MiB listening and ${TARGETS.peakRssMiB} MiB at the peak: ${ours.map((r) => `${r.listeningRssMiB.toFixed(0)} / ${r.peakRssMiB.toFixed(0)}`).join(', ')} MiB, ${met(ours.every((r) => r.listeningRssMiB < TARGETS.listeningRssMiB && r.peakRssMiB < TARGETS.peakRssMiB))};
- no errors: ${met(runs.every((r) => r.errors.length === 0))}${runs.some((r) => r.errors.length > 0) ? ` (first: ${runs.flatMap((r) => r.errors)[0]})` : ''}.

Reproduce: \`npm run bench -- storm\` (needs nginx and curl). \`BENCH_STORM_MACHINES\`,
\`BENCH_STORM_SPREAD_S\` and \`BENCH_STORM_UPSTREAM_MIBPS\` change the rack, its arrival and the link.
`;
}
