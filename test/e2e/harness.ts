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
import type { Device, EventDetail } from '../../src/state/model.ts';
import { AptUnavailableError, buildImages, missingImagePrerequisites, type BootImages } from './images.ts';
import { HOST_FROM_GUEST, missingVmPrerequisites, type Firmware, type Vm } from './qemu.ts';

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

/**
 * Checks the prerequisites for a VM with this firmware (and, unless `images: false`, for the
 * boot images) and builds or finds the images. Resolves with undefined when the test skipped.
 */
export async function prepareScenario(t: TestContext, firmware: Firmware, options?: { images?: true }): Promise<{ images: BootImages } | undefined>;
export async function prepareScenario(t: TestContext, firmware: Firmware, options: { images: false }): Promise<{ images?: undefined } | undefined>;
export async function prepareScenario(t: TestContext, firmware: Firmware, options: { images?: boolean } = {}): Promise<{ images?: BootImages } | undefined> {
  const wantImages = options.images !== false;
  const missing = [...(await missingVmPrerequisites(firmware)), ...(wantImages ? await missingImagePrerequisites() : [])];
  if (skipUnlessReady(t, missing)) return undefined;
  if (!wantImages) return {};
  try {
    const images = await buildImages({ log: (m) => t.diagnostic(m) });
    t.diagnostic(`images ${images.key}: ${images.kernelPackage} ${images.kernelPackageVersion}, ${images.built ? 'built' : 'cached'} in ${images.seconds.toFixed(1)} s`);
    return { images };
  } catch (error) {
    if (error instanceof AptUnavailableError && skipUnlessReady(t, [error.message])) return undefined;
    throw error;
  }
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
  /** The device's MAC, on lines of routes that know it (scripts, /b/ routes and their downloads, reports). */
  mac?: string;
}

/** The request or download a log line records, if it records one. */
export function parseRequestLine(line: Record<string, unknown>): LoggedRequest | undefined {
  const { msg, method, url, status, time, path: assetPath, bytes, outcome, mac } = line;
  if (typeof status !== 'number') return undefined;
  const at = typeof time === 'number' ? time : 0;
  if (msg === 'request' && typeof method === 'string' && typeof url === 'string') {
    const parsed = new URL(url, 'http://bootdepot.invalid');
    return { kind: 'request', method, url, path: parsed.pathname, query: parsed.searchParams, status, time: at, ...(typeof mac === 'string' ? { mac } : {}) };
  }
  if (msg === 'download' && typeof assetPath === 'string') {
    // The mirror's download lines name `mirror/NAME/<path>`, the asset routes' a path under the assets directory.
    const url = assetPath.startsWith('mirror/') ? `/${assetPath}` : `/assets/${assetPath}`;
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
      ...(typeof mac === 'string' ? { mac } : {}),
    };
  }
  return undefined;
}

/** An event as the admin API returns it (`GET /api/v1/devices/<mac>?events=N`). */
export interface ApiEvent {
  id: number;
  deviceId: string;
  bootId?: string;
  at: string;
  detail: EventDetail;
}

export interface DeviceView {
  device: Device;
  /** Newest first, as the API returns them. */
  events: ApiEvent[];
}

export interface BootdepotOptions {
  /** Turns the admin API on (`adminToken` override, at least 16 characters). */
  adminToken?: string;
  /** A config file's text (YAML), for keys no override sets (`boot.localBoot`, `boot.retry`...). */
  configYaml?: string;
  /** Mirrors to add or replace, as `--mirror NAME=URL` would (e.g. `flatcar-stable` on a local upstream). */
  mirrors?: Record<string, string>;
}

