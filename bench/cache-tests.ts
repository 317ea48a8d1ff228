/**
 * The cache-tests benchmark (`CACHE_TESTS_DIR=... npm run bench -- cache-tests`): the
 * http-tests/cache-tests suite (the one behind cache-tests.fyi) against bootdepot's pull-through
 * mirror and against nginx's proxy_cache, in one run, from one instance of the suite's own origin
 * server. Prints, and returns for the "cache-tests figures" section of docs/mirror.md, the results
 * per test group for both caches (freshness, conditional, partial and vary first) and every test
 * whose result differs between them. Not part of the tests or CI: it takes a few minutes and needs
 * the suite's checkout and nginx.
 *
 * The suite is not part of bootdepot and is never copied into it: CACHE_TESTS_DIR names a
 * checkout of https://github.com/http-tests/cache-tests with its npm dependencies installed
 * (the client imports undici for the interim-response tests).
 *
 * What runs, all on 127.0.0.1:
 * - the suite's origin (test-engine/server/server.mjs, from CACHE_TESTS_DIR), made to listen on
 *   loopback only (it would listen on every interface), on a free port;
 * - bootdepot with one mirror, `cachetests`, whose upstream is that origin: the built-in
 *   defaults (mutableMaxAge, notFoundTtl, ...) except more transfers at once, because the suite
 *   runs 25 tests at a time and a queued fill would be a timing artefact, not a caching result;
 *   BENCH_CACHE_TESTS_YAML adds config to compare settings (e.g. `mirror: {mutableMaxAge: 0}`);
 * - nginx configured as the suite's own reference setup (docker/nginx/nginx.conf there):
 *   `proxy_cache` with `proxy_cache_revalidate on`, no `proxy_cache_valid`, so only the origin's
 *   headers say what is kept;
 * - the suite's client (bench/cache-tests-client.ts), once per cache, one after the other.
 *
 * Results are classified with the suite's own rules (test-engine/lib/results.mjs, dependencies
 * honoured, as cache-tests.fyi shows them). CACHE_TESTS_GROUPS=partial,vary runs only those
 * groups; CACHE_TESTS_ID=test-id runs one test and prints its requests and responses as the
 * client and the origin saw them (only a whole run is written to the docs). Every result, test by
 * test, is written to bench/.work/cache-tests/ (gitignored).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { findNginx, freePort, killOnExit, startNginx, stopChild, waitForPort, type NginxOptions, type RunningNginx } from '../test/support/nginx.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(REPO, 'bench', '.work', 'cache-tests');
const MIRROR = 'cachetests';
/** Groups the mirror's caching is judged by, shown first. */
const FOCUS = ['cc-freshness', 'expires', 'expires-parse', 'heuristic', 'conditional-inm', 'conditional-lm', 'partial', 'vary', 'vary-parse'];
/** One client run may take this long before it counts as hung. */
const CLIENT_TIMEOUT_MS = 20 * 60_000;

const log = (message: string) => process.stderr.write(`[bench cache-tests] ${message}\n`);

export const HOW_TO_GET_THE_SUITE = `CACHE_TESTS_DIR must name a checkout of the http-tests/cache-tests suite (it is not part of bootdepot):
  git clone https://github.com/http-tests/cache-tests /tmp/cache-tests
  (cd /tmp/cache-tests && npm install --omit=dev)
  CACHE_TESTS_DIR=/tmp/cache-tests npm run bench -- cache-tests`;

/** The suite's checkout, checked: every file this benchmark uses from it. */
export function suiteDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.CACHE_TESTS_DIR;
  if (!dir) throw new Error(`CACHE_TESTS_DIR is not set.\n${HOW_TO_GET_THE_SUITE}`);
  const resolved = path.resolve(dir);
  const needed = ['test-engine/server/server.mjs', 'test-engine/client/runner.mjs', 'test-engine/lib/results.mjs', 'tests/index.mjs'];
  const missing = needed.filter((file) => !existsSync(path.join(resolved, file)));
  if (missing.length > 0) throw new Error(`CACHE_TESTS_DIR=${dir} is not a cache-tests checkout (no ${missing.join(', ')}).\n${HOW_TO_GET_THE_SUITE}`);
  if (!existsSync(path.join(resolved, 'node_modules', 'undici'))) throw new Error(`CACHE_TESTS_DIR=${dir} has no node_modules/undici: run (cd ${dir} && npm install --omit=dev).`);
  return resolved;
}

