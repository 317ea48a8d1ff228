/**
 * End to end, UEFI x86_64 with a matchbox-format profile that has two initrds: OVMF runs
 * Debian's EFI iPXE (built without LoadFile2 initrd support), which hands an EFI-stub kernel only
 * the initrds the kernel line names. bootdepot names each (`initrd --name NAME URL`) and passes
 * `initrd=NAME` for each; the kernel unpacks both, the second over the first. The second holds
 * a /init that says so, so the VM's console proves both arrived; the boot is recorded whole.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { describeRequests, eventually, openScenario, prepareScenario, reportFailures, startBootdepot } from './harness.ts';
import { cpioNewc, INIT_SCRIPT, MARKERS } from './images.ts';
import { startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = '52:54:00:e2:e0:07';
const ADMIN_TOKEN = 'e2e-uefi-matchbox-admin-token';
const SECOND = 'BOOTDEPOT-E2E: second initrd unpacked';

test('UEFI iPXE boots a matchbox-format profile with two initrds, both named', { timeout: 10 * 60_000 }, async (t) => {
  const prepared = await prepareScenario(t, 'uefi');
  if (!prepared) return;
  const { images } = prepared;

  const scenario = await openScenario(t, 'uefi-matchbox');
  const profile = (url: string) =>
    JSON.stringify({
      id: 'two-initrds',
      boot: { kernel: '/assets/os/vmlinuz', initrd: ['/assets/os/base.img', '/assets/os/overlay.img'], args: ['console=ttyS0', 'panic=-1', `bootdepot.url=${url}`] },
    });
  // The guest URL is known only once the server listens: write the profile after, and reload.
  const bootdepot = await startBootdepot(scenario, { 'groups/vm.yaml': `profile: two-initrds\nselector: {mac: "${MAC}"}\n` }, { adminToken: ADMIN_TOKEN });
  await writeFile(path.join(bootdepot.dataDir, 'profiles', 'two-initrds.json'), profile(bootdepot.guestUrl));
  await bootdepot.server.catalogue.reload();
  const os = path.join(bootdepot.assetsDir, 'os');
  await mkdir(os, { recursive: true });
  await copyFile(images.kernel, path.join(os, 'vmlinuz'));
  // The kernel finds a cpio archive after a compressed one only at a 4-byte boundary of the
  // concatenation, so the first initrd is padded with zeros (which the kernel skips).
  const base = await readFile(images.initrd);
  await writeFile(path.join(os, 'base.img'), Buffer.concat([base, Buffer.alloc((4 - (base.length % 4)) % 4)]));
  // The overlay replaces /init with one that first says it came from the second initrd.
  const init = INIT_SCRIPT.replace('say "init running', `say "${SECOND.replace('BOOTDEPOT-E2E: ', '')}"\nsay "init running`);
  assert.notEqual(init, INIT_SCRIPT);
  await writeFile(path.join(os, 'overlay.img'), cpioNewc([{ path: 'init', mode: 0o100755, data: Buffer.from(init) }]));

  const start = Date.now();
  const vm: Vm = startVm({ name: 'uefi-matchbox', workDir: scenario.dir, firmware: 'uefi', bootfile: `${bootdepot.guestUrl}/boot.ipxe`, mac: MAC });
  scenario.defer(() => vm.kill());
  await reportFailures({ scenario, bootdepot, vms: [vm], mac: MAC, start }, async () => {
    const failOn = [MARKERS.failed, 'Kernel panic'];
    const deadline = VM_HARD_LIMIT_MS - 10_000;
    await vm.waitFor(SECOND, { timeoutMs: deadline, failOn });
    await vm.waitFor(MARKERS.done, { timeoutMs: deadline - (Date.now() - start), failOn });

    const requests = await bootdepot.requests();
    const script = requests.find((r) => r.method === 'GET' && r.path === '/ipxe');
    assert.equal(script?.query.get('platform'), 'efi', `platform=efi reached bootdepot:\n${describeRequests(requests, start)}`);
    const cmdline = /Kernel command line: ([^\r\n]*)/.exec(vm.serial())?.[1] ?? '';
    assert.match(cmdline, /(^| )initrd=base\.img initrd=overlay\.img( |$)/, `the kernel got both initrd names: ${cmdline}`);
    // Every image of the boot was downloaded whole and recorded on it, and /init reported.
    const view = await eventually(`the boot of ${MAC} recorded`, 15_000, async () => {
      const seen = await bootdepot.device(MAC);
      const done = seen?.events.filter((e) => e.detail.type === 'download' && e.detail.phase === 'completed' && e.bootId === seen.device.lastBootId) ?? [];
      return seen && done.length === 3 && seen.device.stage === 'succeeded' ? { seen, done } : undefined;
    });
    const completed = view.done.map((e) => (e.detail.type === 'download' ? [e.detail.path, e.detail.role, e.detail.bytes] : [])).sort();
    assert.deepEqual(completed, [
      ['/assets/os/base.img', 'initrd', (await stat(path.join(os, 'base.img'))).size],
      ['/assets/os/overlay.img', 'initrd', (await stat(path.join(os, 'overlay.img'))).size],
      ['/assets/os/vmlinuz', 'kernel', (await stat(path.join(os, 'vmlinuz'))).size],
    ]);
    assert.equal(view.seen.device.lastProfile, 'two-initrds');
  });
});
