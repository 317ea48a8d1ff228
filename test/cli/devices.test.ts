/** `bootdepot devices` against a running server. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { runBootdepot, testApp, waitFor } from '../helpers.ts';

const ROOT = path.join(import.meta.dirname, '../..');
const TOKEN = 'devices-cli-token-0123456789';
const MAC = '52:54:00:12:34:56';

const run = runBootdepot;

async function server(t: TestContext) {
  const built = await testApp(t, {
    data: { 'profiles/main.yaml': 'boot: {kernel: /assets/k}\n', 'profiles/rescue.yaml': 'boot: {kernel: /assets/r}\n', 'groups/d.yaml': 'profile: main\n' },
    overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }],
  });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  await built.app.inject({ url: `/ipxe?mac=${MAC}`, remoteAddress: '10.0.0.5' });
  return { ...built, env: { BOOTDEPOT_SERVER: url, BOOTDEPOT_ADMIN_TOKEN: TOKEN } };
}

describe('bootdepot devices', () => {
  it('lists, shows, steers and deletes devices', async (t) => {
    const { env } = await server(t);
    const list = await run(['devices', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^DEVICE\s+STAGE\s+PROFILE\s+BOOTS\s+LAST SEEN\s+IP\s+NEXT BOOT$/m);
    assert.match(list.stdout, /^52:54:00:12:34:56\s+script\s+main\s+1\s+\S+\s+10\.0\.0\.5\s+-$/m);

    const next = await run(['devices', 'next', MAC.replace(/:/g, '-'), 'once', 'rescue', '--reason', 'memory test'], env);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stdout, `${MAC}: next boot once rescue\n`);

    const show = await run(['devices', 'show', MAC], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^next boot {2}once rescue: memory test$/m);
    assert.match(show.stdout, /52:54:00:12:34:56 {2}script boot main: group d matched/);
    assert.match(show.stdout, /next boot once rescue \(memory test\) by api$/m);

    const json = JSON.parse((await run(['devices', 'list', '--json', '--profile', 'main'], env)).stdout) as { id: string }[];
    assert.deepEqual(json.map((d) => d.id), [MAC]);

    const bad = await run(['devices', 'next', MAC, 'once'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 action once needs a profile/);
    assert.equal((await run(['devices', 'next', MAC, 'clear'], env)).stdout, `${MAC}: next boot -\n`);
    assert.equal((await run(['devices', 'delete', MAC], env)).code, 0);
    const gone = await run(['devices', 'show', MAC], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /404 unknown device/);
    const noToken = await run(['devices', 'list'], { ...env, BOOTDEPOT_ADMIN_TOKEN: 'wrong-token-wrong-token' });
    assert.match(noToken.stderr, /rejected the token \(401\)/);
  });

  it('watches events live', async (t) => {
    const { env, app } = await server(t);
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/bootdepot.js'), 'devices', 'watch'], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    t.after(() => child.kill('SIGKILL'));
    // Keep asking until the watcher, once connected, has printed an event (bounded by waitFor).
    await waitFor(
      async () => {
        await app.inject({ url: '/ipxe?mac=52:54:00:00:00:07' });
        return out.includes('52:54:00:00:00:07  script boot main');
      },
      15_000,
      'a watched event',
    );
    child.kill('SIGINT');
  });
});
