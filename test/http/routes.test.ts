import assert from 'node:assert/strict';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { IDENTITY_FIELDS } from '../../src/common/identity.ts';
import { testApp } from '../helpers.ts';

const EVERYTHING_TEMPLATE = [
  '#!ipxe',
  ...IDENTITY_FIELDS.map((f) => `echo ${f} {{ device.${f} }}`),
  'echo role {{ labels.role | default: "none" }}',
  'chain {{ urls.ipxe }}',
  'kernel {{ assets_url }}/k serial={{ device.serial | uri }} x={{ device.product | ipxe }}',
  'boot',
].join('\n');

const IGNITION_TEMPLATE = `{"ignition":{"version":"3.4.0"},"storage":{"files":[${IDENTITY_FIELDS.map(
  (f) => `{"path":"/etc/${f}","contents":{"source":"data:,{{ device.${f} }}"}}`,
).join(',')},{"path":"/etc/role","contents":{"source":{{ labels.role | default: "" | json }}}}]}}`;

const DATA = {
  'profiles/everything.yaml': 'template: everything\nignition_id: all.ign.liquid\n',
  'templates/everything.liquid': EVERYTHING_TEMPLATE,
  'ignition/all.ign.liquid': IGNITION_TEMPLATE,
  'groups/default.yaml': 'profile: everything\nmetadata:\n  rack: r1\n  ssh:\n    keys: [a, b]\n',
};
const ASSETS = { 'linuxkit/sshd-kernel': 'k', 'linuxkit/sshd-initrd.img': 'i', 'linuxkit/sshd-cmdline': 'console=ttyS0\n' };
const MAC = '52:54:00:12:34:56';

async function app(t: TestContext, extra: Partial<Parameters<typeof testApp>[1]> = {}) {
  return (await testApp(t, { data: DATA, assets: ASSETS, ...extra })).app;
}

