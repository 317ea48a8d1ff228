/** Shared test helpers: temp data directories, a silent logger, an app built on them. */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { TestContext } from 'node:test';
import { buildApp } from '../src/app.ts';
import { createAssetReader } from '../src/assets/asset-root.ts';
import { openLiveCatalogue } from '../src/boot/live-catalogue.ts';
import { loadConfig, type Override, type OverrideKey } from '../src/config/loader.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import type { Config } from '../src/config/schema.ts';
import type { ResponseSigner } from '../src/http/signing.ts';
import { BootState } from '../src/state/boot-state.ts';
import { SqliteDeviceStore } from '../src/state/sqlite-store.ts';
import type { DeviceStore } from '../src/state/store.ts';

export const silentLogger = pino({ level: 'silent' });

/** Creates a temp directory with the given files (paths relative to it); removed after the test. */
export async function makeTree(t: TestContext, files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bootdepot-test-'));
  // A server the test started may still be writing here when this runs (after hooks run in the
  // order they were added): retry the removal instead of failing on ENOTEMPTY.
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  await writeFiles(dir, files);
  return dir;
}

export async function writeFiles(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/** A config over the given directories, from an optional YAML text. */
export function testConfig(dataDir: string, assetsDir: string, yaml = '', overrides: Override[] = []): Config {
  const result = loadConfig({
    file: yaml ? { path: path.join(dataDir, 'bootdepot.yaml'), text: yaml } : undefined,
    overrides: [
      { key: 'dataDir', value: dataDir, source: 'test' },
      { key: 'assetsDir', value: assetsDir, source: 'test' },
      ...overrides,
    ],
    cwd: dataDir,
  });
  if (!result.config) throw new Error(`bad test config: ${JSON.stringify(result.problems)}`);
  return result.config;
}

export interface TestAppOptions {
  data: Record<string, string>;
  assets?: Record<string, string | Buffer>;
  yaml?: string;
  overrides?: Override[];
  /** Defaults to a silent logger; pass {@link captureLogger}'s to assert on log lines. */
  logger?: Logger;
  /** Boot state in a temp SQLite file (default), a given store, or none. */
  store?: DeviceStore | false;
  /** Signs `<path>.sig` / `.asc` answers. */
  signer?: ResponseSigner;
}

/** Builds the app over temp data and assets directories; closed after the test. */
export async function testApp(t: TestContext, options: TestAppOptions) {
  const dataDir = await makeTree(t, options.data);
  const assetsDir = await makeTree(t, options.assets ?? {});
  const config = testConfig(dataDir, assetsDir, options.yaml, options.overrides);
  const logger = options.logger ?? silentLogger;
  const catalogue = await openLiveCatalogue(config.paths.data, logger);
  let store: DeviceStore | undefined;
  if (options.store !== false) {
    store = options.store ?? new SqliteDeviceStore(path.join(await makeTree(t, {}), 'bootdepot.db'));
    await store.migrate();
  }
  const bootState = store ? new BootState({ store, log: logger, catalogue: () => catalogue.current() }) : undefined;
  const app = await buildApp({ config, logger, catalogue, assets: createAssetReader(config.paths.assets), ...(bootState ? { bootState } : {}), ...(options.signer ? { signer: options.signer } : {}) });
  t.after(async () => {
    catalogue.close();
    await app.close();
    await bootState?.close();
    if (options.store === undefined) await store?.close();
  });
  return { app, config, catalogue, dataDir, assetsDir, bootState, store };
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger that keeps its JSON lines in memory. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as LogLine);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Polls until `check` returns true; fails after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const REPO_ROOT = path.join(import.meta.dirname, '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bootdepot ARGS` as operators do (the bin script), from the repository root, killed after `timeoutMs`. */
export function runBootdepot(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliRun> {
  return runBootdepotIn(REPO_ROOT, args, env, timeoutMs);
}

/** Runs `bootdepot ARGS` with `cwd` as the working directory; an `undefined` value removes that variable. */
export function runBootdepotIn(cwd: string, args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const merged: Record<string, string | undefined> = { ...process.env, ...env };
    for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/bootdepot.js'), ...args], { cwd, env: merged });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts the whole server (store, mirror, app) on 127.0.0.1 and a free port, from overrides
 * alone (keys as the CLI's flags: dataDir, assetsDir, adminToken, databaseUrl, cacheDir...);
 * closed after the test.
 */
export async function startTestServer(t: TestContext, settings: Partial<Record<OverrideKey, string>>, mirrorFlags: string[] = []): Promise<RunningServer> {
  const overrides: Override[] = Object.entries({ host: '127.0.0.1', port: '0', ...settings }).map(([key, value]) => ({ key: key as OverrideKey, value: value ?? '', source: 'test' }));
  const { config, problems } = loadConfig({ cwd: process.cwd(), overrides, mirrorFlags: mirrorFlags.map((value) => ({ value, source: '--mirror' })) });
  if (!config) throw new Error(`bad test config: ${JSON.stringify(problems)}`);
  const server = await startServer(config, silentLogger);
  t.after(() => server.close());
  return server;
}
