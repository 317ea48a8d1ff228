/**
 * nginx as a reference server for tests and the benchmark: started from a private temp prefix
 * (own nginx.conf, pid, error log and temp paths; no system files written), listening only on
 * 127.0.0.1, stopped reliably (SIGQUIT, then SIGTERM, then SIGKILL, workers included) when the
 * caller stops it and, as a last resort, when this process exits or is told to stop.
 *
 * The same files are reachable at `/<path>` (server `root`) and at `/assets/<path>` (an alias),
 * so a request path can be sent unchanged to bootdepot and to nginx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, waitForPort } from './net.ts';
import { findTool, toolOrSkip, type SystemTool } from './system-tool.ts';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];
const SYSTEM_MIME_TYPES = '/etc/nginx/mime.types';

const NGINX: SystemTool = { name: 'nginx', candidates: CANDIDATES, override: 'BOOTDEPOT_NGINX', debianPackage: 'nginx', purpose: 'to run the comparison' };

/**
 * The nginx binary, or undefined when none is installed. BOOTDEPOT_NGINX, when set, is the only
 * candidate (so `BOOTDEPOT_NGINX=/nonexistent` shows what happens without nginx).
 */
export function findNginx(): string | undefined {
  return findTool(NGINX);
}

/** The skip rule for tests that need nginx (system-tool.ts). Returns the binary, or undefined when skipped. */
export function nginxOrSkip(t: TestContext): string | undefined {
  return toolOrSkip(t, NGINX);
}

export interface NginxProxyCache {
  /** Upstream base URL, e.g. `http://127.0.0.1:8080`; `location` is proxied to it. */
  upstream: string;
  /** The location proxied (default `/assets/`); the request path goes upstream unchanged. */
  location?: string;
  /** keys_zone size (default `10m`) and max_size of the on-disk cache (default `4g`). */
  zoneSize?: string;
  maxSize?: string;
  /**
   * proxy_cache_valid for 200/206 (default `10m`). false: none, so only the upstream's
   * Cache-Control and Expires say what is kept and for how long (as RFC 9111 has it).
   */
  valid?: string | false;
  /** proxy_cache_lock (default on): one upstream request per uncached file. */
  lock?: boolean;
  /**
   * `proxy_ignore_headers Cache-Control Expires`: nginx stores nothing whose Cache-Control says
   * `no-cache` (bootdepot's default `public, no-cache`), so without this every request is a MISS.
   */
  ignoreCacheControl?: boolean;
  /** `proxy_cache_revalidate on`: refresh expired entries with If-Modified-Since / If-None-Match. */
  revalidate?: boolean;
}

export interface NginxOptions {
  /** Directory served (files at `/<path>` and `/assets/<path>`). Optional with proxyCache. */
  root?: string;
  /** sendfile on (default) or off. */
  sendfile?: boolean;
  /** Worker processes (default 1). */
  workers?: number;
  /**
   * true: a master and `workers` workers (the production shape, used by the benchmark).
   * false (default): one process that serves by itself (`master_process off`): simplest to stop.
   */
  masterProcess?: boolean;
  /**
   * `if_modified_since` (default `before`: 304 when the file is not newer than the date, as
   * RFC 9110 13.1.3 says; nginx's own default `exact` wants the exact Last-Modified date).
   */
  ifModifiedSince?: 'exact' | 'before' | 'off';
  /** `/assets/` through proxy_cache to an upstream instead of from `root`. */
  proxyCache?: NginxProxyCache;
  /** Extra directives inside `server { }`. */
  extraServerConfig?: string;
  /** Port; default a free one. */
  port?: number;
  /** Milliseconds to wait for it to answer (default 10 s). */
  startTimeoutMs?: number;
}

export interface RunningNginx {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The process started: the master, or the single process with masterProcess false. */
  pid: number;
  /** The master's children: workers, and with proxyCache the cache manager and loader (empty with masterProcess false). */
  workerPids(): number[];
  /** The private prefix (nginx.conf, error.log, temp paths, cache). */
  dir: string;
  /** The generated nginx.conf text. */
  config: string;
  /** The error log so far. */
  errorLog(): Promise<string>;
  /** Stops nginx (idempotent), then removes its directory unless keepDir. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export { freePort, waitForPort };

// ---- last-resort cleanup: every child still running when this process ends is killed ----

const live = new Set<{ kill(): void }>();
let hooksInstalled = false;

/** Registers a kill function run when this process exits or gets SIGINT/SIGTERM/SIGHUP; returns the unregister function. */
export function killOnExit(kill: () => void): () => void {
  const entry = { kill };
  live.add(entry);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', killAllNow);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const handler = () => {
        killAllNow();
        process.removeListener(signal, handler);
        // With our handler gone, the default action (or the caller's own handler) applies.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      };
      process.on(signal, handler);
    }
  }
  return () => live.delete(entry);
}