// ---- the suite's vocabulary ----

interface SuiteTest {
  id: string;
  name?: string;
  kind?: 'required' | 'optimal' | 'check';
}
interface SuiteGroup {
  id: string;
  name: string;
  tests: SuiteTest[];
}
type ResultSymbol = readonly [string, string, string];
interface SuiteResults {
  resultTypes: Record<string, ResultSymbol>;
  determineTestResult(groups: SuiteGroup[], id: string, results: Record<string, unknown>, honorDependencies?: boolean): ResultSymbol;
}
type RawResults = Record<string, true | [string, string]>;

/** How a test came out, in the suite's terms. */
export type Outcome = 'pass' | 'fail' | 'not optimal' | 'yes' | 'no' | 'setup failed' | 'harness failed' | 'dependency failed' | 'retried' | 'not run';

const OUTCOME_OF: Record<string, Outcome> = {
  pass: 'pass',
  fail: 'fail',
  optional_fail: 'not optimal',
  yes: 'yes',
  no: 'no',
  setup_fail: 'setup failed',
  harness_fail: 'harness failed',
  dependency_fail: 'dependency failed',
  retry: 'retried',
  untested: 'not run',
};

interface Suite {
  dir: string;
  groups: SuiteGroup[];
  /** A test's outcome; with honorDependencies, a test whose dependency did not pass is `dependency failed`. */
  outcome(id: string, results: RawResults, honorDependencies: boolean): Outcome;
  revision: string;
}

async function loadSuite(dir: string): Promise<Suite> {
  const url = (file: string) => pathToFileURL(path.join(dir, file)).href;
  const groups = ((await import(url('tests/index.mjs'))) as { default: SuiteGroup[] }).default;
  const suiteResults = (await import(url('test-engine/lib/results.mjs'))) as SuiteResults;
  const names = new Map(Object.entries(suiteResults.resultTypes).map(([name, symbol]) => [symbol, name]));
  const outcome = (id: string, results: RawResults, honorDependencies: boolean): Outcome => {
    const name = names.get(suiteResults.determineTestResult(groups, id, results, honorDependencies));
    return (name === undefined ? undefined : OUTCOME_OF[name]) ?? 'harness failed';
  };
  const version = (JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  let commit: string;
  try {
    commit = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = '';
  }
  return { dir, groups, outcome, revision: commit ? `${version}, commit ${commit}` : version };
}

// ---- the servers ----

interface Running {
  url: string;
  stop(): Promise<void>;
}

/**
 * The query parameter that carries the suite's request number through the mirror (see
 * bench/cache-tests-origin.ts); CACHE_TESTS_PLAIN=1 runs the suite without it.
 */
export const NUMBER_PARAM = 'cache-tests-req-num';
const numbered = () => process.env.CACHE_TESTS_PLAIN !== '1';

function track(child: ChildProcess): () => void {
  return killOnExit(() => child.kill('SIGKILL'));
}

async function startOrigin(dir: string, work: string, logFile: string, echo: boolean): Promise<Running> {
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(REPO, 'bench', 'cache-tests-origin.ts')).href, path.join(dir, 'test-engine/server/server.mjs')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_protocol: 'http', npm_config_port: '0', npm_config_pidfile: path.join(work, 'origin.pid'), CACHE_TESTS_NUMBER_PARAM: numbered() ? NUMBER_PARAM : '' },
  });
  const untrack = track(child);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the suite's origin did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      if (echo) process.stderr.write(text);
      if (output.length < 4 * 1024 * 1024) output += text;
      const match = /Listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      } else if (/Listening on /.test(text)) {
        clearTimeout(timer);
        reject(new Error(`the suite's origin is not on loopback: ${text.trim()}`));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the suite's origin exited (${code}):\n${output}`)));
  });
  return {
    url,
    stop: async () => {
      await stopChild(child, { graceMs: 2000 });
      untrack();
      await writeFile(logFile, output);
    },
  };
}

