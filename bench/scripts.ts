/**
 * The script benchmark (`npm run bench -- scripts`), recording off, on SQLite and on
 * PostgreSQL, with wrk (Debian's package) as the load generator; every request is a different
 * device (5,000 MACs in turn), so every answer reads and writes device state:
 *   - throughput: scripts per second with 64 connections asking back to back;
 *   - latency: 1,000 simulated devices, each on its own connection asking every 0-1000 ms
 *     (about 2,000 scripts/s offered: a large boot storm), p50 and p99.
 * A closed loop of 1,000 connections asking back to back would only measure queueing (latency
 * = connections / throughput), so the latency run paces each device the way machines behave.
 *
 * Bounded: each measurement runs BENCH_SCRIPT_SECONDS (default 10 s) after a 3 s warm-up;
 * every process started is stopped at the end, also on failure. Loopback only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from '../test/support/net.ts';
import { findPostgresBin, startPostgres, type PostgresCluster } from '../test/support/postgres.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SCRIPT_SECONDS ?? 10);
const DEVICES_AT_ONCE = 1000;
const THROUGHPUT_CONNECTIONS = 64;
const DEVICES = 5000;
const TARGETS = { scriptsPerSecond: 5000, p99Ms: 20 };

const log = (message: string) => process.stderr.write(`[bench scripts] ${message}\n`);

const LUA = `
-- One device per request, ${DEVICES} in turn, as iPXE's bootstrap would send them.
local counter = 0
request = function()
  counter = counter + 1
  local n = counter % ${DEVICES}
  local mac = string.format("52:54:00:%02x:%02x:%02x", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "/ipxe?mac=" .. mac .. "&platform=pcbios&arch=x86_64")
end
`;

/**
 * The same, with each connection (a device) pausing 0-1000 ms (500 on average) before each
 * request. wrk applies the delay before the first request too, so the 1,000 devices do not all
 * arrive in the same instant, which would measure a start-up queue rather than the service.
 */
const PACED_LUA = `${LUA}
delay = function()
  return math.random(0, 1000)
end
`;


interface Measurement {
  mode: string;
  scriptsPerSecond: number;
  /** Latency run: what 1,000 paced devices got. */
  pacedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: string;
}

/** wrk prints latencies as 1.23ms / 456.78us / 1.2s. */
function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return NaN;
  const value = Number(m[1]);
  return m[2] === 'us' ? value / 1000 : m[2] === 's' ? value * 1000 : value;
}

function runWrk(url: string, script: string, seconds: number, connections: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `ulimit -n 65536; exec wrk -t2 -c${connections} -d${seconds}s --timeout 10s --latency -s ${script} ${url}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

async function startBootdepot(dir: string, yaml: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const config = path.join(dir, 'bootdepot.yaml');
  await writeFile(config, yaml);
  const port = await freePort();
  const command = `ulimit -n 65536; exec "${process.execPath}" --max-semi-space-size=2 "${path.join(REPO, 'bin/bootdepot.js')}" serve --config "${config}" --host 127.0.0.1 --port ${port} --log-level warn`;
  const child = spawn('sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await waitForPort(port, 20_000, () => child.exitCode === null);
  } catch (error) {
    throw new Error(`bootdepot did not start: ${(error as Error).message}\n${output}`, { cause: error });
  }
  return { url: `http://127.0.0.1:${port}`, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function parseWrk(out: string) {
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: [/Socket errors: (.*)/.exec(out)?.[1], /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[0]].filter(Boolean).join('; '),
  };
}

async function measure(mode: string, dir: string, stateYaml: string[], env: Record<string, string>): Promise<Measurement> {
  // The benchmark's one client address would hit the per-client rate limit: it measures the server, not the limiter.
  const yaml = ['paths:', '  data: data', '  assets: assets', 'limits:', '  allowList: [127.0.0.0/8]', 'state:', ...stateYaml, ''].join('\n');
  const { url, child } = await startBootdepot(dir, yaml, env);
  const lua = path.join(dir, 'bench.lua');
  const paced = path.join(dir, 'paced.lua');
  try {
    log(`${mode}: warm-up`);
    await runWrk(url, lua, 3, THROUGHPUT_CONNECTIONS);
    log(`${mode}: throughput, ${SECONDS} s with ${THROUGHPUT_CONNECTIONS} connections`);
    const fast = parseWrk(await runWrk(url, lua, SECONDS, THROUGHPUT_CONNECTIONS));
    log(`${mode}: latency, ${SECONDS} s with ${DEVICES_AT_ONCE} paced devices`);
    const slow = parseWrk(await runWrk(url, paced, SECONDS, DEVICES_AT_ONCE));
    const errors = [fast.errors, slow.errors].filter(Boolean).join('; ') || 'none';
    log(`${mode}: ${fast.rps.toFixed(0)} scripts/s; paced ${slow.rps.toFixed(0)}/s p50 ${slow.p50} ms p99 ${slow.p99} ms; errors: ${errors}`);
    // Error answers are fast: a run that got them measured something else (the rate limiter, a broken config).
    if (/Non-2xx/.test(errors)) throw new Error(`${mode}: the server answered errors (${errors}); the figures would not be scripts`);
    return { mode, scriptsPerSecond: fast.rps, pacedPerSecond: slow.rps, p50Ms: slow.p50, p99Ms: slow.p99, errors };
  } finally {
    await stop(child);
  }
}

