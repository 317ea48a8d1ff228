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
/** Selected by a group whose profile's kernel is missing: it waits. */
const WAITING = '52:54:00:00:00:99';

const run = runBootdepot;

async function server(t: TestContext) {
  const built = await testApp(t, {
    data: {
      'profiles/main.yaml': 'boot: {kernel: /assets/k}\n',
      'profiles/rescue.yaml': 'boot: {kernel: /assets/r}\n',
      'profiles/gone.yaml': 'boot: {kernel: /assets/missing-kernel}\n',
      'groups/d.yaml': 'profile: main\n',
      'groups/w.yaml': `profile: gone\nselector:\n  mac: "${WAITING}"\n`,
    },
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
    assert.match(list.stdout, /^DEVICE\s+STAGE\s+PROFILE\s+BOOTS\s+LAST SEEN\s+IP\s+NEXT BOOT\s+PROBLEM$/m);
    assert.match(list.stdout, /^52:54:00:12:34:56\s+script\s+main\s+1\s+\S+\s+10\.0\.0\.5\s+-\s+-$/m);

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

  it('list shows a waiting machine as waiting, and why; show has the whole problem', async (t) => {
    const { env, app } = await server(t);
    await app.inject({ url: `/ipxe?mac=${WAITING}`, remoteAddress: '10.0.0.6' });
    const list = await run(['devices', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    const row = list.stdout.split('\n').find((line) => line.startsWith(WAITING)) ?? '';
    assert.match(row, /^52:54:00:00:00:99\s+waiting\s+gone\s+0\s+\S+\s+10\.0\.0\.6\s+-\s+\S.*missing-kernel/);
    const show = await run(['devices', 'show', WAITING], env);
    const device = JSON.parse((await run(['devices', 'show', WAITING, '--json'], env)).stdout) as { device: { problem: string } };
    assert.match(device.device.problem, /missing-kernel/);
    assert.ok(show.stdout.includes(`\nproblem    ${device.device.problem}\n`), show.stdout);
    const listed = JSON.parse((await run(['devices', 'list', '--json', '--stage', 'waiting'], env)).stdout) as { id: string; problem: string }[];
    assert.deepEqual(listed.map((d) => [d.id, d.problem]), [[WAITING, device.device.problem]], '--json has the whole problem');
  });

  it('list cuts a long problem to one column', async (t) => {
    const { env, store } = await server(t);
    const long = `no group matches: ${'x'.repeat(200)} (the end)`;
    await store?.recordEvents([
      { deviceId: '52:54:00:00:00:42', at: new Date(), detail: { type: 'script', ip: '10.0.0.7', userAgent: 'iPXE', identity: {}, action: 'wait', reason: long } },
    ]);
    const row = (await run(['devices', 'list'], env)).stdout.split('\n').find((line) => line.startsWith('52:54:00:00:00:42')) ?? '';
    assert.match(row, /\s{2}no group matches: x+…x+ \(the end\)$/);
    assert.ok(row.length < 200, row);
    assert.ok((await run(['devices', 'show', '52:54:00:00:00:42'], env)).stdout.includes(long));
  });

  it('prints what devices sent with its control characters escaped, in list, show and watch', async (t) => {
    const { env, store } = await server(t);
    const evil = '52:54:00:00:00:66';
    const message = 'done\u001b[2J\u001b]0;pwned\u0007 \u009b31m';
    const record = () =>
      store?.recordEvents([
        {
          deviceId: evil,
          bootId: 'e1',
          at: new Date(),
          detail: { type: 'script', ip: '10.0.0.8', userAgent: 'iPXE', identity: { mac: evil, hostname: 'host\u001b[31m', serial: 'SN\u0000\u007f\u202e' }, action: 'wait', reason: 'waits\u001b[1m' },
        },
        { deviceId: evil, at: new Date(), detail: { type: 'report', state: 'failed', message, ip: '10.0.0.8', via: 'events' } },
      ]);
    await record();
    const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
    const show = await run(['devices', 'show', evil], env);
    assert.equal(show.code, 0, show.stderr);
    assert.doesNotMatch(show.stdout, controls);
    assert.ok(show.stdout.includes('(reported failed: done\\x1b[2J\\x1b]0;pwned\\x07 \\u009b31m)'), show.stdout);
    assert.ok(show.stdout.includes('hostname=host\\x1b[31m serial=SN\\x00\\x7f\\u202e'), show.stdout);
    assert.ok(show.stdout.includes('reported failed: done\\x1b[2J'), 'the event line too');
    const list = await run(['devices', 'list'], env);
    assert.doesNotMatch(list.stdout, controls);
    assert.ok(list.stdout.includes('waits\\x1b[1m'), list.stdout);
    const json = await run(['devices', 'show', evil, '--json'], env);
    assert.doesNotMatch(json.stdout, controls);
    const parsed = JSON.parse(json.stdout) as { device: { lastReport: { message: string }; identity: { serial: string } } };
    assert.equal(parsed.device.lastReport.message, message, '--json keeps the exact text');
    assert.equal(parsed.device.identity.serial, 'SN\u0000\u007f\u202e');

    const child = spawn(process.execPath, [path.join(ROOT, 'bin/bootdepot.js'), 'devices', 'watch', '--device', evil], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    t.after(() => child.kill('SIGKILL'));
    await waitFor(
      async () => {
        await record();
        return out.includes('pwned');
      },
      15_000,
      'a watched report',
    );
    child.kill('SIGINT');
    assert.doesNotMatch(out, controls);
    assert.ok(out.includes('reported failed: done\\x1b[2J\\x1b]0;pwned\\x07'), out);
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