function killAllNow(): void {
  for (const entry of live) {
    try {
      entry.kill();
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Child pids of a process, from /proc (Linux); empty elsewhere or when it is gone. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([exited(child).then(() => true as const), timedOut]);
  clearTimeout(timer);
  return result;
}

/** Stops a child: sig1, then SIGTERM, then SIGKILL, each given graceMs; extra pids (workers) get SIGKILL at the end. */
export async function stopChild(child: ChildProcess, options: { first?: NodeJS.Signals; graceMs?: number; alsoKill?: () => number[] } = {}): Promise<void> {
  const grace = options.graceMs ?? 3000;
  const others = new Set(options.alsoKill?.() ?? []);
  const pid = child.pid;
  if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
    for (const sig of [options.first ?? 'SIGTERM', 'SIGTERM', 'SIGKILL'] as NodeJS.Signals[]) {
      for (const other of options.alsoKill?.() ?? []) others.add(other);
      if (!signal(pid, sig)) break;
      if (await waitExit(child, sig === 'SIGKILL' ? 10_000 : grace)) break;
    }
  }
  for (const other of others) signal(other, 'SIGKILL');
}

// ---- nginx ----

function directive(value: string): string {
  // Paths go into nginx.conf quoted; refuse what quoting cannot carry.
  if (/["\\\n\r;{}$]/.test(value)) throw new Error(`nginx: unsupported character in ${JSON.stringify(value)}`);
  return `"${value}"`;
}

/** The nginx.conf text for the options (exported for inspection and tests). */
export function nginxConfig(options: NginxOptions & { port: number; dir: string; mimeTypes: string | undefined }): string {
  const { dir, port } = options;
  const workers = options.workers ?? 1;
  const root = options.root ? path.resolve(options.root) : undefined;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const lines: string[] = [
    '# Generated by test/support/nginx.ts',
    'daemon off;',
    `master_process ${options.masterProcess ? 'on' : 'off'};`,
    `worker_processes ${workers};`,
    // As root, workers would run as nobody, who cannot read files in 0700 temp directories.
    ...(isRoot ? ['user root;'] : []),
    `pid ${directive(path.join(dir, 'nginx.pid'))};`,
    `error_log ${directive(path.join(dir, 'error.log'))} warn;`,
    'events {',
    '  worker_connections 1024;',
    '}',
    'http {',
    options.mimeTypes ? `  include ${directive(options.mimeTypes)};` : '  types { text/plain txt; text/html html; application/json json; }',
    '  default_type application/octet-stream;',
    '  access_log off;',
    `  sendfile ${options.sendfile === false ? 'off' : 'on'};`,
    '  tcp_nopush on;',
    '  keepalive_timeout 30s;',
    '  server_tokens off;',
    `  if_modified_since ${options.ifModifiedSince ?? 'before'};`,
    `  client_body_temp_path ${directive(path.join(dir, 'tmp', 'body'))};`,
    `  proxy_temp_path ${directive(path.join(dir, 'tmp', 'proxy'))};`,
    `  fastcgi_temp_path ${directive(path.join(dir, 'tmp', 'fastcgi'))};`,
    `  uwsgi_temp_path ${directive(path.join(dir, 'tmp', 'uwsgi'))};`,
    `  scgi_temp_path ${directive(path.join(dir, 'tmp', 'scgi'))};`,
  ];
  const cache = options.proxyCache;
  if (cache?.location !== undefined && !/^\/[A-Za-z0-9._~/-]*$/.test(cache.location)) throw new Error(`nginx: unsupported location ${JSON.stringify(cache.location)}`);
  if (cache) {
    lines.push(
      `  proxy_cache_path ${directive(path.join(dir, 'cache'))} levels=1:2 keys_zone=assets:${cache.zoneSize ?? '10m'} max_size=${cache.maxSize ?? '4g'} inactive=60m use_temp_path=off;`,
    );
  }
  lines.push('  server {', `    listen 127.0.0.1:${port};`, '    server_name localhost;');
  if (root) lines.push(`    root ${directive(root)};`);
  if (cache) {
    lines.push(
      `    location ${cache.location ?? '/assets/'} {`,
      `      proxy_pass ${cache.upstream.replace(/\/+$/, '')};`,
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      '      proxy_cache assets;',
      ...(cache.valid === false ? [] : [`      proxy_cache_valid 200 206 ${cache.valid ?? '10m'};`]),
      ...(cache.lock === false ? [] : ['      proxy_cache_lock on;']),
      ...(cache.ignoreCacheControl ? ['      proxy_ignore_headers Cache-Control Expires;'] : []),
      ...(cache.revalidate ? ['      proxy_cache_revalidate on;'] : []),
      '      add_header X-Cache-Status $upstream_cache_status always;',
      '    }',
    );
  } else if (root) {
    lines.push('    location /assets/ {', `      alias ${directive(root + '/')};`, '    }');
  }
  if (options.extraServerConfig) lines.push(options.extraServerConfig);
  lines.push('  }', '}', '');
  return lines.join('\n');
}

/**
 * Starts nginx. Retries with another port when the chosen one was taken in the meantime.
 * Rejects (after stopping what it started) when nginx does not answer within the timeout.
 */
export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  const binary = findNginx();
  if (!binary) throw new Error('nginx is not installed');
  if (!options.root && !options.proxyCache) throw new Error('startNginx: give root or proxyCache');
  let lastError: unknown;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    try {
      return await startOnce(binary, options, options.port ?? (await freePort()));
    } catch (error) {
      lastError = error;
      if (!/Address already in use|bind\(\)/.test(String((error as Error).message))) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startOnce(binary: string, options: NginxOptions, port: number): Promise<RunningNginx> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bootdepot-nginx-'));
  // nginx (workers possibly as another user) must reach its own prefix.
  await chmod(dir, 0o755);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, 'tmp', sub), { recursive: true });
  let mimeTypes: string | undefined;
  try {
    accessSync(SYSTEM_MIME_TYPES, constants.R_OK);
    mimeTypes = SYSTEM_MIME_TYPES;
  } catch {
    mimeTypes = undefined;
  }
  const config = nginxConfig({ ...options, port, dir, mimeTypes });
  const confPath = path.join(dir, 'nginx.conf');
  await writeFile(confPath, config);
  const errorLogPath = path.join(dir, 'error.log');

  const child = spawn(binary, ['-p', dir + '/', '-c', confPath, '-e', errorLogPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => undefined);
  const workers = () => (options.masterProcess && child.pid !== undefined ? childPids(child.pid) : []);
  let knownWorkers: number[] = [];
  const unregister = killOnExit(() => {
    // The master first: it would replace a killed worker at once.
    const children = [...workers(), ...knownWorkers];
    if (child.pid !== undefined) signal(child.pid, 'SIGKILL');
    for (const pid of children) signal(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  let stopped: Promise<void> | undefined;
  const stop = (stopOptions: { keepDir?: boolean } = {}): Promise<void> => {
    stopped ??= (async () => {
      await stopChild(child, { first: 'SIGQUIT', graceMs: 3000, alsoKill: () => [...knownWorkers, ...workers()] });
      unregister();
      if (!stopOptions.keepDir) await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const alive = () => child.exitCode === null && child.signalCode === null;
  try {
    await Promise.race([waitForPort(port, options.startTimeoutMs ?? 10_000, alive), spawnError]);
  } catch (error) {
    const log = await readFile(errorLogPath, 'utf8').catch(() => '');
    await stop();
    throw new Error(`nginx did not start on 127.0.0.1:${port}: ${(error as Error).message}\n${stderr}${log}`, { cause: error });
  }
  // The master listens before it forks the workers: wait for them too (bounded).
  const workersDue = options.masterProcess ? (options.workers ?? 1) : 0;
  for (let i = 0; i < 200 && workers().length < workersDue && alive(); i++) await new Promise((r) => setTimeout(r, 25));
  knownWorkers = workers();
  if (knownWorkers.length < workersDue) {
    const log = await readFile(errorLogPath, 'utf8').catch(() => '');
    await stop();
    throw new Error(`nginx started ${knownWorkers.length} of ${workersDue} workers\n${stderr}${log}`);
  }
  if (child.pid === undefined) throw new Error('nginx: no pid');
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    workerPids: () => {
      const now = workers();
      if (now.length > 0) knownWorkers = now;
      return now;
    },
    dir,
    config,
    errorLog: () => readFile(errorLogPath, 'utf8').catch(() => ''),
    stop,
  };
}