export interface E2eServer {
  server: RunningServer;
  port: number;
  /** bootdepot as the guest reaches it: `http://10.0.2.2:PORT`. */
  guestUrl: string;
  dataDir: string;
  assetsDir: string;
  /** The mirror's cache directory (DIR/cache, empty at start). */
  cacheDir: string;
  logPath: string;
  /** The server's log lines so far, parsed. */
  logLines(): Promise<Record<string, unknown>[]>;
  /** Requests and downloads the server logged, in log order. */
  requests(): Promise<LoggedRequest[]>;
  /** The last lines of the log, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /**
   * The log lines about one device, formatted one a line: lines naming its MAC (any form) or one
   * of its boot ids, and the asset download summaries (which name a client address, not a
   * device: under QEMU user networking every guest is 127.0.0.1).
   */
  deviceLog(mac: string): Promise<string>;
  /** The admin token the server was started with, if any. */
  adminToken: string | undefined;
  /** Calls the admin API with the token; rejects unless the answer is 2xx. */
  api<T>(apiPath: string, init?: RequestInit): Promise<T>;
  /** `GET /api/v1/devices/<mac>?events=N`, undefined for 404 (unknown device). */
  device(mac: string, events?: number): Promise<DeviceView | undefined>;
  /**
   * Closes the server now (idempotent; the scenario's end closes it otherwise). Closing flushes
   * what is only logged later (range request summaries) and pending boot events.
   */
  stop(): Promise<void>;
}

/**
 * Starts bootdepot on 127.0.0.1, port 0, over a data directory made of `data` (paths relative to
 * it) and an empty assets directory, logging JSON at info level to DIR/server.log. Closed when the
 * scenario ends.
 */