/** Runs the script benchmark; returns its section of docs/benchmarks.md. */
export async function scriptsBenchmark(): Promise<string> {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk --version exits 1 but prints; only a missing binary throws ENOENT.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('wrk is needed for the script benchmark: apt-get install wrk', { cause: error });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-bench-scripts-'));
  let cluster: PostgresCluster | undefined;
  try {
    await writeFile(path.join(dir, 'bench.lua'), LUA);
    await writeFile(path.join(dir, 'paced.lua'), PACED_LUA);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'data', 'profiles'), { recursive: true });
    await mkdir(path.join(dir, 'data', 'groups'), { recursive: true });
    await mkdir(path.join(dir, 'assets', 'linuxkit'), { recursive: true });
    await writeFile(path.join(dir, 'data', 'profiles', 'lk.yaml'), 'linuxkit: {name: demo}\n');
    await writeFile(path.join(dir, 'data', 'groups', 'default.yaml'), 'profile: lk\n');
    for (const file of ['demo-kernel', 'demo-initrd.img', 'demo-cmdline']) await writeFile(path.join(dir, 'assets', 'linuxkit', file), 'x');
    const results: Measurement[] = [];
    results.push(await measure('recording off', dir, ['  enabled: false'], {}));
    results.push(await measure('SQLite', dir, ['  enabled: true', `  sqlitePath: ${path.join(dir, 'state.db')}`], {}));
    const bin = findPostgresBin();
    if (bin) {
      cluster = await startPostgres(bin);
      const url = await cluster.createDatabase('bench');
      results.push(await measure('PostgreSQL', dir, ['  enabled: true'], { BOOTDEPOT_DATABASE_URL: url }));
    } else {
      log('PostgreSQL not installed: skipped (apt-get install postgresql)');
    }
    return report(results);
  } finally {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function report(results: Measurement[]): string {
  const sqlite = results.find((r) => r.mode === 'SQLite');
  const rows = results.map((r) => `| ${r.mode} | ${r.scriptsPerSecond.toFixed(0)} | ${r.pacedPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.errors} |`);
  const met = (ok: boolean | undefined) => (ok ? 'met' : '**not met**');
  return `## Scripts: /ipxe with boot state

Written by \`npm run bench -- scripts\` (bench/scripts.ts). Every request is a different device
(${DEVICES} MACs in turn), each answer a LinuxKit boot script; with recording on, every answer
reads the device's next boot and records the script event with its boot plan (group commit).

- Throughput: wrk, ${THROUGHPUT_CONNECTIONS} connections asking back to back, ${SECONDS} s after a 3 s warm-up.
- Latency: wrk, ${DEVICES_AT_ONCE} connections, each a device pausing 0-1000 ms before each request (about 2,000
  scripts/s offered), ${SECONDS} s; p50 and p99 as wrk measures them.

bootdepot and wrk share the machine's ${os.cpus().length} CPUs; 1-minute load average before the run:
${os.loadavg()[0]?.toFixed(2)}.

| Recording | scripts/s (64 conn.) | paced scripts/s (1,000 devices) | p50 ms | p99 ms | errors |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Targets, SQLite: at least ${TARGETS.scriptsPerSecond} scripts/s (${met(sqlite && sqlite.scriptsPerSecond >= TARGETS.scriptsPerSecond)}); p99 under ${TARGETS.p99Ms} ms with
${DEVICES_AT_ONCE} concurrent devices (${met(sqlite && sqlite.p99Ms < TARGETS.p99Ms)}).

Reproduce: \`npm run bench -- scripts\` (needs wrk, and postgresql for the PostgreSQL row;
\`BENCH_SCRIPT_SECONDS\` sets the duration).
`;
}
