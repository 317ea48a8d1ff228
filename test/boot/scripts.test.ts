/**
 * Scripts compared as exact strings with golden files (test/boot/golden/*.ipxe). After a
 * deliberate change, regenerate with `UPDATE_GOLDEN=1 npm test` and review the diff.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { renderBootstrap } from '../../src/boot/bootstrap.ts';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { parseDevice, type QueryInput } from '../../src/common/identity.ts';
import { renderDeviceScript } from '../../src/boot/render.ts';
import { defaultMirrorSettings } from '../../src/mirror/config.ts';
import { PullThroughMirror } from '../../src/mirror/mirror.ts';
import { makeTree, silentLogger, testConfig } from '../helpers.ts';

const GOLDEN_DIR = path.join(import.meta.dirname, 'golden');
const BASE = 'http://10.0.0.5:8080';

const DATA = {
  'profiles/lk-packet.yaml': 'linuxkit: {name: sshd}\npreset: packet\n',
  'profiles/lk-generic.yaml': 'linuxkit: {name: sshd}\npreset: generic\n',
  'profiles/lk-ttys1.yaml': 'linuxkit: {name: ttys1, dir: lk/custom}\npreset: packet\nargs: [extra=1]\n',
  'profiles/lk-missing.yaml': 'linuxkit: {name: absent}\n',
  'profiles/fc-packet.yaml': 'flatcar: {channel: stable, version: 4152.2.0}\npreset: packet\n',
  'profiles/fc-generic.yaml': 'flatcar: {channel: beta, version: current, source: upstream, autologin: true}\nignition_id: node.ign\nargs: [flatcar.debug]\n',
  'profiles/fc-local.yaml': 'flatcar: {channel: lts, arch: amd64, version: 4081.3.6, source: local}\n',
  'profiles/fc-mirror.yaml': 'flatcar: {channel: alpha, arch: arm64, source: "https://mirror.example.net/flatcar/alpha/arm64/4200.0.0/"}\npreset: packet\n',
  'profiles/matchbox.json': JSON.stringify({
    boot: {
      kernel: '/assets/coreos/vmlinuz',
      initrd: ['/assets/coreos/initrd-a.img', '--name main /assets/coreos/initrd-b.img'],
      args: ['initrd=main', 'coreos.config.url=http://matchbox/ignition?uuid=${uuid}&mac=${mac:hexhyp}', 'console=ttyS0'],
    },
  }),
  'profiles/tpl.yaml': 'template: custom\n',
  'templates/custom.liquid': [
    '#!ipxe',
    '# {{ profile.id }} for {{ device.mac }} in {{ group.id }}',
    'set rack {{ group.metadata.rack }}',
    'echo serial {{ device.serial }} product {{ device.product }} role {{ labels.role }}',
    'kernel {{ assets_url }}/custom/vmlinuz console={{ group.metadata.console }} meta={{ urls.metadata }}',
    'boot',
  ].join('\n'),
  'ignition/node.ign': '{"ignition":{"version":"3.4.0"}}',
  'groups/lk-packet.yaml': 'profile: lk-packet\nselector: {case: lk-packet}\n',
  'groups/lk-generic.yaml': 'profile: lk-generic\nselector: {case: lk-generic}\n',
  'groups/lk-ttys1.yaml': 'profile: lk-ttys1\nselector: {case: lk-ttys1}\n',
  'groups/lk-missing.yaml': 'profile: lk-missing\nselector: {case: lk-missing}\n',
  'groups/fc-packet.yaml': 'profile: fc-packet\nselector: {case: fc-packet}\n',
  'groups/fc-generic.yaml': 'profile: fc-generic\nselector: {case: fc-generic}\n',
  'groups/fc-local.yaml': 'profile: fc-local\nselector: {case: fc-local}\n',
  'groups/fc-mirror.yaml': 'profile: fc-mirror\nselector: {case: fc-mirror}\n',
  'groups/matchbox.yaml': 'profile: matchbox\nselector: {case: matchbox}\n',
  'groups/tpl.yaml': 'profile: tpl\nselector: {case: tpl}\nmetadata: {rack: r12, console: ttyS1}\n',
};

const ASSETS = {
  'linuxkit/sshd-kernel': 'kernel',
  'linuxkit/sshd-initrd.img': 'initrd',
  'linuxkit/sshd-cmdline': 'console=tty0 console=ttyS0 console=ttyAMA0\n',
  'lk/custom/ttys1-kernel': 'kernel',
  'lk/custom/ttys1-initrd.img': 'initrd',
  'lk/custom/ttys1-cmdline': 'console=ttyS1,115200\r\nquiet\n',
  'coreos/vmlinuz': 'k',
  'coreos/initrd-a.img': 'a',
  'coreos/initrd-b.img': 'b',
  'flatcar/lts/amd64/4081.3.6/flatcar_production_pxe.vmlinuz': 'k',
  'flatcar/lts/amd64/4081.3.6/flatcar_production_pxe_image.cpio.gz': 'i',
};

const MAC = '52:54:00:12:34:56';

async function render(t: TestContext, query: QueryInput) {
  const dataDir = await makeTree(t, DATA);
  const assetsDir = await makeTree(t, ASSETS);
  const config = testConfig(dataDir, assetsDir);
  const catalogue = await loadCatalogue(dataDir);
  assert.deepEqual(catalogue.problems, []);
  const device = parseDevice({ mac: MAC, ...query });
  // A real mirror over an empty cache: the golden profiles name concrete versions, so it is
  // never asked to resolve `current` (which would go upstream).
  const mirror = await PullThroughMirror.open({ settings: defaultMirrorSettings(path.join(assetsDir, '.cache')), log: silentLogger });
  t.after(() => mirror.close());
  return renderDeviceScript({ baseUrl: BASE, device, catalogue, assets: createAssetReader(assetsDir), boot: config.boot, mirror });
}

async function golden(name: string, actual: string): Promise<void> {
  const file = path.join(GOLDEN_DIR, `${name}.ipxe`);
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(file, actual);
  assert.equal(actual, await readFile(file, 'utf8'), `${name} differs from ${file}`);
}

const CASES: [string, QueryInput][] = [
  ['linuxkit-x86_64-pcbios-packet', { case: 'lk-packet', arch: 'x86_64', platform: 'pcbios' }],
  ['linuxkit-x86_64-pcbios-generic', { case: 'lk-generic', arch: 'x86_64', platform: 'pcbios' }],
  ['linuxkit-x86_64-efi-packet', { case: 'lk-packet', arch: 'x86_64', platform: 'efi' }],
  ['linuxkit-arm64-efi-packet', { case: 'lk-packet', arch: 'arm64', platform: 'efi' }],
  ['linuxkit-cmdline-console-packet', { case: 'lk-ttys1' }],
  ['linuxkit-missing-assets', { case: 'lk-missing' }],
  ['flatcar-amd64-packet', { case: 'fc-packet', arch: 'x86_64' }],
  ['flatcar-arm64-packet', { case: 'fc-packet', arch: 'arm64' }],
  ['flatcar-amd64-generic-ignition', { case: 'fc-generic', arch: 'x86_64', uuid: '4c4c4544-0042-3510-8052-b7c04f4b4d31' }],
  ['flatcar-i386-ipxe-boots-amd64', { case: 'fc-generic', arch: 'i386' }],
  ['flatcar-arm32-unsupported', { case: 'fc-generic', arch: 'arm32' }],
  ['flatcar-local', { case: 'fc-local' }],
  ['flatcar-url-arm64-packet', { case: 'fc-mirror' }],
  ['matchbox-boot', { case: 'matchbox' }],
  ['template', { case: 'tpl', serial: 'SN 42${x}', product: 'X11 || reboot', role: 'db#1' }],
  ['unmatched-poll', { case: 'none-of-these' }],
];

describe('golden scripts', () => {
  for (const [name, query] of CASES) {
    it(name, async (t) => {
      const result = await render(t, query);
      await golden(name, result.body);
    });
  }
  it('bootstrap', async () => {
    await golden('bootstrap', renderBootstrap(BASE));
  });
});

/** Our command lines without bootdepot's retry scaffolding or `|| goto` suffixes. */
function commands(script: string): string[] {
  const lines = script.split('\n');
  const end = lines.findIndex((line) => line.startsWith('boot '));
  return lines
    .slice(0, end + 1)
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith(':') && !line.startsWith('set bootdepot-'))
    .map((line) => line.replace(/ \|\| goto [a-z0-9-]+$/, ''));
}

