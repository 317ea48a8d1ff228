/**
 * The README's commands, run as written from a checkout: they find config/bootdepot.yaml on
 * their own, say which config they use, and `render` and `check` write nothing.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { makeTree } from '../helpers.ts';
import { repoLayout, runIn, snapshot } from './run.ts';

const MAC = '52:54:00:12:34:56';
/** Neither variable may leak in from the shell running the tests. */
const CLEAN_ENV = { BOOTDEPOT_CONFIG: undefined, BOOTDEPOT_DATA_DIR: undefined, BOOTDEPOT_ASSETS_DIR: undefined, BOOTDEPOT_CACHE_DIR: undefined };

describe('commands run from a checkout', () => {
  it('npx bootdepot render --mac and check read config/bootdepot.yaml without --config, and say so', async (t) => {
    const root = await repoLayout(t);
    const render = await runIn(root, ['render', '--mac', MAC], CLEAN_ENV);
    assert.equal(render.code, 0, render.stderr);
    assert.match(render.stderr, /^# config: config\/bootdepot\.yaml \(found in the working directory\)$/m);
    assert.match(render.stderr, /# decision: profile flatcar-demo \(group demo-vm matched/);
    assert.match(render.stdout, /^#!ipxe\n/);
    const check = await runIn(root, ['check'], CLEAN_ENV);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stderr, /^config: config\/bootdepot\.yaml \(found in the working directory\)$/m);
    assert.match(check.stdout, /^ok: 3 profile\(s\), 2 group\(s\)/);
  });

  it('prefers ./bootdepot.yaml to ./config/bootdepot.yaml, and BOOTDEPOT_CONFIG to both', async (t) => {
    const root = await repoLayout(t);
    await writeFile(path.join(root, 'bootdepot.yaml'), 'paths:\n  data: elsewhere\n');
    const local = await runIn(root, ['check'], CLEAN_ENV);
    assert.match(local.stderr, /^config: bootdepot\.yaml \(found in the working directory\)$/m);
    assert.match(local.stdout, new RegExp(`data directory ${path.join(root, 'elsewhere')} does not exist`));
    const fromEnv = await runIn(root, ['check'], { ...CLEAN_ENV, BOOTDEPOT_CONFIG: 'config/bootdepot.yaml' });
    assert.equal(fromEnv.code, 0, fromEnv.stdout);
    assert.match(fromEnv.stderr, /^config: config\/bootdepot\.yaml \(BOOTDEPOT_CONFIG\)$/m);
  });

  it('says when no config file was found and the built-in defaults are used', async (t) => {
    const dir = await makeTree(t, { 'data/profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'data/groups/g.yaml': 'profile: p\n', 'assets/k': 'kernel' });
    const check = await runIn(dir, ['check'], CLEAN_ENV);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stderr, /^config: the embedded defaults \(no --config, no BOOTDEPOT_CONFIG, no \.\/bootdepot\.yaml or \.\/config\/bootdepot\.yaml\)$/m);
  });
});

describe('render and check write nothing', () => {
  it('create no cache, database or data directory, and leave a live mirror cache and database as they are', async (t) => {
    const root = await repoLayout(t);
    // What a running server leaves: a database with a recorded next boot, and a fill in progress.
    const store = new SqliteDeviceStore(path.join(root, 'config/data/bootdepot.db'));
    await store.migrate();
    await store.recordEvents([{ deviceId: MAC, at: new Date(), detail: { type: 'beacon', ip: '10.0.0.1' } }]);
    await store.setNextBoot(MAC, { action: 'hold', reason: 'rack move', setAt: new Date().toISOString() }, 'api');
    await store.close();
    await mkdir(path.join(root, 'var/cache/objects'), { recursive: true });
    await mkdir(path.join(root, 'var/cache/tmp'), { recursive: true });
    await writeFile(path.join(root, 'var/cache/tmp/0123456789abcdef0123456789abcdef.part'), 'half a kernel');
    const before = await snapshot(root);

    const render = await runIn(root, ['render', '--mac', MAC], CLEAN_ENV);
    assert.equal(render.code, 0, render.stderr);
    assert.match(render.stderr, /# recorded next boot: hold \(rack move\)/, 'read the recorded state');
    const check = await runIn(root, ['check'], CLEAN_ENV);
    assert.equal(check.code, 0, check.stdout);
    assert.deepEqual(await snapshot(root), before);
  });

  it('read a database a running server is writing without adding files beside it', async (t) => {
    const root = await repoLayout(t);
    const store = new SqliteDeviceStore(path.join(root, 'config/data/bootdepot.db'));
    t.after(() => store.close());
    await store.migrate();
    await store.recordEvents([{ deviceId: MAC, at: new Date(), detail: { type: 'beacon', ip: '10.0.0.1' } }]);
    await store.setNextBoot(MAC, { action: 'local', reason: 'installed', setAt: new Date().toISOString() }, 'api');
    // The writer's own checkpoints change the files' sizes and times: compare names only.
    const before = [...(await snapshot(root)).keys()].sort();
    assert.ok(before.includes(path.join('config/data/bootdepot.db-wal')), 'the writer has its WAL open');
    const render = await runIn(root, ['render', '--mac', MAC], CLEAN_ENV);
    assert.equal(render.code, 0, render.stderr);
    assert.match(render.stderr, /# recorded next boot: local \(installed\)/);
    assert.deepEqual([...(await snapshot(root)).keys()].sort(), before);
  });

  it('create nothing when the cache and the database do not exist yet', async (t) => {
    const root = await repoLayout(t);
    const before = await snapshot(root);
    assert.equal((await runIn(root, ['render', '--mac', MAC], CLEAN_ENV)).code, 0);
    assert.equal((await runIn(root, ['render', '--mac', '52:54:00:00:00:01'], CLEAN_ENV)).code, 0);
    assert.equal((await runIn(root, ['check'], CLEAN_ENV)).code, 0);
    // Without a config file the defaults point at ./cache and ./data: neither may appear.
    const bare = await makeTree(t, {});
    assert.notEqual((await runIn(bare, ['render', '--mac', MAC], CLEAN_ENV)).code, 0);
    assert.notEqual((await runIn(bare, ['check'], CLEAN_ENV)).code, 0);
    assert.deepEqual(await snapshot(root), before);
    assert.deepEqual(await snapshot(bare), new Map());
  });
});