async function startBootdepot(work: string, origin: string): Promise<Running> {
  const dir = path.join(work, 'bootdepot');
  for (const sub of ['data', 'assets', 'cache']) await mkdir(path.join(dir, sub), { recursive: true });
  const config: Record<string, unknown> = {
    log: { level: 'warn' },
    mirror: {
      builtins: false,
      maxConcurrentFills: 256,
      maxQueuedFills: 1024,
      mirrors: { [MIRROR]: { url: origin, maxConcurrentFills: 256, ...(numbered() ? { ignoreQueryParams: [NUMBER_PARAM] } : {}) } },
    },
  };
  const extra = process.env.BENCH_CACHE_TESTS_YAML ? (YAML.parse(process.env.BENCH_CACHE_TESTS_YAML) as unknown) : undefined;
  await writeFile(path.join(dir, 'bootdepot.yaml'), YAML.stringify(merge(config, extra)));
  const port = await freePort();
  const args = [path.join(REPO, 'bin', 'bootdepot.js'), 'serve', '--config', path.join(dir, 'bootdepot.yaml'), '--data-dir', path.join(dir, 'data'), '--assets-dir', path.join(dir, 'assets'), '--cache-dir', path.join(dir, 'cache'), '--host', '127.0.0.1', '--port', String(port)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const untrack = track(child);
  await waitForPort(port, 20_000, () => child.exitCode === null);
  return {
    url: `http://127.0.0.1:${port}/mirror/${MIRROR}`,
    stop: async () => {
      await stopChild(child, { graceMs: 5000 });
      untrack();
    },
  };
}

/** Deep merge of plain objects (the second wins); anything else is replaced. */
function merge(base: Record<string, unknown>, extra: unknown): Record<string, unknown> {
  if (extra === undefined || extra === null) return base;
  if (typeof extra !== 'object' || Array.isArray(extra)) throw new Error('BENCH_CACHE_TESTS_YAML must be a YAML mapping, e.g. "mirror: {mutableMaxAge: 0}"');
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra as Record<string, unknown>)) {
    const current = out[key];
    out[key] = current && typeof current === 'object' && !Array.isArray(current) && value && typeof value === 'object' && !Array.isArray(value) ? merge(current as Record<string, unknown>, value) : value;
  }
  return out;
}

/** nginx as the suite's docker/nginx/nginx.conf has it: everything proxied and cached as the origin's headers say. */
export function nginxCacheOptions(origin: string): NginxOptions {
  return { proxyCache: { upstream: origin, location: '/', valid: false, lock: false, revalidate: true }, workers: 1, masterProcess: true };
}

async function startNginxCache(origin: string): Promise<Running & { nginx: RunningNginx }> {
  const nginx = await startNginx(nginxCacheOptions(origin));
  return { nginx, url: nginx.url, stop: () => nginx.stop() };
}

// ---- one run of the suite's client ----

