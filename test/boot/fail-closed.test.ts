/**
 * Broken data fails closed: a machine whose boot depends on something that does not load waits,
 * with the file and the error on its screen, in the log, in its events and in /metrics, instead
 * of booting unconfigured or booting another OS.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { auditCatalogue } from '../../src/boot/audit.ts';
import { createCatalogueStore } from '../../src/boot/catalogue-store.ts';
import { makeTree, runBootdepot, silentLogger, startTestServer, testConfig, waitFor } from '../helpers.ts';

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
      'groups/broken.yaml': 'profile: [\n',
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
    const store = await createCatalogueStore(dataDir, silentLogger, { audit: (catalogue) => auditCatalogue({ config, catalogue, assets }), auditIntervalMs: 50 });
    t.after(() => store.close());
    assert.deepEqual(store.current().problems, []);
    await rm(path.join(assetsDir, 'linuxkit/sshd-kernel'));
    assets.invalidate('linuxkit/sshd-kernel');
    await waitFor(() => store.current().problems.length === 1, 3000, 'the audit to notice');
    assert.match(store.current().problems[0]?.message ?? '', /linuxkit\/sshd-kernel missing/);
  });
});
