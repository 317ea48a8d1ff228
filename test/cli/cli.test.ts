/** The `bootdepot` command run as operators run it: a child process on the bin script. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { makeTree, runBootdepot } from '../helpers.ts';

const ROOT = path.join(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/bootdepot.js');
const SHIPPED = path.join(ROOT, 'config/bootdepot.yaml');

const run = runBootdepot;

describe('bootdepot check', () => {
  it('passes the shipped config and demo data', async () => {
    const result = await run(['check', '--config', SHIPPED]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^ok: 3 profile\(s\), 2 group\(s\)/);
  });

  it('lists warnings and still exits 0 when nothing else is wrong', async (t) => {
    const data = await makeTree(t, {
      'profiles/worker.json': '{"id": "worker-v2", "boot": {"kernel": "http://images.invalid/k"}}',
      'groups/workers.json': '{"id": "workers", "profile": "worker", "selector": {"role": "worker"}}',
    });
    const result = await run(['check', '--config', SHIPPED, '--data-dir', data]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^profiles\/worker\.json:1:8: warning: id: id "worker-v2" differs from the file name/m);
    assert.match(result.stdout, /^ok: 1 warning\(s\); 1 profile\(s\), 1 group\(s\)/m);
  });

  it('lists every problem with its file and location and exits 1', async (t) => {
    const data = await makeTree(t, {
      'profiles/p.yaml': 'boot:\n  kernel: /k\n  args: [1, 2]\n',
      'profiles/lk.yaml': 'linuxkit: {name: gone}\n',
      'groups/g.yaml': 'profile: lk\n',
      'groups/broken.json': '{"profile": ',
      'templates/t.liquid': '#!ipxe\n{% endif %}\n',
    });
    const result = await run(['check', '--config', SHIPPED, '--data-dir', data]);
    assert.equal(result.code, 1);
    const out = result.stdout;
    assert.match(out, /^profiles\/p\.yaml:3:10: boot\.args\.0: must be string$/m);
    assert.match(out, /^groups\/broken\.json:1:\d+: invalid JSON: /m);
    assert.match(out, /^templates\/t\.liquid:2:1: /m);
    assert.match(out, /^groups\/g\.yaml: its machines would wait: profile lk: linuxkit\/gone-kernel and linuxkit\/gone-initrd\.img missing/m);
    assert.match(out, /^5 problem\(s\); loaded/m);
  });

  it('reports a bad config file and bad flags', async (t) => {
    const dir = await makeTree(t, { 'c.yaml': 'server:\n  port: "80"\n' });
    const result = await run(['check', '--config', path.join(dir, 'c.yaml')], { BOOTDEPOT_LOG_LEVEL: 'chatty' });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /c\.yaml:2:9: server\.port: must be integer/);
  });
});

describe('bootdepot render', () => {
  it('prints the script a device would get and explains the decision on stderr', async () => {
    const result = await run(['render', '--config', SHIPPED, '--mac', '52-54-00-12-34-56', '--base-url', 'http://10.0.0.5:8080']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^#!ipxe\n/);
    assert.match(result.stdout, /ignition\.config\.url=http:\/\/10\.0\.0\.5:8080\/ignition\?mac=52:54:00:12:34:56/);
    assert.match(result.stderr, /# decision: profile flatcar-demo \(group demo-vm matched/);
  });

  it('says what is wrong with a device value', async () => {
    const missing = await run(['render', '--config', SHIPPED]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /mac is required/);
    const dropped = await run(['render', '--config', SHIPPED, '--mac', '52:54:00:00:00:09', '--arch', 'vax', '--label', 'os=installed']);
    assert.equal(dropped.code, 0);
    assert.match(dropped.stderr, /# dropped: invalid arch "vax"/);
    // Matched as given, as matchbox does; it is only not taken as the machine's arch.
    assert.match(dropped.stderr, /# labels: mac=52:54:00:00:00:09 arch=vax os=installed/);
  });
});

describe('bootdepot render with recorded state', () => {
  it('shows what a recorded next boot makes of the script', async (t) => {
    const data = await makeTree(t, { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'groups/d.yaml': 'profile: p\n', 'assets/k': 'kernel' });
    const store = new SqliteDeviceStore(path.join(data, 'bootdepot.db'));
    await store.migrate();
    await store.recordEvents([{ deviceId: '52:54:00:12:34:56', at: new Date(), detail: { type: 'beacon', ip: '10.0.0.1' } }]);
    await store.setNextBoot('52:54:00:12:34:56', { action: 'hold', reason: 'rack move', setAt: new Date().toISOString() }, 'api');
    await store.close();
    const assets = path.join(data, 'assets');
    const result = await run(['render', '--data-dir', data, '--assets-dir', assets, '--mac', '52:54:00:12:34:56']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /# recorded next boot: hold \(rack move\)/);
    assert.match(result.stdout, /held by the operator: next boot set to hold: rack move/);
    const other = await run(['render', '--data-dir', data, '--assets-dir', assets, '--mac', '52:54:00:12:34:57']);
    assert.match(other.stdout, /\nkernel \/assets\/k /);
  });
});

describe('bootdepot serve', () => {
  it('starts on a free port from the environment, logs its URL and closes on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--config', SHIPPED, '--host', '127.0.0.1'], {
      cwd: ROOT,
      env: { ...process.env, BOOTDEPOT_PORT: '0', BOOTDEPOT_LOG_LEVEL: 'info' },
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const check = setInterval(() => {
          const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
          if (m?.[1]) {
            clearInterval(check);
            resolve(m[1]);
          }
        }, 50);
        child.on('close', () => {
          clearInterval(check);
          reject(new Error(`exited early:\n${log}`));
        });
      });
      const res = await fetch(`${url}/ipxe?mac=52:54:00:12:34:56`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /flatcar_production_pxe\.vmlinuz/);
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      assert.equal(await closed, 0);
      assert.match(log, /SIGTERM: closing/);
      assert.match(log, /"msg":"request"/);
      assert.match(log, /"mac":"52:54:00:12:34:56"/);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  it('refuses to start on a bad config, listing every problem', async (t) => {
    const dir = await makeTree(t, { 'c.yaml': 'server:\n  port: -1\nboot:\n  preset: nope\n' });
    const result = await run(['serve', '--config', path.join(dir, 'c.yaml')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /not starting/);
    assert.match(result.stderr, /server\.port: must be >= 0/);
    assert.match(result.stderr, /boot\.preset: must be one of "packet", "generic"/);
  });
});
