/**
 * The dashboard costs nothing without the admin token: app.ts does not even import its module.
 * Checked in a child process with a module resolve hook that lists what gets loaded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const HELPERS = pathToFileURL(new URL('../helpers.ts', import.meta.url).pathname).href;

const CHILD = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.push(result.url); return result; } });
const { testApp } = await import(${JSON.stringify(HELPERS)});
const cleanups = [];
const token = process.argv[1];
const { app } = await testApp({ after: (fn) => cleanups.push(fn) }, { data: { 'profiles/a.yaml': 'boot: {kernel: /assets/a}\\n' }, overrides: token ? [{ key: 'adminToken', value: token, source: 'test' }] : [] });
const status = (await app.inject({ url: '/ui/login' })).statusCode;
for (const fn of cleanups.reverse()) await fn();
process.stdout.write(JSON.stringify({ status, ui: loaded.filter((url) => url.includes('/src/ui/') || url.includes('htmx')) }));
`;

async function run(token: string): Promise<{ status: number; ui: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD, token], { timeout: 30_000 });
  return JSON.parse(stdout) as { status: number; ui: string[] };
}

describe('the dashboard module', () => {
  it('is not loaded without the admin token, and is with it', async () => {
    const off = await run('');
    assert.equal(off.status, 403);
    assert.deepEqual(off.ui, []);
    const on = await run('lazy-load-token-0123456789');
    assert.equal(on.status, 200);
    assert.ok(on.ui.some((url) => url.endsWith('/src/ui/routes.ts')), JSON.stringify(on.ui));
  });
});