export async function startBootdepot(scenario: Scenario, data: Record<string, string>, options: BootdepotOptions = {}): Promise<E2eServer> {
  const dataDir = path.join(scenario.dir, 'data');
  const assetsDir = path.join(scenario.dir, 'assets');
  const cacheDir = path.join(scenario.dir, 'cache');
  const logPath = path.join(scenario.dir, 'server.log');
  await mkdir(assetsDir, { recursive: true });
  for (const sub of ['groups', 'profiles', 'ignition', 'templates']) await mkdir(path.join(dataDir, sub), { recursive: true });
  for (const [rel, text] of Object.entries(data)) {
    await mkdir(path.dirname(path.join(dataDir, rel)), { recursive: true });
    await writeFile(path.join(dataDir, rel), text);
  }

  let file: { path: string; text: string } | undefined;
  if (options.configYaml !== undefined) {
    file = { path: path.join(scenario.dir, 'bootdepot.yaml'), text: options.configYaml };
    await writeFile(file.path, file.text);
  }
  const loaded = loadConfig({
    cwd: scenario.dir,
    ...(file ? { file } : {}),
    overrides: [
      { key: 'host', value: '127.0.0.1', source: 'e2e' },
      { key: 'port', value: '0', source: 'e2e' },
      { key: 'dataDir', value: dataDir, source: 'e2e' },
      { key: 'assetsDir', value: assetsDir, source: 'e2e' },
      { key: 'cacheDir', value: cacheDir, source: 'e2e' },
      { key: 'logLevel', value: 'info', source: 'e2e' },
      ...(options.adminToken !== undefined ? [{ key: 'adminToken' as const, value: options.adminToken, source: 'e2e' }] : []),
    ],
    mirrorFlags: Object.entries(options.mirrors ?? {}).map(([name, url]) => ({ value: `${name}=${url}`, source: 'e2e' })),
  });
  if (!loaded.config) throw new Error(`e2e config rejected: ${JSON.stringify(loaded.problems)}`);
  const config = loaded.config;

  const destination = pino.destination({ dest: logPath, sync: true, mkdir: true });
  const logger = pino({ level: config.log.level }, destination);
  const server = await startServer(config, logger);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await server.close();
      destination.end();
    })());
  scenario.defer(stop);
  const port = Number(new URL(server.url).port);
  const adminToken = config.admin.token;

  async function api<T>(apiPath: string, init: RequestInit = {}): Promise<T> {
    if (!adminToken) throw new Error('bootdepot was started without an admin token: pass startBootdepot(..., { adminToken })');
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${adminToken}`);
    const response = await fetch(`${server.url}${apiPath}`, { ...init, headers, signal: init.signal ?? AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (!response.ok) throw Object.assign(new Error(`${init.method ?? 'GET'} ${apiPath} -> ${response.status}: ${text.slice(0, 500)}`), { status: response.status });
    return (text ? JSON.parse(text) : undefined) as T;
  }

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
    cacheDir,
    logPath,
    logLines,
    async requests() {
      return (await logLines()).map(parseRequestLine).filter((r): r is LoggedRequest => r !== undefined);
    },
    async logTail(lines = 40) {
      const text = await readFile(logPath, 'utf8').catch(() => '(no server log)');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    },
    async deviceLog(mac) {
      return formatDeviceLog(await logLines(), mac);
    },
    adminToken,
    api,
    async device(mac, events = 100) {
      try {
        return await api<DeviceView>(`/api/v1/devices/${encodeURIComponent(mac)}?events=${events}`);
      } catch (error) {
        if ((error as { status?: number }).status === 404) return undefined;
        throw error;
      }
    },
    stop,
  };
}

const DOWNLOAD_MESSAGES = new Set(['download', 'ranged download']);
/** Fields every line has, left out of the device log. */
const NOISE = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'reqId']);

/** See {@link E2eServer.deviceLog}. */
export function formatDeviceLog(lines: readonly Record<string, unknown>[], mac: string): string {
  const forms = [mac.toLowerCase(), mac.toLowerCase().replace(/:/g, '-'), mac.toLowerCase().replace(/:/g, '')];
  const mentions = (line: Record<string, unknown>) => {
    const text = JSON.stringify(line).toLowerCase();
    return forms.some((form) => text.includes(form));
  };
  // Boot ids of the device: its tracked URLs (/b/<id>/...) carry them, and the lines about them may not name the MAC.
  const bootIds = new Set<string>();
  for (const line of lines) {
    if (!mentions(line)) continue;
    for (const found of JSON.stringify(line).matchAll(/\/b\/([0-9a-f]{32})\//g)) if (found[1]) bootIds.add(found[1]);
  }
  const first = lines.find((l) => typeof l.time === 'number')?.time as number | undefined;
  const picked = lines.filter((line) => {
    if (DOWNLOAD_MESSAGES.has(String(line.msg))) return true;
    if (mentions(line)) return true;
    const text = JSON.stringify(line);
    return [...bootIds].some((id) => text.includes(id));
  });
  if (picked.length === 0) return '  (no line names this device)';
  return picked
    .map((line) => {
      const at = typeof line.time === 'number' && first !== undefined ? `+${seconds(first, line.time)}s` : '';
      const rest = Object.fromEntries(Object.entries(line).filter(([key]) => !NOISE.has(key)));
      return `  ${at} ${String(line.msg)} ${JSON.stringify(rest)}`;
    })
    .join('\n');
}

/** One line per request, time from `start`: `+5.6s GET /ipxe?... -> 200`. */
export function describeRequests(requests: readonly LoggedRequest[], start: number): string {
  return requests.map((r) => `  +${seconds(start, r.time)}s ${r.method} ${r.url} -> ${r.status}${r.bytes !== undefined ? ` (${r.bytes} bytes, ${r.outcome ?? '?'})` : ''}`).join('\n') || '  (none)';
}

/** Polls `check` until it returns a value (not undefined), or throws its last complaint after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: ${last.message}` : last !== undefined ? `: ${JSON.stringify(last)}` : '';
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${why}`, { cause: last });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Watches bootdepot's log for a request served more often than expected, e.g. `/ipxe` a
 * second time: the bootstrap asks again (10 s on) when the script it chained failed, which on a
 * BIOS machine shows nowhere but on the screen. `failed` rejects then; race it against a wait.
 */
export function failOnRepeatedRequest(bootdepot: E2eServer, requestPath: string, allowed = 1, intervalMs = 500): { failed: Promise<never>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const failed = new Promise<never>((_, reject) => {
    const check = async () => {
      const served = (await bootdepot.requests().catch(() => [])).filter((r) => r.path === requestPath);
      if (stopped) return;
      if (served.length > allowed) {
        reject(new Error(`bootdepot served ${requestPath} ${served.length} times (expected ${allowed}): the machine asked again, so what it got before failed`));
        return;
      }
      timer = setTimeout(() => void check(), intervalMs);
      timer.unref();
    };
    void check();
  });
  // Whoever races it handles the rejection; a watch nobody races must not crash the process.
  failed.catch(() => {});
  return {
    failed,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export interface FailureContext {
  scenario: Scenario;
  bootdepot: E2eServer;
  /** The scenario's VMs so far (a later one may be added while the test runs). */
  vms: readonly Vm[];
  /** The device the scenario boots. */
  mac: string;
  /** More devices it boots at the same time: their log lines and recorded events are reported too. */
  moreMacs?: readonly string[];
  /** More to report, e.g. what a local upstream saw. */
  more?: () => string | Promise<string>;
  /** Epoch ms the first VM started, for the request timeline. */
  start: number;
}

/**
 * Runs a scenario's body; when it fails, keeps the scenario's files and rethrows with what the
 * machine printed and what bootdepot saw: a screendump of each VM still running (iPXE draws
 * on the screen, not on serial, under BIOS), the requests served, the device's log lines and
 * recorded events, the server log's last lines and each VM's serial console.
 */
export async function reportFailures(context: FailureContext, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    throw await explainFailure(context, error);
  }
}

export async function explainFailure(context: FailureContext, error: unknown): Promise<Error> {
  const { scenario, bootdepot, vms, start } = context;
  scenario.keep();
  const parts: string[] = [error instanceof Error ? error.message : String(error)];
  for (const vm of vms) {
    if (!vm.running()) continue;
    parts.push(
      await vm.screendump().then(
        (file) => `screen of ${vm.name} (iPXE draws there under BIOS): ${file}`,
        (e: unknown) => `screendump of ${vm.name} failed: ${String(e)}`,
      ),
    );
  }
  const requests = await bootdepot.requests().catch(() => []);
  parts.push(`--- requests bootdepot served ---\n${describeRequests(requests, start)}`);
  for (const mac of [context.mac, ...(context.moreMacs ?? [])]) {
    parts.push(`--- bootdepot log for ${mac} (${bootdepot.logPath}) ---\n${await bootdepot.deviceLog(mac).catch((e: unknown) => String(e))}`);
    if (!bootdepot.adminToken) continue;
    const view = await bootdepot.device(mac).catch((e: unknown) => `(${String(e)})`);
    const events = typeof view === 'object' ? view.events.slice().reverse().map((e) => `  #${e.id} ${e.at} ${e.bootId ?? '-'} ${JSON.stringify(e.detail)}`).join('\n') : undefined;
    parts.push(
      `--- device ${mac} as the admin API shows it ---\n` +
        (typeof view === 'string' ? view : view ? `${JSON.stringify(view.device)}\n${events || '  (no events)'}` : '  (unknown device)'),
    );
  }
  parts.push(`--- server log, last lines ---\n${await bootdepot.logTail(25)}`);
  if (context.more) parts.push(await Promise.resolve().then(context.more).catch((e: unknown) => `(${String(e)})`));
  const message = parts[0] ?? '';
  for (const vm of vms) {
    // waitFor's errors carry the serial tail of the VM they waited on already.
    if (message.includes(`--- serial (${vm.serialLogPath})`)) continue;
    parts.push(`--- serial of ${vm.name} (${vm.serialLogPath}), last lines ---\n${vm.serialTail(80)}`);
  }
  for (const vm of vms) {
    const firmware = (await vm.firmwareLog()).replace(/\r/g, '').trimEnd().split('\n').slice(-12).join('\n');
    if (firmware) parts.push(`--- firmware debug port of ${vm.name} (${vm.firmwareLogPath}), last lines ---\n${firmware}`);
  }
  parts.push(`files kept in ${scenario.dir}`);
  return new Error(parts.join('\n'), { cause: error });
}

/** Seconds between two epoch-millisecond times, one decimal. */
export function seconds(from: number, to: number): number {
  return Math.round((to - from) / 100) / 10;
}
