import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { countOutcomes, nginxCacheOptions, renderReport, suiteDir, type Counts, type Report } from '../../bench/cache-tests.ts';
import { takeNumber } from '../../bench/cache-tests-number.ts';
import { nginxConfig } from '../support/nginx.ts';

describe('cache-tests benchmark: the suite checkout', () => {
  it('says how to get the suite when CACHE_TESTS_DIR is not set', () => {
    assert.throws(() => suiteDir({}), (error: Error) => /CACHE_TESTS_DIR is not set/.test(error.message) && /git clone https:\/\/github\.com\/http-tests\/cache-tests/.test(error.message) && /npm install/.test(error.message));
  });

  it('names the files a directory lacks, then a missing undici', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bootdepot-cache-tests-'));
    try {
      assert.throws(() => suiteDir({ CACHE_TESTS_DIR: dir }), /is not a cache-tests checkout \(no test-engine\/server\/server\.mjs, test-engine\/client\/runner\.mjs, test-engine\/lib\/results\.mjs, tests\/index\.mjs\)/);
      for (const file of ['test-engine/server/server.mjs', 'test-engine/client/runner.mjs', 'test-engine/lib/results.mjs', 'tests/index.mjs']) {
        await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
        await writeFile(path.join(dir, file), '');
      }
      assert.throws(() => suiteDir({ CACHE_TESTS_DIR: dir }), /has no node_modules\/undici: run \(cd .* && npm install --omit=dev\)/);
      await mkdir(path.join(dir, 'node_modules', 'undici'), { recursive: true });
      assert.equal(suiteDir({ CACHE_TESTS_DIR: dir }), dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('cache-tests benchmark: counting', () => {
  it('counts each test once as shown, leaves out tests nobody ran, and counts passes on their own apart', () => {
    const counts = countOutcomes([
      { shown: 'pass', own: 'pass' },
      { shown: 'fail', own: 'fail' },
      { shown: 'not optimal', own: 'not optimal' },
      { shown: 'yes', own: 'yes' },
      { shown: 'no', own: 'no' },
      { shown: 'dependency failed', own: 'pass' },
      { shown: 'setup failed', own: 'setup failed' },
      { shown: 'dependency failed', own: 'retried' },
      { shown: 'not run', own: 'not run' },
    ]);
    assert.deepEqual(counts, { tests: 8, pass: 1, fail: 1, notOptimal: 1, yes: 1, no: 1, notRun: 3, passOnItsOwn: 2, retriedOnItsOwn: 1 });
  });

  it('renders both caches side by side, the asked-for groups first with totals, and the tests that differ', () => {
    const c = (pass: number, fail: number): Counts => ({ tests: pass + fail, pass, fail, notOptimal: 0, yes: 0, no: 0, notRun: 0, passOnItsOwn: pass, retriedOnItsOwn: fail });
    const report: Report = {
      rows: [
        { group: { id: 'partial', name: 'Combining Partial Content', tests: [] }, counts: { bootdepot: c(1, 1), nginx: c(2, 0) } },
        { group: { id: 'status', name: 'Status', tests: [] }, counts: { bootdepot: c(3, 0), nginx: c(2, 1) } },
      ],
      differing: [
        { id: 'partial-a', group: 'partial', shown: { bootdepot: 'fail', nginx: 'pass' }, own: { bootdepot: 'fail', nginx: 'pass' }, message: { bootdepot: 'Response 1 status is 502, not 206', nginx: '' } },
        { id: 'status-b', group: 'status', shown: { bootdepot: 'pass', nginx: 'fail' }, own: { bootdepot: 'pass', nginx: 'fail' }, message: { bootdepot: '', nginx: 'x' } },
      ],
      skipped: 5,
      perTest: '',
    };
    const text = renderReport(report, { suite: '0.4.5', bootdepot: 'commit abc', nginx: 'nginx/1.22.1', date: '2026-12-01 15:00 UTC', numbered: true });
    const lines = text.split('\n');
    const partial = lines.findIndex((l) => l.startsWith('| partial |'));
    const focusTotal = lines.findIndex((l) => l.startsWith('| **freshness, conditional, partial, vary** |'));
    const status = lines.findIndex((l) => l.startsWith('| status |'));
    assert.ok(partial > 0 && focusTotal > partial && status > focusTotal, text);
    assert.equal(lines[partial], '| partial | 2 | 1 | 1 | 0 | 0/0 | 0 | 1 | 1 | 2 | 0 | 0 | 0/0 | 0 | 2 | 0 |');
    assert.equal(lines[focusTotal], '| **freshness, conditional, partial, vary** | 2 | 1 | 1 | 0 | 0/0 | 0 | 1 | 1 | 2 | 0 | 0 | 0/0 | 0 | 2 | 0 |');
    assert.ok(lines.includes('| **all groups** | 5 | 4 | 1 | 0 | 0/0 | 0 | 4 | 1 | 4 | 1 | 0 | 0/0 | 0 | 4 | 1 |'), text);
    assert.ok(lines.includes('- `partial-a` (partial): bootdepot fail (Response 1 status is 502, not 206); nginx pass'), text);
    assert.ok(lines.includes('- status: `status-b`'), text);
    assert.match(text, /5 browser-only tests are not run/);
    assert.match(text, /as the query parameter `cache-tests-req-num`, left out of the mirror's cache key/);
  });
});

describe('cache-tests benchmark: the request number through the mirror', () => {
  it("moves the number from the query to the Req-Num header and leaves the test's own query", () => {
    const request = { url: '/test/u?test=A&cache-tests-req-num=2', headers: {} as Record<string, string> };
    takeNumber(request, 'cache-tests-req-num');
    assert.deepEqual(request, { url: '/test/u?test=A', headers: { 'req-num': '2' } });
    const only = { url: '/test/u?cache-tests-req-num=3', headers: {} as Record<string, string> };
    takeNumber(only, 'cache-tests-req-num');
    assert.deepEqual(only, { url: '/test/u', headers: { 'req-num': '3' } });
  });

  it('keeps a Req-Num header the request has, and a URL without the parameter', () => {
    const request = { url: '/test/u?cache-tests-req-num=2', headers: { 'req-num': '1' } as Record<string, string> };
    takeNumber(request, 'cache-tests-req-num');
    assert.deepEqual(request, { url: '/test/u', headers: { 'req-num': '1' } });
    const plain = { url: '/test/u?test=B', headers: {} as Record<string, string> };
    takeNumber(plain, 'cache-tests-req-num');
    assert.deepEqual(plain, { url: '/test/u?test=B', headers: {} });
  });
});

describe('cache-tests benchmark: nginx as the suite runs it', () => {
  it('proxies every path and lets only the origin say what is kept', () => {
    const config = nginxConfig({ ...nginxCacheOptions('http://127.0.0.1:8000'), port: 8002, dir: '/tmp/x', mimeTypes: undefined });
    assert.match(config, /location \/ \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:8000;/);
    assert.match(config, /proxy_cache_revalidate on;/);
    assert.doesNotMatch(config, /proxy_cache_valid/);
    assert.doesNotMatch(config, /proxy_cache_lock/);
  });
});
