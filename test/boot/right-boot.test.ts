/**
 * The right boot, every time: values a machine sent survive every URL bootdepot hands back,
 * every profile kind boots under UEFI with its initrds, every download is tied to its boot, and
 * links are ones the booting iPXE can fetch.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { parseDevice } from '../../src/common/identity.ts';
import { renderDeviceScript } from '../../src/boot/render.ts';
import { captureLogger, makeTree, testApp, testConfig } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const PRODUCT = 'Standard PC (i440FX + PIIX, 1996)';

/**
 * What iPXE does with a URL before sending it: it parses the URI, decoding percent escapes, and
 * encodes the query again escaping only whitespace, control and non-ASCII bytes and `#:@?%`
 * (iPXE's uri.c, URI_QUERY). So `%2B` leaves as `+` and `%26` as `&`.
 */
function ipxeResend(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const decoded = Buffer.from(url.slice(at + 1).replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  let query = '';
  for (const byte of decoded) {
    const ch = String.fromCharCode(byte);
    query += byte <= 0x20 || byte >= 0x7f || '#:@?%'.includes(ch) ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : ch;
  }
  return `${url.slice(0, at)}?${query}`;
}

function chainUrl(script: string): string {
  const match = /chain --autofree (\S+)/.exec(script);
  assert.ok(match?.[1], `no chain line in:\n${script}`);
  return match[1];
}

function pathAndQuery(url: string): string {
  return url.replace(/^http:\/\/[^/]+/, '');
}

async function app(t: TestContext, data: Record<string, string>, assets: Record<string, string> = {}) {
  return (await testApp(t, { data, assets })).app;
}

describe('values a machine sent survive the round trip', () => {
  it('keeps a product with + and & matching its group after the wait script asks again', async (t) => {
    const server = await app(t, {
      'profiles/qemu.yaml': 'boot: {kernel: /assets/missing-kernel, initrd: [], args: []}\n',
      'groups/qemu.yaml': `profile: qemu\nselector: {product: "${PRODUCT}", rack: "a&b+c"}\n`,
    });
    const first = `/ipxe?mac=${MAC}&product_hex=${Buffer.from(PRODUCT).toString('hex')}&rack=a%26b%2Bc`;
    let res = await server.inject({ url: first });
    assert.equal(res.statusCode, 200);
    // The kernel is missing, so the machine waits: the group matched, and the script asks again.
    assert.match(res.body, /assets\/missing-kernel missing/);
    for (let poll = 0; poll < 3; poll++) {
      const again = pathAndQuery(ipxeResend(chainUrl(res.body)));
      res = await server.inject({ url: again });
      assert.match(res.body, /group qemu matched/, `poll ${poll} via ${again}`);
    }
    const labels = new URLSearchParams(pathAndQuery(ipxeResend(chainUrl(res.body))).split('?')[1] ?? '');
    assert.equal(labels.get('product_hex'), Buffer.from(PRODUCT).toString('hex'));
    assert.equal(labels.get('rack_hex'), Buffer.from('a&b+c').toString('hex'));
  });

  it('writes plain values as they are, so ordinary URLs stay readable', async (t) => {
    const server = await app(t, {});
    const res = await server.inject({ url: `/ipxe?mac=${MAC}&hostname=node-1&zone=eu-1.a` });
    assert.match(chainUrl(res.body), /\/ipxe\?mac=52:54:00:12:34:56&hostname=node-1&zone=eu-1\.a$/);
  });

  it('refuses malformed hex labels with one warning line for the whole request', async (t) => {
    const { logger, lines } = captureLogger();
    const { app: server } = await testApp(t, { data: {}, logger });
    const query = Array.from({ length: 2000 }, (_, i) => `bad${i}_hex=zz`).join('&');
    const res = await server.inject({ url: `/ipxe?mac=${MAC}&${query}` });
    assert.equal(res.statusCode, 200);
    assert.doesNotMatch(res.body, /bad0/);
    const warnings = lines.filter((line) => line.msg.startsWith('device sent values that were dropped'));
    assert.equal(warnings.length, 1);
    const dropped = warnings[0]?.dropped as string[];
    assert.ok(dropped.length <= 6, `dropped list is capped (${dropped.length})`);
    assert.match(dropped.at(-1) ?? '', /1995 more label\(s\) dropped/);
  });
});

describe('UEFI boots every profile kind with its initrds', () => {
  const DATA = {
    'profiles/two.json': JSON.stringify({ id: 'two', boot: { kernel: '/assets/k/vmlinuz', initrd: ['/assets/k/initrd-a.img', '/assets/k/more/initrd-a.img'], args: ['console=ttyS0'] } }),
    'profiles/named.json': JSON.stringify({ id: 'named', boot: { kernel: '/assets/k/vmlinuz', initrd: ['--name main /assets/k/initrd-a.img'], args: ['initrd=main'] } }),
    'groups/two.yaml': 'profile: two\nselector: {case: two}\n',
    'groups/named.yaml': 'profile: named\nselector: {case: named}\n',
  };
  const ASSETS = { 'k/vmlinuz': 'k', 'k/initrd-a.img': 'a', 'k/more/initrd-a.img': 'b' };

  it('names each initrd of a matchbox profile and passes initrd=NAME for each under EFI', async (t) => {
    const server = await app(t, DATA, ASSETS);
    const res = await server.inject({ url: `/ipxe?mac=${MAC}&platform=efi&case=two`, headers: { host: '10.0.0.5:8080' } });
    const boot = /\/b\/([0-9a-f]+)\//.exec(res.body)?.[1];
    assert.ok(boot, res.body);
    const base = `http://10.0.0.5:8080/b/${boot}/assets`;
    assert.ok(res.body.includes(`kernel ${base}/k/vmlinuz console=ttyS0 initrd=initrd-a.img initrd=initrd-a.img-2 || goto`), res.body);
    assert.ok(res.body.includes(`initrd --name initrd-a.img ${base}/k/initrd-a.img || goto`), res.body);
    assert.ok(res.body.includes(`initrd --name initrd-a.img-2 ${base}/k/more/initrd-a.img || goto`), res.body);
  });

  it('leaves BIOS scripts and profiles that name their initrds as written', async (t) => {
    const server = await app(t, DATA, ASSETS);
    const bios = await server.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios&case=two` });
    assert.match(bios.body, /\ninitrd http:\S+\/k\/initrd-a\.img \|\| goto/);
    assert.doesNotMatch(bios.body, /initrd --name|initrd=/);
    const named = await server.inject({ url: `/ipxe?mac=${MAC}&platform=efi&case=named` });
    assert.match(named.body, /\ninitrd --name main http:\S+\/k\/initrd-a\.img \|\| goto/);
    assert.equal(named.body.match(/initrd=/g)?.length, 1);
  });

  it('makes a matchbox profile whose image is not in the assets directory wait, naming it', async (t) => {
    const server = await app(t, DATA, { 'k/vmlinuz': 'k' });
    const res = await server.inject({ url: `/ipxe?mac=${MAC}&case=two` });
    assert.match(res.body, /echo bootdepot: profile two: assets\/k\/initrd-a\.img and assets\/k\/more\/initrd-a\.img missing/);
    assert.doesNotMatch(res.body, /\nkernel /);
  });
});

describe('links a booting iPXE can fetch, tied to their boot', () => {
  it('links matchbox /mirror/ paths under the boot, so their downloads are recorded', async (t) => {
    const server = await app(t, {
      'profiles/m.json': JSON.stringify({ id: 'm', boot: { kernel: '/mirror/os/vmlinuz', initrd: ['/mirror/os/initrd.img'], args: [] } }),
      'groups/default.yaml': 'profile: m\n',
    });
    const res = await server.inject({ url: `/ipxe?mac=${MAC}`, headers: { host: '10.0.0.5:8080' } });
    const boot = /\/b\/([0-9a-f]+)\//.exec(res.body)?.[1];
    assert.ok(boot, res.body);
    assert.ok(res.body.includes(`kernel http://10.0.0.5:8080/b/${boot}/mirror/os/vmlinuz`), res.body);
    assert.ok(res.body.includes(`initrd http://10.0.0.5:8080/b/${boot}/mirror/os/initrd.img`), res.body);
  });

  it('links Flatcar source: upstream over http, which iPXE builds without TLS can fetch', async (t) => {
    const server = await app(t, {
      'profiles/fc.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: upstream}\n',
      'groups/default.yaml': 'profile: fc\n',
    });
    const res = await server.inject({ url: `/ipxe?mac=${MAC}` });
    assert.match(res.body, /\nkernel http:\/\/stable\.release\.flatcar-linux\.net\/amd64-usr\/4152\.2\.0\/flatcar_production_pxe\.vmlinuz /);
    assert.doesNotMatch(res.body, /https:/);
  });

  it('answers HEAD for a missing LinuxKit set with 404 and an iPXE GET with a wait script naming the files', async (t) => {
    const server = await app(t, {});
    const head = await server.inject({ method: 'HEAD', url: '/linuxkit/sshd.ipxe' });
    assert.equal(head.statusCode, 404);
    const curl = await server.inject({ url: '/linuxkit/sshd.ipxe', headers: { 'user-agent': 'curl/8.5.0' } });
    assert.equal(curl.statusCode, 404);
    const ipxe = await server.inject({ url: '/linuxkit/sshd.ipxe', headers: { 'user-agent': 'iPXE/1.21.1+ (g4e456d99)', host: '10.0.0.5:8080' } });
    assert.equal(ipxe.statusCode, 200);
    assert.match(ipxe.body, /^#!ipxe\n/);
    assert.match(ipxe.body, /echo bootdepot: profile linuxkit-sshd: linuxkit\/sshd-kernel and linuxkit\/sshd-initrd\.img missing/);
    assert.match(ipxe.body, /chain --autofree http:\/\/10\.0\.0\.5:8080\/linuxkit\/sshd\.ipxe /);
  });
});

describe('what the fleet boots stays in the mirror', () => {
  it('protects the mirrored files a boot links from eviction', async (t) => {
    const dataDir = await makeTree(t, { 'profiles/fc.yaml': 'flatcar: {channel: stable, version: 4152.2.0}\n', 'groups/default.yaml': 'profile: fc\n' });
    const protectedFiles: string[] = [];
    const mirror = {
      readText: () => Promise.reject(new Error('not used')),
      knownProblem: () => undefined,
      protect: (name: string, relativePath: string) => void protectedFiles.push(`${name}/${relativePath}`),
    };
    const result = await renderDeviceScript({
      baseUrl: 'http://10.0.0.5:8080',
      device: parseDevice({ mac: MAC }),
      catalogue: await loadCatalogue(dataDir),
      assets: createAssetReader(await makeTree(t, {})),
      boot: testConfig(dataDir, dataDir).boot,
      bootId: 'a'.repeat(32),
      mirror,
    });
    assert.equal(result.outcome, 'boot', result.body);
    assert.deepEqual(protectedFiles.sort(), [
      'flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz',
      'flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe_image.cpio.gz',
    ]);
  });
});
