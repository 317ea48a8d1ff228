/**
 * End to end, UEFI x86_64 through GRUB, as a UEFI HTTP Boot machine netboots: OVMF's iPXE
 * (efi-virtio.rom) only loads a GRUB EFI image built for the test with `grub-mkstandalone`,
 * whose embedded config DHCPs and loads bootdepot's `/grub` config for the machine. GRUB then
 * loads the LinuxKit set's kernel and initrd over HTTP and boots it; /init reports and powers off.
 * The admin API must show the whole boot, recorded like one that went through /ipxe.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { promisify } from 'node:util';
import { describeRequests, openScenario, prepareScenario, reportFailures, skipUnlessReady, startBootdepot } from './harness.ts';
import { layOutLinuxKitSet, MARKERS } from './images.ts';
import { startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = '52:54:00:e2:e0:07';
const UUID = 'b00dde90-0e2e-4000-8000-525400e2e007';
const ADMIN_TOKEN = 'e2e-uefi-grub-admin-token';
const GRUB_MODULES = '/usr/lib/grub/x86_64-efi';

const DATA = {
  'groups/e2e.yaml': `name: e2e GRUB VM\nprofile: e2e\nselector:\n  mac: "${MAC}"\n`,
  'profiles/e2e.yaml': 'name: e2e LinuxKit set\nlinuxkit:\n  name: e2e\n',
};

test('GRUB under UEFI loads /grub and boots the LinuxKit set it names', { timeout: 10 * 60_000 }, async (t) => {
  const missing = [
    ...(existsSync('/usr/bin/grub-mkstandalone') ? [] : ['grub-mkstandalone (grub-common)']),
    ...(existsSync(GRUB_MODULES) ? [] : [`${GRUB_MODULES} (grub-efi-amd64-bin)`]),
  ];
  if (skipUnlessReady(t, missing)) return;
  const prepared = await prepareScenario(t, 'uefi');
  if (!prepared) return;
  const { images } = prepared;

  const scenario = await openScenario(t, 'uefi-grub');
  const bootdepot = await startBootdepot(scenario, DATA, { adminToken: ADMIN_TOKEN });
  await layOutLinuxKitSet(images, bootdepot.assetsDir, { name: 'e2e', bootdepotUrl: bootdepot.guestUrl });
  // What a site's grub.cfg for UEFI HTTP Boot says, pointed at bootdepot.
  const host = new URL(bootdepot.guestUrl).host;
  const embedded = path.join(scenario.dir, 'grub.cfg');
  // (In double quotes: `&` would end the command, and the variables must still expand.)
  await writeFile(embedded, ['insmod efinet', 'insmod http', 'net_bootp', `configfile "(http,${host})/grub?mac=\${net_efinet0_dhcp_mac}&arch=\${grub_cpu}&platform=\${grub_platform}"`, ''].join('\n'));
  await promisify(execFile)('grub-mkstandalone', ['-O', 'x86_64-efi', '-o', path.join(bootdepot.assetsDir, 'grubx64.efi'), '--locales=', '--fonts=', '--themes=', `boot/grub/grub.cfg=${embedded}`]);

  const start = Date.now();
  const vm: Vm = startVm({ name: 'uefi-grub', workDir: scenario.dir, firmware: 'uefi', bootfile: `${bootdepot.guestUrl}/assets/grubx64.efi`, mac: MAC, uuid: UUID });
  scenario.defer(() => vm.kill());
  console.warn(`e2e: uefi-grub: bootdepot on ${bootdepot.server.url}; VM serial log ${vm.serialLogPath}`);

  await reportFailures({ scenario, bootdepot, vms: [vm], mac: MAC, start }, async () => {
    const failOn = [MARKERS.failed, 'Kernel panic'];
    const deadline = VM_HARD_LIMIT_MS - 10_000;
    await vm.waitFor(MARKERS.done, { timeoutMs: deadline, failOn });
    const exit = await Promise.race([vm.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000).unref())]);
    assert.ok(exit, 'the VM powers off after init is done');

    const requests = await bootdepot.requests();
    const config = requests.find((r) => r.method === 'GET' && r.path === '/grub');
    assert.ok(config, `bootdepot served /grub:\n${describeRequests(requests, start)}`);
    assert.equal(config.query.get('platform'), 'efi');
    assert.equal(config.query.get('arch'), 'x86_64');
    assert.equal(config.query.get('mac'), MAC);
    assert.equal(requests.some((r) => r.path === '/ipxe'), false, 'the machine never asked /ipxe');
    // GRUB's HTTP reads the kernel twice (a whole GET, then a range); what counts is that both
    // images arrived whole, from this boot's URLs, and the boot went on to its report.
    const downloads = requests.filter((r) => r.kind === 'download' && r.outcome === 'complete').map((r) => r.path);
    assert.ok(downloads.includes('/assets/linuxkit/e2e-kernel') && downloads.includes('/assets/linuxkit/e2e-initrd.img'), describeRequests(requests, start));
    const res = await fetch(`${bootdepot.server.url}/api/v1/devices/${encodeURIComponent(MAC)}?events=100`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const view = (await res.json()) as { device: { stage?: string; lastProfile?: string; identity: { platform?: string } }; events: { detail: { type: string; userAgent?: string } }[] };
    assert.equal(view.device.lastProfile, 'e2e');
    assert.equal(view.device.stage, 'succeeded');
    assert.equal(view.device.identity.platform, 'efi');
    const types = view.events.map((e) => e.detail.type);
    assert.ok(types.includes('beacon'), `the GRUB config fetched the beacon: ${types.join(', ')}`);
    assert.match(view.events.find((e) => e.detail.type === 'script')?.detail.userAgent ?? '', /^GRUB /);
  });
});
