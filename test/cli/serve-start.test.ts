/**
 * Starting and stopping `bootdepot serve` as operators do: what a failed start prints, and that
 * stopping the launcher (npm start, npx) stops the server and frees its port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { freePort, waitForPort } from '../support/net.ts';
import { makeTree, REPO_ROOT, waitFor } from '../helpers.ts';
import { runIn } from './run.ts';

const CLEAN_ENV = { BOOTDEPOT_CONFIG: undefined, BOOTDEPOT_DATA_DIR: undefined, BOOTDEPOT_ASSETS_DIR: undefined, BOOTDEPOT_CACHE_DIR: undefined, BOOTDEPOT_PORT: undefined };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('bootdepot serve that cannot start', () => {
  it('says in one line that the port is in use and how to choose another', async (t) => {
    const dir = await makeTree(t, { 'data/.keep': '', 'assets/.keep': '' });
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    t.after(() => blocker.close());
    const port = (blocker.address() as net.AddressInfo).port;
    const result = await runIn(dir, ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', 'data', '--assets-dir', 'assets', '--cache-dir', 'cache'], CLEAN_ENV);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `bootdepot: cannot listen on 127.0.0.1:${port}: address already in use (another bootdepot running? choose another with --port or server.port)\n`,
    );
    assert.doesNotMatch(result.stdout, /"stack"/);
  });

  it('says which directory is missing and which flag sets it, and creates no data directory', async (t) => {
    const dir = await makeTree(t, { 'assets/.keep': '' });
    const serve = await runIn(dir, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', 'nope', '--assets-dir', 'assets', '--cache-dir', 'cache'], CLEAN_ENV);
    assert.equal(serve.code, 1);
    assert.equal(serve.stderr, `bootdepot: data directory ${path.join(dir, 'nope')} does not exist (set it with --data-dir, BOOTDEPOT_DATA_DIR or paths.data)\n`);
    assert.equal(existsSync(path.join(dir, 'nope')), false, 'serve did not create the data directory');

    const assets = await runIn(dir, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', 'assets', '--assets-dir', 'gone', '--cache-dir', 'cache'], CLEAN_ENV);
    assert.equal(assets.code, 1);
    assert.match(assets.stderr, /^bootdepot: assets directory \S+gone does not exist \(set it with --assets-dir, BOOTDEPOT_ASSETS_DIR or paths\.assets\)\n$/);

    const check = await runIn(dir, ['check', '--data-dir', 'nope'], CLEAN_ENV);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /^data directory \S+nope does not exist \(set it with --data-dir, BOOTDEPOT_DATA_DIR or paths\.data\)$/m);
    const render = await runIn(dir, ['render', '--mac', '52:54:00:12:34:56', '--data-dir', 'nope'], CLEAN_ENV);
    assert.equal(render.code, 2);
    assert.match(render.stderr, /^bootdepot: data directory \S+nope does not exist/m);
    assert.equal(existsSync(path.join(dir, 'nope')), false);
  });

  it('says when the mirror cache directory cannot be used', async (t) => {
    const dir = await makeTree(t, { 'data/.keep': '', 'assets/.keep': '', 'file': 'not a directory' });
    const result = await runIn(dir, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', 'data', '--assets-dir', 'assets', '--cache-dir', 'file/cache'], CLEAN_ENV);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^bootdepot: mirror cache directory \S+file\/cache cannot be used: a parent is not a directory \(set it with --cache-dir, BOOTDEPOT_CACHE_DIR or mirror\.cacheDir\)\n$/);
  });
});

describe('bootdepot --version', () => {
  it('prints the package version for --version and -V', async (t) => {
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const dir = await makeTree(t, {});
    for (const flag of ['--version', '-V']) {
      const result = await runIn(dir, [flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `${version}\n`);
    }
  });
});

/** Starts `npm ARGS` in the repository with a temp data dir on a free port; returns npm and the server's pid. */
async function launch(t: TestContext, args: string[]): Promise<{ launcher: ChildProcess; serverPid: number; port: number }> {
  const dir = await makeTree(t, { 'data/.keep': '', 'cache/.keep': '' });
  const port = await freePort();
  const launcher = spawn('npm', args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      BOOTDEPOT_HOST: '127.0.0.1',
      BOOTDEPOT_PORT: String(port),
      BOOTDEPOT_DATA_DIR: path.join(dir, 'data'),
      BOOTDEPOT_CACHE_DIR: path.join(dir, 'cache'),
      BOOTDEPOT_LOG_LEVEL: 'info',
    },
  });
  let log = '';
  launcher.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  launcher.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  let serverPid = 0;
  t.after(() => {
    launcher.kill('SIGKILL');
    if (serverPid && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
  });
  await waitForPort(port, 60_000, () => launcher.exitCode === null);
  await waitFor(() => /"pid":\d+.*bootdepot listening/.test(log), 10_000, `the listening line in:\n${log}`);
  serverPid = Number(/"pid":(\d+).*bootdepot listening/.exec(log)?.[1]);
  assert.notEqual(serverPid, launcher.pid, 'the server runs in a process of its own');
  return { launcher, serverPid, port };
}

describe('stopping the launcher stops the server', () => {
  it('npm start: SIGTERM to npm frees the port and leaves no node process', async (t) => {
    const { launcher, serverPid, port } = await launch(t, ['start']);
    launcher.kill('SIGTERM');
    await waitFor(() => !alive(serverPid), 15_000, 'the server process to exit');
    assert.equal(await portRefuses(port), true, 'the port is free');
  });

  it('npx bootdepot serve: SIGTERM to npx frees the port and leaves no node process', async (t) => {
    const { launcher, serverPid, port } = await launch(t, ['exec', '--', 'bootdepot', 'serve']);
    launcher.kill('SIGTERM');
    await waitFor(() => !alive(serverPid), 15_000, 'the server process to exit');
    assert.equal(await portRefuses(port), true, 'the port is free');
  });

  it('npm start: a server whose npm is killed outright exits too', async (t) => {
    const { launcher, serverPid, port } = await launch(t, ['start']);
    launcher.kill('SIGKILL');
    await waitFor(() => !alive(serverPid), 15_000, 'the server process to exit');
    assert.equal(await portRefuses(port), true, 'the port is free');
  });
});
