/**
 * The client half of the cache-tests benchmark (bench/cache-tests.ts starts it, once per cache):
 * runs the http-tests/cache-tests suite's own client over its test groups against one cache and
 * writes the raw results (test id -> true or [error name, message]) as JSON to a file.
 *
 * Environment (all set by bench/cache-tests.ts):
 * - CACHE_TESTS_DIR: the suite's checkout;
 * - CACHE_TESTS_BASE: the cache's base URL (test URLs are BASE/test/UUID...);
 * - CACHE_TESTS_ORIGIN: the suite's origin server, for the harness's own requests;
 * - CACHE_TESTS_OUT: where to write the results;
 * - CACHE_TESTS_GROUPS (optional): group ids to run, comma-separated; default all;
 * - CACHE_TESTS_ID (optional): run only this test, printing its requests and responses;
 * - CACHE_TESTS_NUMBER_PARAM (optional): also put each test request's number (its `Req-Num`
 *   header) into its URL as this query parameter, for a cache that passes no request headers
 *   upstream (bench/cache-tests-origin.ts takes it out again).
 *
 * The suite tells its origin what to answer with `PUT BASE/config/UUID` and reads what the origin
 * saw with `GET BASE/state/UUID`. Those two are the harness talking to itself, not requests a
 * cache is tested with, and bootdepot's mirror takes no PUT: they go to the origin directly, for
 * both caches alike. Every test request (`BASE/test/...`) goes through the cache unchanged.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface SuiteTest {
  id: string;
  dump?: boolean;
}
interface SuiteGroup {
  id: string;
  tests: SuiteTest[];
}
interface Runner {
  runTests(groups: SuiteGroup[], browserCache: boolean, base: string): Promise<void>;
  getResults(): Record<string, unknown>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this script is started by bench/cache-tests.ts)`);
  return value;
}

const dir = required('CACHE_TESTS_DIR');
const base = required('CACHE_TESTS_BASE').replace(/\/+$/, '');
const origin = required('CACHE_TESTS_ORIGIN').replace(/\/+$/, '');
const out = required('CACHE_TESTS_OUT');
const onlyGroups = (process.env.CACHE_TESTS_GROUPS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const onlyTest = process.env.CACHE_TESTS_ID ?? '';

const numberParam = process.env.CACHE_TESTS_NUMBER_PARAM ?? '';

/** The request's `Req-Num` header (the suite passes headers as [name, value] pairs). */
function requestNumber(init: RequestInit | undefined): string | undefined {
  const headers = init?.headers;
  if (headers === undefined) return undefined;
  const pairs = Array.isArray(headers) ? headers : headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  return pairs.find(([name]) => name?.toLowerCase() === 'req-num')?.[1];
}

const originalFetch = globalThis.fetch;
const harnessPaths = [`${base}/config/`, `${base}/state/`];
globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (harnessPaths.some((prefix) => url.startsWith(prefix))) return originalFetch(origin + url.slice(base.length), init);
  const number = numberParam && url.startsWith(`${base}/test/`) ? requestNumber(init) : undefined;
  if (number !== undefined) return originalFetch(`${url}${url.includes('?') ? '&' : '?'}${numberParam}=${encodeURIComponent(number)}`, init);
  return originalFetch(input, init);
};

const suiteModule = (file: string) => pathToFileURL(path.join(dir, file)).href;
const runner = (await import(suiteModule('test-engine/client/runner.mjs'))) as Runner;
const groups = ((await import(suiteModule('tests/index.mjs'))) as { default: SuiteGroup[] }).default;

let selected = onlyGroups.length > 0 ? groups.filter((group) => onlyGroups.includes(group.id)) : groups;
const unknown = onlyGroups.filter((id) => !groups.some((group) => group.id === id));
if (unknown.length > 0) throw new Error(`unknown group(s) ${unknown.join(', ')}: the suite has ${groups.map((g) => g.id).join(', ')}`);
if (onlyTest) {
  const group = groups.find((g) => g.tests.some((t) => t.id === onlyTest));
  const test = group?.tests.find((t) => t.id === onlyTest);
  if (!group || !test) throw new Error(`no test ${onlyTest} in the suite`);
  test.dump = true;
  selected = [{ ...group, tests: [test] }];
}

await runner.runTests(selected, false, base);
await writeFile(out, JSON.stringify(runner.getResults(), null, 2));
