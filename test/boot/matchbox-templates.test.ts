/**
 * matchbox's templated configs end to end through the app: Ignition written as a Butane
 * template in matchbox's format (group metadata, selectors, `request.query`, `request.raw_query`,
 * `index`), generic and cloud-configs, each answered from the boot's decision and credential, a
 * template or Butane failure making the machine wait, and `check`'s view of the same files.
 * Rendered Ignition is compared with golden files (test/boot/golden/matchbox-*.json): after a
 * deliberate change, regenerate with `UPDATE_GOLDEN=1` and review the diff.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { auditCatalogue } from '../../src/boot/audit.ts';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { formatProblem } from '../../src/common/problems.ts';
import { captureLogger, makeTree, testApp, testConfig } from '../helpers.ts';

const GOLDEN_DIR = path.join(import.meta.dirname, 'golden');
const NODE1 = '52:54:00:aa:bb:01';
const NODE2 = '52:54:00:aa:bb:02';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvb3RkZXBvdC10ZXN0LWtleQ core@example';

const BUTANE = `variant: flatcar
version: 1.0.0
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - {{.ssh_authorized_key}}
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      contents:
        inline: {{.hostname}}
    - path: /etc/bootdepot/request
      contents:
        inline: |
          mac={{.request.query.mac}}
          os={{.request.query.os}}
          query={{.request.raw_query}}
          selected by mac {{.mac}}
{{- if index . "pxe"}}
    - path: /etc/bootdepot/pxe
      contents:
        inline: booted from the network
{{- end}}
`;

const DATA: Record<string, string> = {
  'profiles/node.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: node.yaml\ngeneric_id: node.cfg\ncloud_id: node-cloud.yaml\n',
  'groups/node1.json': JSON.stringify({ id: 'node1', profile: 'node', selector: { mac: NODE1 }, metadata: { ssh_authorized_key: KEY, hostname: 'node1', pxe: true, port: 8080 } }),
  'groups/node2.yaml': `profile: node\nselector:\n  mac: ${NODE2}\nmetadata:\n  ssh_authorized_key: ${KEY}\n  hostname: node2\n  port: 1000000\n`,
  'ignition/node.yaml': BUTANE,
  'generic/node.cfg': '# generic config for {{.hostname}}\nMAC={{.request.query.mac}}\nPORT={{.port}}\n{{range $k, $v := .request.query}}{{$k}}={{$v}};{{end}}\n',
  'cloud/node-cloud.yaml': '#cloud-config\nhostname: {{.hostname}}\nwrite_files:\n  - path: /etc/bootdepot-query\n    content: "{{.request.raw_query}}"\n',
};
const ASSETS = {
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz': 'kernel',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe_image.cpio.gz': 'initrd',
};

async function golden(name: string, actual: string): Promise<void> {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  const pretty = `${JSON.stringify(JSON.parse(actual), null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(file, pretty);
  assert.equal(pretty, await readFile(file, 'utf8'), `golden ${name}`);
}

async function app(t: TestContext, data: Record<string, string> = DATA, logger = captureLogger().logger) {
  const built = await testApp(t, { data, assets: ASSETS, logger });
  const get = async (url: string, remoteAddress = '10.0.0.5') => {
    const res = await built.app.inject({ url, remoteAddress });
    return { status: res.statusCode, body: res.body, type: String(res.headers['content-type']) };
  };
  return { ...built, get };
}

function configUrl(script: string): string {
  const url = /ignition\.config\.url=(\S+)/.exec(script)?.[1];
  assert.ok(url, `no ignition.config.url in\n${script}`);
  return new URL(url).pathname;
}

describe('matchbox templates: Ignition from a Butane template', () => {
  it('renders group metadata, selectors and the request into Ignition (golden)', async (t) => {
    const { get } = await app(t);
    const script = await get(`/ipxe?mac=${NODE1.replace(/:/g, '-')}&os=installed`);
    assert.equal(script.status, 200);
    assert.doesNotMatch(script.body, /bootdepot-wait/, script.body);
    const ignition = await get(configUrl(script.body));
    assert.equal(ignition.status, 200, ignition.body);
    assert.match(ignition.type, /^application\/json/);
    await golden('matchbox-butane-node1', ignition.body);
    const config = JSON.parse(ignition.body) as { ignition: { version: string }; passwd: { users: { sshAuthorizedKeys: string[] }[] }; storage: { files: { path: string }[] } };
    assert.equal(config.ignition.version, '3.3.0');
    assert.deepEqual(config.passwd.users[0]?.sshAuthorizedKeys, [KEY]);
    assert.ok(config.storage.files.some((file) => file.path === '/etc/bootdepot/pxe'));
  });

  it('takes the else side of {{if index . "pxe"}} for a group without it (golden)', async (t) => {
    const { get } = await app(t);
    const script = await get(`/ipxe?mac=${NODE2}&os=installed`);
    const ignition = await get(configUrl(script.body));
    assert.equal(ignition.status, 200, ignition.body);
    await golden('matchbox-butane-node2', ignition.body);
    assert.doesNotMatch(ignition.body, /\/etc\/bootdepot\/pxe/);
  });

  it('serves matchbox\'s plain /ignition?mac= from the boot, to the address that fetched its script', async (t) => {
    const { get } = await app(t);
    const script = await get(`/ipxe?mac=${NODE1}&os=installed`);
    const byBoot = await get(configUrl(script.body));
    const plain = await get(`/ignition?mac=${NODE1}`);
    assert.equal(plain.status, 200, plain.body);
    assert.equal(plain.body, byBoot.body);
    const other = await get(`/ignition?mac=${NODE1}`, '10.0.0.66');
    assert.equal(other.status, 403);
    assert.doesNotMatch(other.body, /ssh-ed25519/);
  });

  it('serves raw .ign files as they are, at the version they declare', async (t) => {
    const raw = '{"ignition":{"version":"3.1.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["{{.not_a_template}}"]}]}}';
    const { get } = await app(t, { ...DATA, 'profiles/node.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: raw.ign\n', 'ignition/raw.ign': raw });
    const script = await get(`/ipxe?mac=${NODE1}`);
    const ignition = await get(configUrl(script.body));
    assert.equal(ignition.status, 200, ignition.body);
    assert.deepEqual(JSON.parse(ignition.body), JSON.parse(raw));
  });

  it('Go-templates JSON Ignition too (.json, .tmpl and names without extension)', async (t) => {
    const json = '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,{{.hostname}}"}}]}}';
    for (const name of ['node.json', 'node.tmpl', 'node']) {
      const { get } = await app(t, { ...DATA, 'profiles/node.yaml': `flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: ${name}\n`, [`ignition/${name}`]: json });
      const script = await get(`/ipxe?mac=${NODE1}`);
      const ignition = await get(configUrl(script.body));
      assert.equal(ignition.status, 200, `${name}: ${ignition.body}`);
      assert.match(ignition.body, /"source":"data:,node1"/, name);
    }
  });

  it('writes what a machine sent percent-encoded, so it cannot add YAML structure', async (t) => {
    const { get } = await app(t, { ...DATA, 'ignition/node.yaml': 'variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/role\n      contents:\n        inline: {{.request.query.role}}\n' });
    const role = 'a {b: 1}, "c"] #    - path: /etc/evil';
    const script = await get(`/ipxe?mac=${NODE1}&role=${encodeURIComponent(role)}`);
    const ignition = await get(configUrl(script.body));
    assert.equal(ignition.status, 200, ignition.body);
    const config = JSON.parse(ignition.body) as { storage: { files: { path: string }[] } };
    assert.deepEqual(
      config.storage.files.map((file) => file.path),
      ['/etc/role'],
    );
    // The text arrives as one plain value, percent-encoded.
    const source = (JSON.parse(ignition.body) as { storage: { files: { contents: { source: string } }[] } }).storage.files[0]?.contents.source ?? '';
    const written = source.startsWith('data:;base64,') ? Buffer.from(source.slice('data:;base64,'.length), 'base64').toString() : decodeURIComponent(source.slice('data:,'.length));
    assert.equal(written, 'a%20%7Bb:%201%7D%2C%20%22c%22%5D%20%23%20%20%20%20-%20path:%20%2Fetc%2Fevil');
  });
});

describe('matchbox templates: fail closed', () => {
  it('a missing key makes the machine wait, naming the file, line, column and key', async (t) => {
    const { logger, lines } = captureLogger();
    const { get } = await app(t, DATA, logger);
    // No `os` label: {{.request.query.os}} has no value for this machine.
    const script = await get(`/ipxe?mac=${NODE1}`);
    assert.equal(script.status, 200);
    assert.match(script.body, /bootdepot-wait/);
    assert.match(script.body, /Ignition template failed: template: ignition\/node\.yaml:18:23: executing _ignition\/node\.yaml_ at <\.request\.query\.os>: /);
    assert.match(script.body, /map has no entry for key _os_/);
    assert.doesNotMatch(script.body, /^kernel /m);
    assert.ok(lines.some((line) => JSON.stringify(line).includes('map has no entry for key \\"os\\"')), 'the wait is logged with the error');
  });

  it('a Butane error after rendering makes the machine wait with Butane\'s message', async (t) => {
    const { get } = await app(t, { ...DATA, 'ignition/node.yaml': 'variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: {{.hostname}}\n' });
    const script = await get(`/ipxe?mac=${NODE1}`);
    assert.match(script.body, /bootdepot-wait/);
    assert.match(script.body, /Butane config ignition\/node\.yaml does not translate to Ignition: storage\.files\.0\.path: /);
  });

  it('a cloud-config that renders no #cloud-config header or script makes the machine wait', async (t) => {
    const { get } = await app(t, { ...DATA, 'cloud/node-cloud.yaml': 'hostname: {{.hostname}}\n' });
    const script = await get(`/ipxe?mac=${NODE1}&os=installed`);
    assert.match(script.body, /bootdepot-wait/);
    assert.match(script.body, /cloud-config cloud\/node-cloud\.yaml is neither a cloud-config/);
  });

  it('bootdepot check reports the files: parse errors where they are, render failures in the file and the group', async (t) => {
    const dataDir = await makeTree(t, {
      ...DATA,
      'ignition/node.yaml': BUTANE.replace('{{.hostname}}', '{{.hostname}'),
      'ignition/static.bu': 'variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: relative\n',
      'generic/node.cfg': 'PORT={{.nope}}\n',
    });
    const assetsDir = await makeTree(t, ASSETS);
    const config = testConfig(dataDir, assetsDir);
    const catalogue = await loadCatalogue(dataDir);
    const texts = [...catalogue.problems, ...(await auditCatalogue({ config, catalogue, assets: createAssetReader(assetsDir) }))].map(formatProblem);
    const has = (pattern: RegExp) => assert.ok(texts.some((text) => pattern.test(text)), `no problem matches ${pattern}\n${texts.join('\n')}`);
    has(/^ignition\/node\.yaml:13:\d+: Go template: /);
    has(/^ignition\/static\.bu:5:\d+: storage\.files\.0\.path: Butane: /);
    // The Butane file did not parse, so its profile waits; generic/ fails for the group's machines.
    has(/^groups\/node1\.json: its machines would wait: profile node: Ignition config ignition\/node\.yaml of profile node is not loaded/);
    const withGood = await loadCatalogue(await makeTree(t, { ...DATA, 'generic/node.cfg': 'PORT={{.nope}}\n' }));
    const audited = (await auditCatalogue({ config, catalogue: withGood, assets: createAssetReader(assetsDir) })).map(formatProblem);
    assert.ok(audited.some((text) => /^ignition\/node\.yaml:18:\d+: Go template: .*map has no entry for key "os"$/.test(text)), audited.join('\n'));
    assert.ok(audited.some((text) => /^generic\/node\.cfg:1:\d+: Go template: executing "generic\/node\.cfg" at <\.nope>: map has no entry for key "nope"$/.test(text)), audited.join('\n'));
  });
});

describe('matchbox templates: /generic and /cloud', () => {
  it('answers from the boot, under /b/<boot>/ and at matchbox\'s plain URLs, to the boot\'s address only', async (t) => {
    const { get } = await app(t);
    const script = await get(`/ipxe?mac=${NODE1}&os=installed`);
    const boot = configUrl(script.body).replace(/\/ignition$/, '');
    const generic = await get(`${boot}/generic`);
    assert.equal(generic.status, 200, generic.body);
    assert.match(generic.type, /^text\/plain/);
    assert.equal(generic.body, `# generic config for node1\nMAC=${NODE1}\nPORT=8080\nmac=${NODE1};os=installed;\n`);
    assert.equal((await get(`/generic?mac=${NODE1}`)).body, generic.body);
    assert.equal((await get(`/generic?mac=${NODE1}`, '10.0.0.66')).status, 403);
    const cloud = await get(`${boot}/cloud`);
    assert.equal(cloud.status, 200, cloud.body);
    assert.equal(cloud.body, `#cloud-config\nhostname: node1\nwrite_files:\n  - path: /etc/bootdepot-query\n    content: "mac=${NODE1}&os=installed"\n`);
    assert.equal((await get(`/cloud?mac=${NODE1}`)).body, cloud.body);
  });

  it('prints numbers from group metadata as matchbox (Go, float64) does', async (t) => {
    const { get } = await app(t);
    const script = await get(`/ipxe?mac=${NODE2}&os=installed`);
    const generic = await get(configUrl(script.body).replace(/ignition$/, 'generic'));
    assert.match(generic.body, /^PORT=1e\+06$/m);
  });

  it('404 for a profile without generic_id, and an empty cloud_id is none', async (t) => {
    const { get } = await app(t, { ...DATA, 'profiles/node.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: node.yaml\ncloud_id: ""\n' });
    const script = await get(`/ipxe?mac=${NODE1}&os=installed`);
    assert.doesNotMatch(script.body, /bootdepot-wait/, script.body);
    const boot = configUrl(script.body).replace(/\/ignition$/, '');
    assert.equal((await get(`${boot}/generic`)).status, 404);
    assert.equal((await get(`${boot}/cloud`)).status, 404);
  });
});

describe('matchbox templates: hostile device values', () => {
  const HOSTILE = ['a\nb: c', 'x\n    - path: /etc/evil', '{{.hostname}}', '"quoted"', "'q'", '#comment', '{a: 1}', '[1, 2]', 'a: b', '*alias', '&anchor', '!!binary', '| block', 'ünïcödé', '%41'];
  const TEMPLATES = {
    ...DATA,
    'profiles/node.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: hostile.yaml\ngeneric_id: hostile.cfg\n',
    'groups/default.yaml': 'profile: node\n',
    'ignition/hostile.yaml': 'variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/role\n      contents:\n        inline: x{{.request.query.role}}\n    - path: /etc/query\n      contents:\n        inline: x{{.request.raw_query}}\n',
    'generic/hostile.cfg': 'ROLE={{.request.query.role}}\nQUERY={{.request.raw_query}}\n{{range $k, $v := .request.query}}{{$k}}={{$v}}\n{{end}}',
  };

  it('never change a rendered config\'s structure, on /ignition and /generic', async (t) => {
    // Without boot state configs are rendered from what the request sends: every value reaches the templates.
    const { app: server } = await testApp(t, { data: TEMPLATES, assets: ASSETS, store: false });
    const get = (path: string, value: string) => server.inject({ url: `${path}?${new URLSearchParams({ mac: NODE1, role: value }).toString()}` });
    const baseIgnition = JSON.parse((await get('/ignition', 'benign')).body) as { storage: { files: { path: string }[] } };
    const baseGeneric = (await get('/generic', 'benign')).body;
    for (const value of HOSTILE) {
      if (!/^[\x20-\x7e]*$/.test(value)) {
        // Not printable ASCII: the label is dropped, so the template has no value for it and nothing is served.
        const refused = await get('/ignition', value);
        assert.equal(refused.statusCode, 500, JSON.stringify(value));
        assert.match(refused.body, /map has no entry for key "role"/);
        continue;
      }
      const ignition = await get('/ignition', value);
      assert.equal(ignition.statusCode, 200, `${JSON.stringify(value)}: ${ignition.body}`);
      const parsed = JSON.parse(ignition.body) as typeof baseIgnition;
      assert.deepEqual(
        parsed.storage.files.map((file) => file.path),
        baseIgnition.storage.files.map((file) => file.path),
        JSON.stringify(value),
      );
      const generic = await get('/generic', value);
      assert.equal(generic.statusCode, 200, JSON.stringify(value));
      assert.equal(generic.body.split('\n').length, baseGeneric.split('\n').length, `${JSON.stringify(value)}:\n${generic.body}`);
      assert.match(generic.body, /^ROLE=[A-Za-z0-9._~:%-]*$/m, JSON.stringify(value));
      assert.doesNotMatch(generic.body, /[^\x00-\x7f]|\{\{|node1/, JSON.stringify(value));
    }
  });
});
