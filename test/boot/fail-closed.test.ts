/**
 * Broken data fails closed: a machine whose boot depends on something that does not load waits,
 * with the file and the error on its screen, in the log, in its events and in /metrics, instead
 * of booting unconfigured or booting another OS.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { auditCatalogue } from '../../src/boot/audit.ts';
import { openLiveCatalogue } from '../../src/boot/live-catalogue.ts';
import { buildApp } from '../../src/app.ts';
import { captureLogger, makeTree, runBootdepot, silentLogger, startTestServer, testApp, testConfig, waitFor } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const ASSETS = {
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz': 'kernel',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe_image.cpio.gz': 'initrd',
};
const FLATCAR = 'flatcar: {channel: stable, version: 4152.2.0, source: local}\n';

async function server(t: TestContext, data: Record<string, string>) {
  const dataDir = await makeTree(t, data);
  const assetsDir = await makeTree(t, ASSETS);
  const cacheDir = await makeTree(t, {});
  const running = await startTestServer(t, { dataDir, assetsDir, cacheDir });
  const get = async (path: string) => {
    const res = await fetch(`${running.url}${path}`);
    return { status: res.status, body: await res.text() };
  };
  return { running, get, dataDir, assetsDir };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(' ').at(-1));
}

describe('broken data fails closed', () => {
  it('makes a Flatcar machine whose Ignition file is not valid JSON wait, naming the file', async (t) => {
    const { get } = await server(t, {
      'profiles/node.yaml': `${FLATCAR}ignition_id: node.ign\n`,
      'ignition/node.ign': '{"ignition": {"version": "3.4.0"}, ',
      'groups/default.yaml': 'profile: node\n',
    });
    const script = await get(`/ipxe?mac=${MAC}`);
    assert.equal(script.status, 200);
    assert.doesNotMatch(script.body, /\nkernel /, 'no boot without its Ignition config');
    assert.match(script.body, /echo bootdepot: profile node: Ignition config ignition\/node\.ign of profile node is not loaded/);
    assert.match(script.body, /\nchain --autofree /);
  });

  it('makes a machine whose Ignition template fails for it wait, with the template error', async (t) => {
    const { get } = await server(t, {
      'profiles/node.yaml': `${FLATCAR}ignition_id: node.ign.liquid\n`,
      'ignition/node.ign.liquid': '{"ignition": {"version": "3.4.0"}, "x": {{ group.metadata.missing | json }} }',
      'groups/default.yaml': 'profile: node\n',
    });
    const script = await get(`/ipxe?mac=${MAC}`);
    assert.doesNotMatch(script.body, /\nkernel /);
    assert.match(script.body, /echo bootdepot: profile node: Ignition template ignition\/node\.ign\.liquid failed: undefined variable: group\.metadata\.missing/);
  });

  it('counts the same problems in /metrics as bootdepot check does', async (t) => {
    const data = {
      'profiles/node.yaml': `${FLATCAR}ignition_id: node.ign.liquid\n`,
      'profiles/lk.yaml': 'linuxkit: {name: absent}\n',
      'ignition/node.ign.liquid': '{"ignition": {"version": "3.4.0"}, "x": {{ group.metadata.missing | json }} }',
      'groups/default.yaml': 'profile: node\n',
      'groups/lk.yaml': 'profile: lk\nselector: {role: lk}\n',
      'groups/broken.yaml': 'profile: 42\nselector: {role: nobody}\n',
    };
    const { get, dataDir, assetsDir } = await server(t, data);
    const check = await runBootdepot(['check', '--data-dir', dataDir, '--assets-dir', assetsDir]);
    assert.equal(check.code, 1);
    const counted = /^(\d+) problem\(s\)/m.exec(check.stdout)?.[1];
    assert.ok(counted, check.stdout);
    assert.ok(Number(counted) >= 3, check.stdout);
    const metrics = await get('/metrics');
    assert.equal(metric(metrics.body, 'bootdepot_data_problems'), Number(counted), check.stdout);
  });

  it('finds images that go missing while the server runs, as check would', async (t) => {
    const dataDir = await makeTree(t, { 'profiles/lk.yaml': 'linuxkit: {name: sshd}\n', 'groups/default.yaml': 'profile: lk\n' });
    const assetsDir = await makeTree(t, { 'linuxkit/sshd-kernel': 'k', 'linuxkit/sshd-initrd.img': 'i' });
    const config = testConfig(dataDir, assetsDir);
    const assets = createAssetReader(assetsDir);
    const store = await openLiveCatalogue(dataDir, silentLogger, { audit: (catalogue) => auditCatalogue({ config, catalogue, assets }), auditIntervalMs: 50 });
    t.after(() => store.close());
    assert.deepEqual(store.current().problems, []);
    await rm(path.join(assetsDir, 'linuxkit/sshd-kernel'));
    assets.invalidate('linuxkit/sshd-kernel');
    await waitFor(() => store.current().problems.length === 1, 3000, 'the audit to notice');
    assert.match(store.current().problems[0]?.message ?? '', /linuxkit\/sshd-kernel missing/);
  });
});

describe('a broken group never moves its machines to another group', () => {
  const DATA = {
    'profiles/db.yaml': 'boot: {kernel: /assets/db-kernel}\n',
    'profiles/installer.yaml': 'boot: {kernel: /assets/wipe-and-install}\n',
    'groups/db.yaml': `profile: db\nselector: {mac: "${MAC}"}\n`,
    'groups/default.yaml': 'profile: installer\n',
  };
  const IMAGES = { 'db-kernel': 'db', 'wipe-and-install': 'installer' };

  async function serve(t: TestContext, dataDir: string, assetsDir: string) {
    const running = await startTestServer(t, { dataDir, assetsDir, cacheDir: await makeTree(t, {}) });
    return {
      running,
      script: async (mac = MAC) => (await fetch(`${running.url}/ipxe?mac=${mac}`)).text(),
    };
  }

  it('keeps serving the last good version of a group broken while the server was down', async (t) => {
    const dataDir = await makeTree(t, DATA);
    const assetsDir = await makeTree(t, IMAGES);
    const first = await serve(t, dataDir, assetsDir);
    assert.match(await first.script(), /\nkernel \S+\/db-kernel/);
    await first.running.close();

    await writeFile(path.join(dataDir, 'groups/db.yaml'), `profile: db\nselector: {mac: "${MAC}"\n`);
    const second = await serve(t, dataDir, assetsDir);
    const script = await second.script();
    assert.match(script, /\nkernel \S+\/db-kernel/, `still the db profile:\n${script}`);
    assert.doesNotMatch(script, /wipe-and-install/);
    const check = await runBootdepot(['check', '--data-dir', dataDir, '--assets-dir', assetsDir]);
    assert.match(check.stdout, /groups\/db\.yaml: still serving the last good version of this file \(kept in /);
    const render = await runBootdepot(['render', '--data-dir', dataDir, '--assets-dir', assetsDir, '--mac', MAC]);
    assert.match(render.stdout, /\nkernel \S+\/db-kernel/, render.stderr);
  });

  it('makes the machines a broken group may select wait when it has never loaded, and boots the others', async (t) => {
    const dataDir = await makeTree(t, { ...DATA, 'groups/db.yaml': `profile: db\nselector: {mac: "${MAC}"}\nmetadata: not-a-map\n` });
    const assetsDir = await makeTree(t, IMAGES);
    const { script } = await serve(t, dataDir, assetsDir);
    const mine = await script();
    assert.doesNotMatch(mine, /\nkernel /);
    assert.match(mine, /echo bootdepot: group file groups\/db\.yaml does not load and may select this machine: groups\/db\.yaml:\d+:\d+: /);
    // Its selector could be read: other machines are not concerned.
    assert.match(await script('52:54:00:00:00:99'), /\nkernel \S+\/wipe-and-install/);
  });

  it('makes every machine wait for a group file that cannot be parsed at all', async (t) => {
    const dataDir = await makeTree(t, { ...DATA, 'groups/db.yaml': '{{{ not yaml' });
    const assetsDir = await makeTree(t, IMAGES);
    const { script } = await serve(t, dataDir, assetsDir);
    for (const mac of [MAC, '52:54:00:00:00:99']) {
      const body = await script(mac);
      assert.doesNotMatch(body, /\nkernel /, mac);
      assert.match(body, /group file groups\/db\.yaml does not load/);
    }
  });

  it('lets an operator opt out with boot.brokenGroups: ignore', async (t) => {
    const dataDir = await makeTree(t, { ...DATA, 'groups/db.yaml': '{{{ not yaml' });
    const assetsDir = await makeTree(t, IMAGES);
    const config = testConfig(dataDir, assetsDir, 'boot:\n  brokenGroups: ignore\n');
    const catalogue = await openLiveCatalogue(dataDir, silentLogger);
    const app = await buildApp({ config, logger: silentLogger, catalogue, assets: createAssetReader(assetsDir) });
    t.after(async () => {
      catalogue.close();
      await app.close();
    });
    const res = await app.inject({ url: `/ipxe?mac=${MAC}` });
    assert.match(res.body, /\nkernel \S+\/wipe-and-install/);
  });
});

describe('a config that cannot be served is logged', () => {
  it('logs an Ignition template that fails at /ignition, with the file and the error', async (t) => {
    const { logger, lines } = captureLogger();
    const { app } = await testApp(t, {
      data: { 'profiles/node.yaml': `${FLATCAR}ignition_id: node.ign.liquid\n`, 'ignition/node.ign.liquid': '{"x": {{ group.metadata.missing | json }} }', 'groups/default.yaml': 'profile: node\n' },
      store: false,
      logger,
    });
    const res = await app.inject({ url: `/ignition?mac=${MAC}` });
    assert.equal(res.statusCode, 500);
    const line = lines.find((l) => l.msg === 'ignition cannot be served');
    assert.ok(line, 'an error line');
    assert.equal(line.level, 50);
    assert.match(String(line.problem), /Ignition template ignition\/node\.ign\.liquid failed: undefined variable: group\.metadata\.missing/);
  });
});