async function runClient(cache: string, suite: Suite, base: string, origin: string, work: string, numberParam = ''): Promise<RawResults> {
  const out = path.join(work, `${cache}.json`);
  await rm(out, { force: true });
  const started = performance.now();
  const child = spawn(process.execPath, ['--no-warnings', path.join(REPO, 'bench', 'cache-tests-client.ts')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CACHE_TESTS_DIR: suite.dir, CACHE_TESTS_BASE: base, CACHE_TESTS_ORIGIN: origin, CACHE_TESTS_OUT: out, CACHE_TESTS_NUMBER_PARAM: numberParam },
  });
  const untrack = track(child);
  // The client's own output (a test's dump, "ERROR: ..." lines for failed setups) goes to stderr.
  child.stdout.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  untrack();
  if (code !== 0) throw new Error(`the suite's client against ${cache} ended with ${code ?? 'a signal'} (after ${((performance.now() - started) / 1000).toFixed(0)} s)`);
  log(`${cache}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return JSON.parse(await readFile(out, 'utf8')) as RawResults;
}

// ---- the report ----

const CACHES = ['bootdepot', 'nginx'] as const;
type Cache = (typeof CACHES)[number];

export interface Counts {
  /** Tests the client ran (browser-only tests are not). */
  tests: number;
  pass: number;
  fail: number;
  notOptimal: number;
  yes: number;
  no: number;
  /** Setup, dependency or harness failures, retries: no verdict. */
  notRun: number;
  /** Required and optimal tests that pass when judged on their own, dependencies ignored. */
  passOnItsOwn: number;
  /**
   * Tests that, judged on their own, come out *retried*: the origin saw two requests with the
   * same number (or none), which is how the suite reads a cache that does not pass the client's
   * request headers (its `Req-Num`) upstream.
   */
  retriedOnItsOwn: number;
}

const ZERO: Counts = { tests: 0, pass: 0, fail: 0, notOptimal: 0, yes: 0, no: 0, notRun: 0, passOnItsOwn: 0, retriedOnItsOwn: 0 };

/** Counts a group's outcomes: each test as cache-tests.fyi shows it, and on its own. */
export function countOutcomes(outcomes: readonly { shown: Outcome; own: Outcome }[]): Counts {
  const counts: Counts = { ...ZERO };
  for (const { shown, own } of outcomes) {
    if (shown === 'not run') continue;
    counts.tests++;
    if (shown === 'pass') counts.pass++;
    else if (shown === 'fail') counts.fail++;
    else if (shown === 'not optimal') counts.notOptimal++;
    else if (shown === 'yes') counts.yes++;
    else if (shown === 'no') counts.no++;
    else counts.notRun++;
    if (own === 'pass') counts.passOnItsOwn++;
    if (own === 'retried') counts.retriedOnItsOwn++;
  }
  return counts;
}

function message(result: true | [string, string] | undefined): string {
  if (result === undefined || result === true) return '';
  const text = `${result[1]}`.replace(/\s+/g, ' ').trim();
  return (text.length > 160 ? `${text.slice(0, 157)}...` : text).replace(/[`|<>*_[\]\\]/g, (c) => `\\${c}`);
}

interface Row {
  group: SuiteGroup;
  counts: Record<Cache, Counts>;
}

interface Difference {
  id: string;
  group: string;
  shown: Record<Cache, Outcome>;
  own: Record<Cache, Outcome>;
  message: Record<Cache, string>;
}

export interface Report {
  rows: Row[];
  differing: Difference[];
  /** Tests neither client ran (browser-only). */
  skipped: number;
  perTest: string;
}

function compare(suite: Suite, ran: SuiteGroup[], results: Record<Cache, RawResults>): Report {
  const order = [...ran].sort((a, b) => rank(a.id) - rank(b.id));
  const rows: Row[] = [];
  const differing: Difference[] = [];
  let skipped = 0;
  const lines: string[] = ['test\tgroup\tkind\tbootdepot\tnginx\tbootdepot on its own\tnginx on its own\tbootdepot message\tnginx message'];
  for (const group of order) {
    const outcomes: Record<Cache, { shown: Outcome; own: Outcome }[]> = { bootdepot: [], nginx: [] };
    for (const test of group.tests) {
      if (CACHES.every((cache) => results[cache][test.id] === undefined)) {
        skipped++;
        continue;
      }
      const shown = { bootdepot: suite.outcome(test.id, results.bootdepot, true), nginx: suite.outcome(test.id, results.nginx, true) };
      const own = { bootdepot: suite.outcome(test.id, results.bootdepot, false), nginx: suite.outcome(test.id, results.nginx, false) };
      const texts = { bootdepot: message(results.bootdepot[test.id]), nginx: message(results.nginx[test.id]) };
      for (const cache of CACHES) outcomes[cache].push({ shown: shown[cache], own: own[cache] });
      if (shown.bootdepot !== shown.nginx) differing.push({ id: test.id, group: group.id, shown, own, message: texts });
      lines.push([test.id, group.id, test.kind ?? 'required', shown.bootdepot, shown.nginx, own.bootdepot, own.nginx, texts.bootdepot, texts.nginx].join('\t'));
    }
    rows.push({ group, counts: { bootdepot: countOutcomes(outcomes.bootdepot), nginx: countOutcomes(outcomes.nginx) } });
  }
  return { rows, differing, skipped, perTest: `${lines.join('\n')}\n` };
}

