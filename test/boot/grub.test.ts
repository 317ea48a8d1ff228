/**
 * `/grub`: the same decision, recording and credentials as `/ipxe`, written as a GRUB config.
 * Exact configs are golden files (test/boot/golden/*.grub; `UPDATE_GOLDEN=1` rewrites them).
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { grubPath } from '../../src/boot/grub.ts';
import { renderDeviceScript } from '../../src/boot/render.ts';
import { parseDevice, type QueryInput } from '../../src/common/identity.ts';
import { makeTree, testApp, testConfig } from '../helpers.ts';
import { grubScriptCheck, grubScriptCheckOrSkip } from '../support/grub.ts';

const GOLDEN_DIR = path.join(import.meta.dirname, 'golden');
const BASE = 'http://10.0.0.5:8080';
const MAC = '52:54:00:12:34:56';
const TOKEN = 'grub-test-token-0123456789abcdef';

const DATA = {
  'profiles/lk.yaml': 'linuxkit: {name: sshd}\npreset: packet\n',
  'profiles/fc.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: node.ign\npreset: generic\n',
  'profiles/mb.json': JSON.stringify({
    boot: {
      kernel: '/assets/coreos/vmlinuz',
      initrd: ['/assets/coreos/initrd-a.img', '/assets/coreos/initrd-b.img'],
      args: ['coreos.config.url=http://matchbox/ignition?uuid=${uuid}&mac=${mac:hexhyp}', 'hostname=${net_default_hostname}', 'console=ttyS0'],
    },
  }),
  'profiles/tpl.yaml': 'template: custom\n',
  'templates/custom.liquid': '#!ipxe\nkernel {{ assets_url }}/x\nboot\n',
  'ignition/node.ign': '{"ignition":{"version":"3.4.0"}}',
  'groups/lk.yaml': 'profile: lk\nselector: {case: lk}\n',
  'groups/fc.yaml': 'profile: fc\nselector: {case: fc}\n',
  'groups/mb.yaml': 'profile: mb\nselector: {case: mb}\n',
  'groups/tpl.yaml': 'profile: tpl\nselector: {case: tpl}\n',
};
const ASSETS = {
  'linuxkit/sshd-kernel': 'kernel',
  'linuxkit/sshd-initrd.img': 'initrd',
  'linuxkit/sshd-cmdline': 'console=ttyS0 quiet\n',
  'coreos/vmlinuz': 'k',
  'coreos/initrd-a.img': 'a',
  'coreos/initrd-b.img': 'b',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz': 'kernel',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe_image.cpio.gz': 'initrd',
};

async function renderGrub(t: TestContext, query: QueryInput) {
  const dataDir = await makeTree(t, DATA);
  const assetsDir = await makeTree(t, ASSETS);
  const catalogue = await loadCatalogue(dataDir);
  assert.deepEqual(catalogue.problems, []);
  return renderDeviceScript({ baseUrl: BASE, device: parseDevice({ mac: MAC, ...query }), catalogue, assets: createAssetReader(assetsDir), boot: testConfig(dataDir, assetsDir).boot, format: 'grub' });
}

async function golden(name: string, actual: string): Promise<void> {
  const file = path.join(GOLDEN_DIR, `${name}.grub`);
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(file, actual);
  assert.equal(actual, await readFile(file, 'utf8'), `${name} differs from ${file}`);
}

describe('GRUB configs', () => {
  const cases: [string, QueryInput][] = [
    ['linuxkit-x86_64-packet', { case: 'lk', arch: 'x86_64', platform: 'efi' }],
    ['linuxkit-arm64', { case: 'lk', arch: 'arm64', platform: 'efi' }],
    ['flatcar-ignition', { case: 'fc', arch: 'x86_64' }],
    ['matchbox-boot', { case: 'mb', platform: 'pc' }],
    ['template-waits', { case: 'tpl' }],
    ['unmatched-poll', { case: 'none-of-these', role: "db'; reboot #" }],
  ];
  for (const [name, query] of cases) {
    it(name, async (t) => {
      const result = await renderGrub(t, query);
      await golden(`grub-${name}`, result.body);
    });
  }

  it('boots a set with linuxefi/initrdefi, then linux/initrd, then waits and asks /grub again', async (t) => {
    const { body, outcome } = await renderGrub(t, { case: 'lk', arch: 'x86_64' });
    assert.equal(outcome, 'boot');
    const lines = body.split('\n');
    assert.ok(lines.includes('default=0') && lines.includes('fallback="1 2"'));
    assert.ok(lines.some((line) => line.startsWith(`  linuxefi '(http,10.0.0.5:8080)/assets/linuxkit/sshd-kernel' "ip=dhcp"`)), body);
    assert.ok(lines.includes(`  initrdefi '(http,10.0.0.5:8080)/assets/linuxkit/sshd-initrd.img'`), body);
    assert.ok(lines.includes(`  initrd '(http,10.0.0.5:8080)/assets/linuxkit/sshd-initrd.img'`), body);
    assert.ok(lines.some((line) => line.startsWith(`    configfile '(http,10.0.0.5:8080)/grub?mac=52:54:00:12:34:56&`)), body);
    assert.equal(lines.at(-3), '  reboot');
    // iPXE's initrd=NAME means nothing to GRUB, which hands the initrd over itself.
    assert.doesNotMatch(body, /initrd=/);
  });

  it('writes a template profile as a wait naming why', async (t) => {
    const result = await renderGrub(t, { case: 'tpl' });
    assert.equal(result.outcome, 'wait');
    assert.match(result.problem ?? '', /iPXE template/);
    assert.match(result.body, /^echo 'bootdepot: profile tpl renders an iPXE template/m);
    assert.match(result.body, /^ {2}sleep 60$/m);
    assert.match(result.body, /^reboot$/m);
    assert.match(result.body, /^ {2}configfile '\(http,10\.0\.0\.5:8080\)\/grub\?mac=52:54:00:12:34:56&case=tpl'$/m);
  });

  it('names files on other servers and refuses what GRUB cannot fetch', () => {
    assert.equal(grubPath('/assets/a b', BASE), '(http,10.0.0.5:8080)/assets/a%20b');
    assert.equal(grubPath('https://mirror.example.net/x/y?z=1', BASE), '(https,mirror.example.net)/x/y?z=1');
    assert.equal(grubPath('http://[fd00::1]:81/k', BASE), '(http,[fd00::1]:81)/k');
    assert.equal(grubPath('tftp://10.0.0.1/k', BASE), undefined);
    assert.equal(grubPath('http://user:pw@host/k', BASE), undefined);
  });
});

describe('/grub over HTTP', () => {
  async function app(t: TestContext) {
    return testApp(t, { data: DATA, assets: ASSETS, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
  }

  it('records the boot like /ipxe: downloads, beacon and Ignition come from its plan', async (t) => {
    const { app: server } = await app(t);
    const res = await server.inject({ url: `/grub?mac=${MAC}&case=fc`, headers: { 'user-agent': 'GRUB 2.12' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const bootId = /\(http,localhost\)\/b\/([0-9a-f]{32})\/assets\/flatcar/.exec(res.body)?.[1];
    assert.ok(bootId, res.body);
    assert.match(res.body, new RegExp(`"ignition\\.config\\.url=http://localhost(?::80)?/b/${bootId}/ignition"`));
    assert.match(res.body, new RegExp(`^  cat '\\(http,localhost\\)/b/${bootId}/beacon'$`, 'm'));
    const kernel = await server.inject({ url: `/b/${bootId}/assets/flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz` });
    assert.equal(kernel.statusCode, 200);
    assert.equal(kernel.body, 'kernel');
    assert.equal((await server.inject({ url: `/b/${bootId}/beacon` })).statusCode, 200);
    const ignition = await server.inject({ url: `/b/${bootId}/ignition` });
    assert.equal(ignition.statusCode, 200);
    assert.equal(ignition.body, '{"ignition":{"version":"3.4.0"}}');
    // matchbox's plain URL answers from the same boot, to the address that fetched its config only.
    assert.equal((await server.inject({ url: `/ignition?mac=${MAC}` })).statusCode, 200);
    assert.equal((await server.inject({ url: `/ignition?mac=${MAC}`, remoteAddress: '10.9.9.9' })).statusCode, 403);
    const device = await server.inject({ url: `/api/v1/devices/${MAC}`, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(device.statusCode, 200);
    const summary = device.json<{ device: { lastProfile?: string; stage?: string } }>();
    assert.equal(summary.device.lastProfile, 'fc');
    assert.equal(summary.device.stage, 'booting');
  });

  it('answers a held machine with a wait and a local one with the disk, as /ipxe does', async (t) => {
    const { app: server } = await app(t);
    const setNext = async (action: string) => {
      const res = await server.inject({ method: 'PUT', url: `/api/v1/devices/${MAC}/next-boot`, headers: { authorization: `Bearer ${TOKEN}` }, payload: { action, reason: 'maintenance' } });
      assert.equal(res.statusCode, 200, res.body);
    };
    await server.inject({ url: `/grub?mac=${MAC}&case=lk` });
    await setNext('hold');
    const held = await server.inject({ url: `/grub?mac=${MAC}&case=lk` });
    assert.match(held.body, /^echo 'bootdepot: held by the operator: /m);
    assert.match(held.body, /^ {2}configfile '\(http,localhost\)\/grub\?mac=52:54:00:12:34:56&case=lk'$/m);
    assert.doesNotMatch(held.body, /linux/);
    await setNext('local');
    const local = await server.inject({ url: `/grub?mac=${MAC}&case=lk` });
    assert.match(local.body, /^if \[ "\$grub_platform" = "efi" \]; then exit; fi$/m);
    assert.match(local.body, /^chainloader \+1$/m);
  });

  it('keeps hostile labels inside one quoted word, and they reach the same group when asked again', async (t) => {
    const { app: server } = await app(t);
    const res = await server.inject({ url: `/grub?mac=${MAC}&case=none&note=${encodeURIComponent("x' ; reboot ; echo '${root}\n")}` });
    assert.equal(res.statusCode, 200);
    const configfile = res.body.split('\n').find((line) => line.startsWith('  configfile '));
    assert.ok(configfile);
    assert.match(configfile, /^ {2}configfile '\(http,localhost\)\/grub\?[A-Za-z0-9_.~:%=&-]+'$/);
    const again = /\(http,localhost\)(\/grub\?[^']+)/.exec(configfile)?.[1] ?? '';
    const second = await server.inject({ url: again });
    assert.equal(second.body, res.body);
  });

  it('answers a request without a MAC from the groups its labels select, as /ipxe (and matchbox) do, and 400 to a MAC that is none', async (t) => {
    const { app: server } = await app(t);
    assert.equal((await server.inject({ url: '/grub' })).statusCode, 200);
    assert.equal((await server.inject({ url: '/grub?mac=12:34' })).statusCode, 400);
  });
});

describe('GRUB configs pass GRUB\'s own parser (grub-script-check)', () => {
  it('accepts every golden config and configs carrying hostile labels, and rejects a broken one', async (t) => {
    const binary = grubScriptCheckOrSkip(t);
    if (!binary) return;
    const dir = await makeTree(t, {});
    const files: string[] = [];
    for (const name of await readdir(GOLDEN_DIR)) if (name.endsWith('.grub')) files.push(path.join(GOLDEN_DIR, name));
    assert.ok(files.length >= 6);
    const hostile = ["x' ; reboot ; echo '", '${root} $(x) `y` "z" \\ ; | & { } #', 'a\nb\rc\u0000d'];
    for (const [index, value] of hostile.entries()) {
      for (const query of [{ case: 'none', note: value }, { case: 'mb', note: value }, { case: 'lk', arch: 'arm64', note: value }]) {
        const file = path.join(dir, `hostile-${index}-${query.case}.grub`);
        await writeFile(file, (await renderGrub(t, query)).body);
        files.push(file);
      }
    }
    for (const file of files) {
      const result = await grubScriptCheck(binary, file);
      assert.equal(result.code, 0, `${file}: ${result.output}`);
    }
    // The checker can fail: an unclosed entry and an iPXE expansion left unescaped.
    const broken = path.join(dir, 'broken.grub');
    await writeFile(broken, 'menuentry \'x\' {\n  linux "a=${mac:hexhyp}"\n');
    assert.notEqual((await grubScriptCheck(binary, broken)).code, 0);
  });
});

describe('/grub as GRUB 2.06 asks for it', () => {
  it('spells Content-Length as GRUB matches it, and links the port a Host without one came in on', async (t) => {
    const { app: server } = await testApp(t, { data: DATA, assets: ASSETS });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const port = (server.server.address() as AddressInfo).port;
    // GRUB's request: `Host:` without the port it connected to.
    const ask = (url: string) =>
      new Promise<string>((resolve, reject) => {
        let out = '';
        const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GRUB 2.06-13+deb12u2\r\nConnection: close\r\n\r\n`));
        socket.on('data', (chunk: Buffer) => (out += chunk.toString()));
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
      });
    const answer = await ask(`/grub?mac=${MAC}&case=lk`);
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}(\\r\\n|$)`));
    assert.match(head, /\r\nContent-Type: text\/plain; charset=utf-8(\r\n|$)/);
    assert.match(body, new RegExp(`^  linux '\\(http,127\\.0\\.0\\.1:${port}\\)/b/[0-9a-f]{32}/assets/linuxkit/sshd-kernel'`, 'm'));
    const bootId = /\/b\/([0-9a-f]{32})\/beacon/.exec(body)?.[1];
    assert.ok(bootId);
    assert.match(await ask(`/b/${bootId}/beacon`), /\r\nContent-Length: 3\r\n[\s\S]*\r\n\r\nok\n$/);
  });
});