/** `linuxkit run packet`'s script (x86_64 and arm64 shapes), from its published source. */
function linuxkitPacketScript(name: string, baseUrl: string, cmdline: string, arch: string): string[] {
  const lines = ['dhcp', `set base-url ${baseUrl}`];
  if (arch !== 'aarch64') {
    const tty = cmdline.includes('console=ttyS1') ? '' : 'console=ttyS1,115200';
    lines.push(`set kernel-params ip=dhcp nomodeset ro serial ${tty} ${cmdline}`);
    lines.push(`kernel \${base-url}/${name}-kernel \${kernel-params}`);
    lines.push(`initrd \${base-url}/${name}-initrd.img`);
  } else {
    lines.push(`initrd --name initrd \${base-url}/${name}-initrd.img`);
    lines.push(`set kernel-params ip=dhcp nomodeset ro ${cmdline}`);
    lines.push(`kernel \${base-url}/${name}-kernel initrd=initrd root=/dev/ram0 \${kernel-params}`);
  }
  lines.push('boot');
  // iPXE splits on whitespace: linuxkit's double space for an empty console is the same command.
  return lines.map((line) => line.replace(/ +/g, ' ').trim());
}

describe('LinuxKit scripts match linuxkit run packet line by line', () => {
  const cases: [string, QueryInput, string, string, string][] = [
    ['x86_64', { case: 'lk-packet', arch: 'x86_64', platform: 'pcbios' }, 'sshd', 'linuxkit', 'console=tty0 console=ttyS0 console=ttyAMA0'],
    ['x86_64 with console=ttyS1 in the cmdline', { case: 'lk-ttys1', arch: 'x86_64' }, 'ttys1', 'lk/custom', 'console=ttyS1,115200 quiet extra=1'],
    ['arm64', { case: 'lk-packet', arch: 'arm64', platform: 'efi' }, 'sshd', 'linuxkit', 'console=tty0 console=ttyS0 console=ttyAMA0'],
  ];
  for (const [name, query, setName, dir, cmdline] of cases) {
    it(name, async (t) => {
      const result = await render(t, query);
      const arch = query.arch === 'arm64' ? 'aarch64' : 'x86_64';
      assert.deepEqual(commands(result.body), linuxkitPacketScript(setName, `${BASE}/assets/${dir}`, cmdline, arch));
    });
  }
});