describe('bootstrap', () => {
  it('chains to /ipxe with the identity, as plain text that is never cached', async (t) => {
    const server = await app(t);
    for (const url of ['/boot.ipxe', '/boot.ipxe.0']) {
      const res = await server.inject({ url, headers: { host: '10.0.0.5:8080' } });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.match(res.body, /^#!ipxe\n/);
      assert.match(res.body, /\nchain --autofree http:\/\/10\.0\.0\.5:8080\/ipxe\?mac=\$\{mac:hexhyp\}&uuid=\$\{uuid\}&serial_hex=\$\{serial:hexraw\}/);
    }
    const head = await server.inject({ method: 'HEAD', url: '/boot.ipxe' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
  });

  it('uses the configured base URL over the Host header', async (t) => {
    const server = await app(t, { overrides: [{ key: 'baseUrl', value: 'https://boot.example.net/pxe', source: 'test' }] });
    const res = await server.inject({ url: '/boot.ipxe', headers: { host: 'ignored:1' } });
    assert.match(res.body, /chain --autofree https:\/\/boot\.example\.net\/pxe\/ipxe\?/);
  });

  it('refuses a Host header that could not stand in a script', async (t) => {
    const server = await app(t);
    for (const host of ['a b', 'x${y}', 'evil#1', 'a|b', 'ü.example']) {
      const res = await server.inject({ url: '/boot.ipxe', headers: { host } });
      assert.equal(res.statusCode, 400, host);
      assert.match(res.body, /invalid Host header/);
    }
  });
});

describe('/ipxe', () => {
  it('renders the matched profile for a MAC in any format', async (t) => {
    const server = await app(t);
    const res = await server.inject({ url: '/ipxe?mac=52-54-00-12-34-56&role=db', headers: { host: 'h:1' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(res.body, /^#!ipxe\necho mac 52:54:00:12:34:56\n/);
    assert.match(res.body, /\necho role db\n/);
  });

  it('answers 400 with a message when the MAC is invalid', async (t) => {
    const server = await app(t);
    const invalid = await server.inject({ url: '/ipxe?mac=12:34' });
    assert.equal(invalid.statusCode, 400);
    assert.match(invalid.body, /invalid mac "12:34": expected a MAC address/);
  });

  it('answers 404 for unmatched machines when configured like matchbox', async (t) => {
    const server = await app(t, { data: { 'profiles/p.yaml': 'boot: {kernel: /k}\n', 'groups/one.yaml': 'profile: p\nselector: {mac: "52:54:00:00:00:01"}\n' }, yaml: 'boot:\n  unmatched: notFound\n' });
    const res = await server.inject({ url: `/ipxe?mac=${MAC}` });
    assert.equal(res.statusCode, 404);
    assert.match(res.body, /no group matches this machine \(52:54:00:12:34:56\)/);
  });

  it('gives unmatched machines a script that waits and asks again by default', async (t) => {
    const server = await app(t, { data: { 'profiles/p.yaml': 'boot: {kernel: /k}\n', 'groups/one.yaml': 'profile: p\nselector: {mac: "52:54:00:00:00:01"}\n' } });
    const res = await server.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: 'h:1' } });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /\nsleep 60\nchain --autofree http:\/\/h:1\/ipxe\?mac=52:54:00:12:34:56 \|\| goto bootdepot-wait\n/);
  });
});

describe('/linuxkit/NAME.ipxe', () => {
  it('boots a LinuxKit set by name, taking the arch from the request', async (t) => {
    const server = await app(t);
    const x86 = await server.inject({ url: '/linuxkit/sshd.ipxe', headers: { host: 'h:1' } });
    assert.equal(x86.statusCode, 200);
    assert.match(x86.body, /\nkernel \$\{base-url\}\/sshd-kernel \$\{kernel-params\} \|\| goto/);
    const arm = await server.inject({ url: '/linuxkit/sshd.ipxe?arch=arm64', headers: { host: 'h:1' } });
    assert.match(arm.body, /\ninitrd --name initrd \$\{base-url\}\/sshd-initrd\.img \|\| goto/);
    // Asking again keeps the arch: an arm64 machine must not get the x86 form on its retry.
    assert.match(arm.body, /\nchain --autofree http:\/\/h:1\/linuxkit\/sshd\.ipxe\?arch=arm64 \|\| goto bootdepot-give-up\n/);
  });

  it('answers 404 (also to HEAD, which linuxkit sends first) when the set is missing', async (t) => {
    const server = await app(t);
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await server.inject({ method, url: '/linuxkit/absent.ipxe' });
      assert.equal(res.statusCode, 404, method);
    }
    assert.equal((await server.inject({ url: '/linuxkit/..%2fetc.ipxe' })).statusCode, 404);
    assert.equal((await server.inject({ url: '/linuxkit/sshd.txt' })).statusCode, 404);
  });
});

describe('/ignition and /metadata', () => {
  it('renders the Ignition template as checked JSON', async (t) => {
    const server = await app(t);
    // A matchbox-style plain URL is answered from the device's current boot, to the address that fetched its script.
    await server.inject({ url: `/ipxe?mac=${MAC}&role=db` });
    const res = await server.inject({ url: `/ignition?mac=${MAC}&role=db` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    const config = JSON.parse(res.body) as { storage: { files: { path: string; contents: { source: string } }[] } };
    assert.equal(config.storage.files.find((f) => f.path === '/etc/mac')?.contents.source, `data:,${MAC}`);
    assert.equal(config.storage.files.find((f) => f.path === '/etc/role')?.contents.source, 'db');
  });

  it('answers 500 with the reason when a template renders invalid JSON', async (t) => {
    // Without boot state, plain URLs are decided from the data alone (the script path would make the machine wait).
    const server = await app(t, { data: { ...DATA, 'ignition/all.ign.liquid': '{"ignition": {{ group.id }} }' }, store: false });
    const res = await server.inject({ url: `/ignition?mac=${MAC}` });
    assert.equal(res.statusCode, 500);
    assert.match(res.body, /did not render valid JSON/);
  });

  it('answers 404 when the profile has no Ignition config', async (t) => {
    const server = await app(t, { data: { 'profiles/p.yaml': 'boot: {kernel: /k}\n', 'groups/d.yaml': 'profile: p\n' } });
    await server.inject({ url: `/ipxe?mac=${MAC}` });
    const res = await server.inject({ url: `/ignition?mac=${MAC}` });
    assert.equal(res.statusCode, 404);
    assert.match(res.body, /profile p has no ignition_id/);
  });

  it('serves metadata as KEY=value lines, as matchbox writes them', async (t) => {
    const server = await app(t);
    await server.inject({ url: `/ipxe?mac=${MAC}&role=db` });
    const res = await server.inject({ url: `/metadata?mac=${MAC}&role=db` });
    assert.equal(res.statusCode, 200);
    // The group's metadata (its array left out, as matchbox leaves it out) and the request.
    assert.equal(res.body, 'RACK=r1\nREQUEST_QUERY_MAC=52:54:00:12:34:56\nREQUEST_QUERY_ROLE=db\nREQUEST_RAW_QUERY=mac=52:54:00:12:34:56&role=db\n');
  });
});

describe('hostile device values never change a script\'s commands', () => {
  const HOSTILE = ['a\nchain http://evil/x', 'a\rshell', 'a\r\nshell', '${evil}', '#comment', 'a || shell', 'a && shell', 'a b c', '`id`', 'ünïcödé', '%0Achain', "a'b\"c", 'a\\b'];
  const FIELDS = [...IDENTITY_FIELDS, 'role'];

  function lines(body: string): string[] {
    return body.split('\n');
  }
  function commandWords(body: string): string[] {
    return lines(body).map((line) => line.split(' ')[0] ?? '');
  }
  function assertSafeScript(body: string, baseline: string, label: string): void {
    assert.equal(lines(body).length, lines(baseline).length, `${label}: line count changed\n${body}`);
    assert.deepEqual(commandWords(body), commandWords(baseline), `${label}: commands changed\n${body}`);
    assert.doesNotMatch(body, /\r|\$\{evil|`|\|\| shell|&& shell|[^\x00-\x7f]/, `${label}: raw hostile text in\n${body}`);
    // Every expansion left is one of ours: iPXE settings bootdepot itself writes.
    for (const match of body.matchAll(/\$\{([^}]*)\}/g)) assert.match(match[1] ?? '', /^(base-url|kernel-params|bootdepot-attempt)$/, label);
  }

  const endpoints: { path: string; kind: 'script' | 'json' | 'lines' }[] = [
    { path: '/ipxe', kind: 'script' },
    { path: '/linuxkit/sshd.ipxe', kind: 'script' },
    { path: '/ignition', kind: 'json' },
    { path: '/metadata', kind: 'lines' },
  ];
  for (const endpoint of endpoints) {
    it(`on ${endpoint.path}, in every field`, async (t) => {
      // Configs asked for with arbitrary labels: without boot state they are rendered from what was sent.
      const server = await app(t, endpoint.kind === 'script' ? {} : { store: false });
      const get = (field: string, value: string) => {
        const query = new URLSearchParams({ mac: MAC, role: 'x', [field]: value });
        return server.inject({ url: `${endpoint.path}?${query.toString()}`, headers: { host: 'h:1' } });
      };
      for (const field of FIELDS) {
        const baseline = await get(field, field === 'mac' ? MAC : 'benign');
        for (const value of HOSTILE) {
          const label = `${endpoint.path} ${field}=${JSON.stringify(value)}`;
          const res = await get(field, value);
          if (field === 'mac' && endpoint.path === '/ipxe') {
            assert.equal(res.statusCode, 400, label);
            continue;
          }
          assert.equal(res.statusCode, 200, `${label}: ${res.body}`);
          if (endpoint.kind === 'script') assertSafeScript(res.body, baseline.body, label);
          if (endpoint.kind === 'json') {
            const parsed = JSON.parse(res.body) as { storage: { files: { path: string }[] } };
            const base = JSON.parse(baseline.body) as typeof parsed;
            assert.deepEqual(parsed.storage.files.map((f) => f.path), base.storage.files.map((f) => f.path), label);
            assert.doesNotMatch(res.body, /[^\x00-\x7f]|\\n|\\r/, label);
          }
          if (endpoint.kind === 'lines') {
            // One KEY=value line each; a dropped identity value loses its line, nothing gains one.
            assert.ok(lines(res.body).length <= lines(baseline.body).length, label);
            // Values as given (matchbox's format), but never a line break or a byte outside ASCII.
            for (const line of lines(res.body).filter(Boolean)) assert.match(line, /^[A-Z0-9_.-]+=[\x20-\x7e]*$/, label);
          }
        }
      }
    });
  }
});

describe('data changes', () => {
  it('are picked up without a restart', async (t) => {
    const { app: server, dataDir, catalogue } = await testApp(t, { data: { 'profiles/a.yaml': 'boot: {kernel: /a}\n', 'profiles/b.yaml': 'boot: {kernel: /b}\n', 'groups/d.yaml': 'profile: a\n' } });
    catalogue.watch();
    assert.match((await server.inject({ url: `/ipxe?mac=${MAC}` })).body, /\nkernel \/a /);
    await writeFile(path.join(dataDir, 'groups/d.yaml'), 'profile: b\n');
    // Bounded wait for the watcher's reload (it debounces for 150 ms).
    let body = '';
    for (let i = 0; i < 50 && !/\nkernel \/b /.test(body); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      body = (await server.inject({ url: `/ipxe?mac=${MAC}` })).body;
    }
    assert.match(body, /\nkernel \/b /);
  });

  it('are picked up when a data folder is replaced whole, as a deploy or a checkout does', async (t) => {
    const { app: server, dataDir, catalogue } = await testApp(t, { data: { 'profiles/a.yaml': 'boot: {kernel: /a}\n', 'profiles/b.yaml': 'boot: {kernel: /b}\n', 'groups/d.yaml': 'profile: a\n' } });
    catalogue.watch();
    assert.match((await server.inject({ url: `/ipxe?mac=${MAC}` })).body, /\nkernel \/a /);
    await rename(path.join(dataDir, 'groups'), path.join(dataDir, 'groups.old'));
    await mkdir(path.join(dataDir, 'groups'));
    await writeFile(path.join(dataDir, 'groups/d.yaml'), 'profile: b\n');
    let body = '';
    for (let i = 0; i < 50 && !/\nkernel \/b /.test(body); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      body = (await server.inject({ url: `/ipxe?mac=${MAC}` })).body;
    }
    assert.match(body, /\nkernel \/b /, 'the new folder was read');
    // ...and the new folder is watched in turn.
    await writeFile(path.join(dataDir, 'groups/d.yaml'), 'profile: a\n');
    for (let i = 0; i < 50 && !/\nkernel \/a /.test(body); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      body = (await server.inject({ url: `/ipxe?mac=${MAC}` })).body;
    }
    assert.match(body, /\nkernel \/a /, 'a change inside the new folder was read');
  });

  it('are not looked for when other files in the data directory change (the SQLite store lives there)', async (t) => {
    const { dataDir, catalogue } = await testApp(t, { data: { 'profiles/a.yaml': 'boot: {kernel: /a}\n', 'groups/d.yaml': 'profile: a\n' } });
    catalogue.watch();
    const before = catalogue.current();
    for (let i = 0; i < 20; i++) await writeFile(path.join(dataDir, 'bootdepot.db-wal'), `frame ${i}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(catalogue.current(), before, 'no reload');
  });
});

describe('metrics', () => {
  it('counts scripts by outcome, downloads and data problems for Prometheus', async (t) => {
    const server = await app(t, { data: { ...DATA, 'groups/broken.yaml': 'profile: 42\nselector: {role: other}\n' } });
    await server.inject({ url: `/ipxe?mac=${MAC}` });
    await server.inject({ url: '/assets/linuxkit/sshd-kernel' });
    const res = await server.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /^bootdepot_scripts_total\{outcome="boot"\} 1$/m);
    assert.match(res.body, /^bootdepot_downloads_total\{outcome="complete"\} 1$/m);
    assert.match(res.body, /^bootdepot_download_bytes_total 1$/m);
    assert.match(res.body, /^bootdepot_data_problems [1-9]/m);
    assert.match(res.body, /^bootdepot_events_recorded \d+$/m);
    assert.match(res.body, /^bootdepot_process_resident_memory_bytes \d+/m);
  });
});

describe('health', () => {
  it('answers /healthz', async (t) => {
    const server = await app(t);
    const res = await server.inject({ url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });
});
