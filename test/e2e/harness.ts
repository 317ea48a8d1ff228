/**
 * Scenario plumbing for the end-to-end suite: the skip rule, a per-scenario work directory, and
 * bootdepot running in-process on 127.0.0.1 with its JSON log in a file, from which the
 * requests it served are read back.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/loader.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { HOST_FROM_GUEST } from './qemu.ts';

export const SYSTEM_PACKAGES = 'qemu-system-x86 ipxe-qemu ovmf busybox-static';

/**
 * The skip rule. With prerequisites missing a scenario skips, loudly (a warning on stderr and
 * the reason in the report), except under CI=true, where it fails: CI must run the suite.
 * Returns true when the caller should return (skipped).
 */
export function skipUnlessReady(t: TestContext, missing: readonly string[]): boolean {
  if (missing.length === 0) return false;
  const reason = `end-to-end prerequisites missing: ${missing.join('; ')}`;
  if (process.env.CI === 'true') {
    throw new Error(`${reason}. Under CI=true this fails instead of skipping: install ${SYSTEM_PACKAGES} (see docs/testing.md).`);
  }
  console.warn(`\n*** SKIPPED ${t.fullName}: ${reason}. Install ${SYSTEM_PACKAGES} (see docs/testing.md). ***\n`);
  t.skip(reason);
  return true;
}

export interface Scenario {
  name: string;
  /** The scenario's directory under the system temp dir (server log, serial log, data, assets). */
  dir: string;
  /** Keep the directory after the test (done on failure, or always with BOOTDEPOT_E2E_KEEP=1). */
  keep(): void;
  /** Runs fn when the test ends, before anything deferred earlier (last in, first out). */
  defer(fn: () => unknown): void;
}

/**
 * A fresh directory for one scenario and its cleanups. When the test ends the cleanups run last
 * in, first out (the VM dies before the server closes), then the directory is removed unless kept.
 */
export async function openScenario(t: TestContext, name: string): Promise<Scenario> {
  const dir = await mkdtemp(path.join(tmpdir(), `bootdepot-e2e-${name}-`));
  let kept = process.env.BOOTDEPOT_E2E_KEEP === '1';
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (kept) console.warn(`e2e: ${name}: files kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `e2e: ${name}: cleanup failed`);
  });
  return {
    name,
    dir,
    keep() {
      kept = true;
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };
}

/**
 * A request bootdepot logged: a `request` line (method, url, status), or a `download` line,
 * which the asset routes write instead for a file body sent (path under the assets directory,
 * status, bytes, outcome).
 */
export interface LoggedRequest {
  kind: 'request' | 'download';
  method: string;
  url: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  status: number;
  /** Body bytes sent (download lines). */
  bytes?: number;
  /** `complete`, `aborted`... (download lines). */
  outcome?: string;
  /** Epoch milliseconds of the log line (when the response completed). */
  time: number;
}

/** The request or download a log line records, if it records one. */
export function parseRequestLine(line: Record<string, unknown>): LoggedRequest | undefined {
  const { msg, method, url, status, time, path: assetPath, bytes, outcome } = line;
  if (typeof status !== 'number') return undefined;
  const at = typeof time === 'number' ? time : 0;
  if (msg === 'request' && typeof method === 'string' && typeof url === 'string') {
    const parsed = new URL(url, 'http://bootdepot.invalid');
    return { kind: 'request', method, url, path: parsed.pathname, query: parsed.searchParams, status, time: at };
  }
  if (msg === 'download' && typeof assetPath === 'string') {
    const url = `/assets/${assetPath}`;
    return {
      kind: 'download',
      method: 'GET',
      url,
      path: url,
      query: new URLSearchParams(),
      status,
      bytes: typeof bytes === 'number' ? bytes : undefined,
      outcome: typeof outcome === 'string' ? outcome : undefined,
      time: at,
    };
  }
  return undefined;
}

export interface E2eServer {
  server: RunningServer;
  port: number;
  /** bootdepot as the guest reaches it: `http://10.0.2.2:PORT`. */
  guestUrl: string;
  dataDir: string;
  assetsDir: string;
  logPath: string;
  /** The server's log lines so far, parsed. */
  logLines(): Promise<Record<string, unknown>[]>;
  /** Requests and downloads the server logged, in log order. */
  requests(): Promise<LoggedRequest[]>;
  /** The last lines of the log, for failure messages. */
  logTail(lines?: number): Promise<string>;
}

/**
 * Starts bootdepot on 127.0.0.1, port 0, over a data directory made of `data` (paths relative to
 * it) and an empty assets directory, logging JSON at info level to DIR/server.log. Closed when the
 * scenario ends.
 */
export async function startBootdepot(scenario: Scenario, data: Record<string, string>): Promise<E2eServer> {
  const dataDir = path.join(scenario.dir, 'data');
  const assetsDir = path.join(scenario.dir, 'assets');
  const logPath = path.join(scenario.dir, 'server.log');
  await mkdir(assetsDir, { recursive: true });
  for (const sub of ['groups', 'profiles', 'ignition', 'templates']) await mkdir(path.join(dataDir, sub), { recursive: true });
  for (const [rel, text] of Object.entries(data)) {
    await mkdir(path.dirname(path.join(dataDir, rel)), { recursive: true });
    await writeFile(path.join(dataDir, rel), text);
  }

  const loaded = loadConfig({
    cwd: scenario.dir,
    overrides: [
      { key: 'host', value: '127.0.0.1', source: 'e2e' },
      { key: 'port', value: '0', source: 'e2e' },
      { key: 'dataDir', value: dataDir, source: 'e2e' },
      { key: 'assetsDir', value: assetsDir, source: 'e2e' },
      { key: 'logLevel', value: 'info', source: 'e2e' },
    ],
  });
  if (!loaded.config) throw new Error(`e2e config rejected: ${JSON.stringify(loaded.problems)}`);
  const config = loaded.config;

  const destination = pino.destination({ dest: logPath, sync: true, mkdir: true });
  const logger = pino({ level: config.log.level }, destination);
  const server = await startServer(config, logger);
  scenario.defer(async () => {
    await server.close();
    destination.end();
  });
  const port = Number(new URL(server.url).port);

  async function logLines(): Promise<Record<string, unknown>[]> {
    const text = await readFile(logPath, 'utf8').catch(() => '');
    const lines: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
    return lines;
  }

  return {
    server,
    port,
    guestUrl: `http://${HOST_FROM_GUEST}:${port}`,
    dataDir,
    assetsDir,
    logPath,
    logLines,
    async requests() {
      return (await logLines()).map(parseRequestLine).filter((r): r is LoggedRequest => r !== undefined);
    },
    async logTail(lines = 40) {
      const text = await readFile(logPath, 'utf8').catch(() => '(no server log)');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    },
  };
}

/** Seconds between two epoch-millisecond times, one decimal. */
export function seconds(from: number, to: number): number {
  return Math.round((to - from) / 100) / 10;
}
