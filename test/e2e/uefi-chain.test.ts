/**
 * End to end, UEFI x86_64: OVMF runs the EFI iPXE driver of the virtio NIC (Debian's
 * efi-virtio.rom), which DHCPs and chains bootdepot's /boot.ipxe; iPXE reports
 * `${platform}` = efi, so bootdepot answers the EFI shape of the LinuxKit script: the initrd
 * first, registered by name (`initrd --name initrd`), then the kernel with `initrd=initrd`
 * (an EFI-stub kernel finds its initrd only by name). The kernel boots to /init, which reports
 * and powers off; the admin API must show the whole boot.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { checkLinuxKitBootRecorded } from './boot-checks.ts';
import { describeRequests, openScenario, prepareScenario, reportFailures, seconds, startBootdepot } from './harness.ts';
import { layOutLinuxKitSet, MARKERS } from './images.ts';
import { startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = '52:54:00:e2:e0:04';
const UUID = 'b00dde90-0e2e-4000-8000-525400e2e004';
const ADMIN_TOKEN = 'e2e-uefi-chain-admin-token';

const DATA = {
  'groups/e2e.yaml': `name: e2e UEFI VM\nprofile: e2e\nselector:\n  mac: "${MAC}"\n`,
  'profiles/e2e.yaml': 'name: e2e LinuxKit set\nlinuxkit:\n  name: e2e\n',
};

test('UEFI iPXE chains boot.ipxe -> /ipxe -> the EFI shape of a LinuxKit set, which boots', { timeout: 10 * 60_000 }, async (t) => {
  const prepared = await prepareScenario(t, 'uefi');
  if (!prepared) return;
  const { images } = prepared;

  const scenario = await openScenario(t, 'uefi-chain');
  const bootdepot = await startBootdepot(scenario, DATA, { adminToken: ADMIN_TOKEN });
  await layOutLinuxKitSet(images, bootdepot.assetsDir, { name: 'e2e', bootdepotUrl: bootdepot.guestUrl });
  console.warn(`e2e: uefi-chain: bootdepot on ${bootdepot.server.url}; files in ${scenario.dir}`);

  const start = Date.now();
  const vm: Vm = startVm({ name: 'uefi-chain', workDir: scenario.dir, firmware: 'uefi', bootfile: `${bootdepot.guestUrl}/boot.ipxe`, mac: MAC, uuid: UUID });
  scenario.defer(() => vm.kill());
  console.warn(`e2e: uefi-chain: VM started; serial log ${vm.serialLogPath}, monitor ${vm.monitorPath}`);

  await reportFailures({ scenario, bootdepot, vms: [vm], mac: MAC, start }, async () => {
    const failOn = [MARKERS.failed, 'Kernel panic'];
    const deadline = VM_HARD_LIMIT_MS - 10_000;
    await vm.waitFor(MARKERS.running, { timeoutMs: deadline, failOn });
    const initAt = Date.now();
    const network = await vm.waitFor(MARKERS.network, { timeoutMs: deadline - (initAt - start), failOn });
    await vm.waitFor(MARKERS.done, { timeoutMs: deadline - (Date.now() - start), failOn });
    const doneAt = Date.now();
    const exit = await Promise.race([vm.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000).unref())]);
    assert.ok(exit, 'the VM powers off after init is done');
    assert.equal(exit.timedOut, false);
    assert.match(network, new RegExp(`mac ${MAC}`));

    const requests = await bootdepot.requests();
    const script = requests.find((r) => r.method === 'GET' && r.path === '/ipxe');
    assert.ok(script, `bootdepot served /ipxe:\n${describeRequests(requests, start)}`);
    // What EFI iPXE filled in.
    assert.equal(script.query.get('platform'), 'efi', 'platform=efi reached bootdepot');
    assert.equal(script.query.get('arch'), 'x86_64');
    assert.equal(script.query.get('mac'), MAC.replace(/:/g, '-'));
    assert.equal(script.query.get('uuid'), UUID);
    const downloads = requests.filter((r) => r.kind === 'download').map((r) => [r.path, r.status, r.outcome]);
    assert.deepEqual(
      downloads,
      [
        ['/assets/linuxkit/e2e-initrd.img', 200, 'complete'],
        ['/assets/linuxkit/e2e-kernel', 200, 'complete'],
      ],
      'the initrd, then the kernel',
    );
    const decided = (await bootdepot.logLines()).find((l) => l.msg === 'script decided');
    assert.deepEqual([decided?.profile, decided?.outcome], ['e2e', 'boot']);
    // The kernel found the initrd by name: /init ran from it, and the kernel line says so.
    const cmdline = /Kernel command line: ([^\r\n]*)/.exec(vm.serial())?.[1] ?? '';
    assert.match(cmdline, /(^| )initrd=initrd( |$)/, `the kernel got initrd=initrd: ${cmdline}`);

    const recorded = await checkLinuxKitBootRecorded(bootdepot, { mac: MAC, profile: 'e2e', group: 'e2e', platform: 'efi', order: ['initrd', 'kernel'], dir: 'linuxkit', name: 'e2e' });
    assert.equal(recorded.view.device.identity.arch, 'x86_64');
    // Stages only move forward (kernel ranks below initrd): with the initrd first, the device
    // shows `initrd` while its kernel downloads and never `kernel`.
    assert.deepEqual(recorded.recordedStages, ['script', 'initrd', 'booting', 'running', 'succeeded'], 'the stages GET /devices showed, in order');

    const at = (path: string) => requests.find((r) => r.path === path)?.time ?? start;
    t.diagnostic(
      `timeline from VM start: /ipxe +${seconds(start, script.time)}s, initrd +${seconds(start, at('/assets/linuxkit/e2e-initrd.img'))}s, ` +
        `kernel +${seconds(start, at('/assets/linuxkit/e2e-kernel'))}s, init +${seconds(start, initAt)}s, done +${seconds(start, doneAt)}s`,
    );
    t.diagnostic(`recorded stages from the script: ${recorded.timeline}`);
  });
});