function rank(groupId: string): number {
  const i = FOCUS.indexOf(groupId);
  return i >= 0 ? i : FOCUS.length;
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

function countCells(c: Counts): string[] {
  return [String(c.pass), String(c.fail), String(c.notOptimal), `${c.yes}/${c.no}`, String(c.notRun), String(c.passOnItsOwn), String(c.retriedOnItsOwn)];
}

function sum(rows: Row[], cache: Cache): Counts {
  const total: Counts = { ...ZERO };
  for (const r of rows) for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += r.counts[cache][key];
  return total;
}

function describe(d: Difference, cache: Cache): string {
  const own = d.shown[cache] === 'dependency failed' ? `, on its own ${d.own[cache]}` : '';
  return `${cache} ${d.shown[cache]}${own}${d.message[cache] ? ` (${d.message[cache]})` : ''}`;
}

/** Differences with the same outcomes and messages on both sides, one line each. */
function sameOutcomes(differences: Difference[]): string[] {
  const lines = new Map<string, Difference[]>();
  for (const d of differences) {
    const key = `${describe(d, 'bootdepot')}; ${describe(d, 'nginx')}`;
    lines.set(key, [...(lines.get(key) ?? []), d]);
  }
  return [...lines].map(([key, ds]) => `- ${ds.map((d) => `\`${d.id}\``).join(', ')} (${[...new Set(ds.map((d) => d.group))].join(', ')}): ${key}`);
}

/** The per-group tables and the differing tests (with messages for the freshness, conditional, partial and vary groups; ids for the others). */
export function renderReport(report: Report, about: { suite: string; bootdepot: string; nginx: string; date: string; numbered: boolean }): string {
  const header = row(['group', 'tests', ...CACHES.flatMap((cache) => [`${cache} pass`, 'fail', 'not optimal', 'checks yes/no', 'not run', 'on its own: pass', 'retried'])]);
  const separator = row(Array.from({ length: 2 + CACHES.length * 7 }, () => '---'));
  // Both clients ran the same tests, so either cache's count is the group's.
  const groupRow = (r: Row) => row([r.group.id, r.counts.bootdepot.tests, ...CACHES.flatMap((cache) => countCells(r.counts[cache]))]);
  const focus = report.rows.filter((r) => FOCUS.includes(r.group.id));
  const others = report.rows.filter((r) => !FOCUS.includes(r.group.id));
  const totals = (label: string, rows: Row[]) => (rows.length > 0 ? [row([`**${label}**`, sum(rows, 'bootdepot').tests, ...CACHES.flatMap((cache) => countCells(sum(rows, cache)))])] : []);
  const focusDiffs = report.differing.filter((d) => FOCUS.includes(d.group));
  const otherDiffs = report.differing.filter((d) => !FOCUS.includes(d.group));
  const byGroup = new Map<string, string[]>();
  for (const d of otherDiffs) byGroup.set(d.group, [...(byGroup.get(d.group) ?? []), `\`${d.id}\``]);
  return `Written by \`CACHE_TESTS_DIR=... npm run bench -- cache-tests\` (bench/cache-tests.ts) on ${about.date}:
bootdepot ${about.bootdepot}, nginx ${about.nginx}, cache-tests ${about.suite}. Both caches in
front of one instance of the suite's origin on loopback; bootdepot's mirror with the default
settings, nginx with \`proxy_cache\` and \`proxy_cache_revalidate on\` (the suite's reference setup).
${about.numbered ? `The request number reaches the origin through the mirror as the query parameter \`${NUMBER_PARAM}\`, left out of the mirror's cache key.` : 'Run with CACHE_TESTS_PLAIN=1: the request number does not reach the origin through the mirror.'}

