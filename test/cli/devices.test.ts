/** `bootdepot devices` against a running server. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { STAGES } from '../../src/state/model.ts';
import { runBootdepot, testApp, waitFor } from '../helpers.ts';

const ROOT = path.join(import.meta.dirname, '../..');
const TOKEN = 'devices-cli-token-0123456789';
const MAC = '52:54:00:12:34:56';

const run = runBootdepot;

async function server(t: TestContext) {
  const built = await testApp(t, {
    data: { 'profiles/main.yaml': 'boot: {kernel: /assets/k}\n', 'profiles/rescue.yaml': 'boot: {kernel: /assets/r}\n', 'groups/d.yaml': 'profile: main\n' },
    // Profiles whose images are missing make machines wait (and not count a boot).
    assets: { k: 'kernel', r: 'rescue kernel' },
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

  it('watch says the connection closed and exits non-zero when the server goes away', async (t) => {
    const { env, app } = await server(t);
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/bootdepot.js'), 'devices', 'watch'], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    t.after(() => child.kill('SIGKILL'));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor(
      async () => {
        await app.inject({ url: '/ipxe?mac=52:54:00:00:00:08' });
        return out.includes('52:54:00:00:00:08  script boot main');
      },
      15_000,
      'the watcher to be connected',
    );
    await app.close();
    assert.equal(await exited, 1);
    assert.match(err, new RegExp(`^bootdepot: connection to ${env.BOOTDEPOT_SERVER.replace(/[.]/g, '\\.')} closed: .+\n$`));
  });

  it('list --stage with an unknown stage lists the stages there are, without asking the server', async () => {
    const result = await run(['devices', 'list', '--stage', 'nonsense'], { BOOTDEPOT_SERVER: 'http://127.0.0.1:9', BOOTDEPOT_ADMIN_TOKEN: TOKEN });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `bootdepot: --stage "nonsense": expected one of ${STAGES.join(', ')}\n`);
  });

  it('the API answers an unknown ?stage= with a 400 that names every stage', async (t) => {
    const { app } = await server(t);
    const res = await app.inject({ url: '/api/v1/devices?stage=nonsense', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json<{ error: string }>().error, `querystring/stage must be one of ${STAGES.join(', ')}`);
  });
});