Counted as cache-tests.fyi shows them: *pass* and *fail* for required tests, *not optimal* for
optimal ones that failed (allowed, but the cache could have done better), *checks* for tests of
behaviour the specification leaves open, *not run* for a failed setup or a failed dependency
(a test this one builds on did not pass). *On its own*, dependencies ignored: required and
optimal tests that pass, and tests the suite reads as *retried* (the origin saw two requests
carrying the same number, or none: the client's \`Req-Num\` did not reach it).
${report.skipped} browser-only tests are not run.

${header}
${separator}
${[...focus.map(groupRow), ...totals('freshness, conditional, partial, vary', focus), ...others.map(groupRow), ...totals('all groups', report.rows)].join('\n')}

Tests of the freshness, conditional, partial and vary groups whose results differ (${focusDiffs.length}):

${focusDiffs.length === 0 ? 'None.' : sameOutcomes(focusDiffs).join('\n')}

Other groups, tests whose results differ (${otherDiffs.length}; \`CACHE_TESTS_ID=ID\` shows one test's exchanges):

${otherDiffs.length === 0 ? 'None.' : [...byGroup].map(([group, ids]) => `- ${group}: ${ids.join(', ')}`).join('\n')}
`;
}

// ---- the benchmark ----

function bootdepotRevision(): string {
  try {
    return `commit ${execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 }).trim()}`;
  } catch {
    return 'commit ?';
  }
}

function nginxVersion(binary: string): string {
  // nginx -v prints to stderr.
  const result = spawnSync(binary, ['-v'], { encoding: 'utf8', timeout: 5000 });
  return `${result.stderr}${result.stdout}`.replace(/^nginx version:\s*/, '').trim() || '?';
}

/** Runs the suite against both caches; returns the section for docs/mirror.md (undefined when only some groups or one test ran). */
export async function cacheTestsBenchmark(): Promise<string | undefined> {
  const dir = suiteDir();
  const nginxBinary = findNginx();
  if (!nginxBinary) throw new Error('nginx is needed for the comparison: apt-get install nginx');
  const suite = await loadSuite(dir);
  const onlyTest = process.env.CACHE_TESTS_ID ?? '';
  const onlyGroups = (process.env.CACHE_TESTS_GROUPS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const ran = onlyTest ? suite.groups.filter((g) => g.tests.some((t) => t.id === onlyTest)).map((g) => ({ ...g, tests: g.tests.filter((t) => t.id === onlyTest) })) : onlyGroups.length > 0 ? suite.groups.filter((g) => onlyGroups.includes(g.id)) : suite.groups;
  if (ran.length === 0) throw new Error(onlyTest ? `no test ${onlyTest} in the suite` : `no group ${onlyGroups.join(', ')} in the suite: ${suite.groups.map((g) => g.id).join(', ')}`);

  await mkdir(WORK, { recursive: true });
  const work = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-bench-cache-tests-'));
  const started: Running[] = [];
  try {
    const origin = await startOrigin(dir, work, path.join(WORK, 'origin.log'), onlyTest !== '');
    started.push(origin);
    const bootdepot = await startBootdepot(work, origin.url);
    started.push(bootdepot);
    const nginx = await startNginxCache(origin.url);
    started.push(nginx);
    log(`origin ${origin.url}; bootdepot ${bootdepot.url}; nginx ${nginx.url}; ${ran.reduce((n, g) => n + g.tests.length, 0)} tests in ${ran.length} groups`);
    const results: Record<Cache, RawResults> = {
      bootdepot: await runClient('bootdepot', suite, bootdepot.url, origin.url, work, numbered() ? NUMBER_PARAM : ''),
      nginx: await runClient('nginx', suite, nginx.url, origin.url, work),
    };
    if (onlyTest) {
      for (const cache of CACHES) log(`${cache}: ${onlyTest} ${suite.outcome(onlyTest, results[cache], false)} ${message(results[cache][onlyTest])}`);
      return undefined;
    }
    const report = compare(suite, ran, results);
    for (const cache of CACHES) await writeFile(path.join(WORK, `${cache}.json`), JSON.stringify(results[cache], null, 2));
    await writeFile(path.join(WORK, 'per-test.tsv'), report.perTest);
    const markdown = renderReport(report, { suite: suite.revision, bootdepot: bootdepotRevision(), nginx: nginxVersion(nginxBinary), date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', numbered: numbered() });
    process.stdout.write(markdown);
    log(`every result, test by test: ${path.relative(REPO, path.join(WORK, 'per-test.tsv'))}`);
    // Only a run of the whole suite goes into the docs: dependencies cross groups.
    return onlyGroups.length > 0 ? undefined : markdown;
  } finally {
    for (const server of started.reverse()) await server.stop().catch((error: unknown) => log(`stopping: ${(error as Error).message}`));
    await rm(work, { recursive: true, force: true });
  }
}
