/**
 * End to end, persistent iPXE ("always PXE"): a machine that network-boots on every power-on
 * installs once, then boots its disk. The profile has `installOnce: true`; the same machine
 * (same MAC, same SMBIOS UUID) boots twice:
 *
 * 1. the LinuxKit set, to /init's done marker: /init reports `succeeded`, so bootdepot sets
 *    the device's next boot to `local`;
 * 2. on the next power-on bootdepot answers /ipxe with the local-disk script
 *    (`sanboot --no-describe --drive 0x80` under BIOS). The VM has no disk: it is stopped once
 *    bootdepot has answered and iPXE has had time to act on the answer.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { checkLinuxKitBootRecorded } from './boot-checks.ts';
import { describeRequests, eventually, openScenario, prepareScenario, reportFailures, seconds, startBootdepot, type ApiEvent } from './harness.ts';
import { layOutLinuxKitSet, MARKERS } from './images.ts';
import { startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = '52:54:00:e2:e0:02';
const UUID = 'b00dde90-0e2e-4000-8000-525400e2e002';
const ADMIN_TOKEN = 'e2e-persistent-ipxe-admin-token';
const INSTALL_ONCE_REASON = 'profile install has installOnce and the device reported succeeded';
/** iPXE's bootstrap asks again 10 s after a failed chain; a little more covers the emulation's delays. */
const AFTER_ANSWER_MS = 15_000;

const DATA = {
  'groups/install.yaml': `name: e2e persistent iPXE\nprofile: install\nselector:\n  mac: "${MAC}"\n`,
  'profiles/install.yaml': 'name: e2e install once\nlinuxkit:\n  name: e2e\ninstallOnce: true\n',
};

const scripts = (events: readonly ApiEvent[]) => events.filter((e) => e.detail.type === 'script').sort((a, b) => a.id - b.id);

test('persistent iPXE: an installOnce profile boots once, then the machine gets the local-disk script', { timeout: 10 * 60_000 }, async (t) => {
  const prepared = await prepareScenario(t, 'bios');
  if (!prepared) return;
  const { images } = prepared;

  const scenario = await openScenario(t, 'persistent-ipxe');
  const bootdepot = await startBootdepot(scenario, DATA, { adminToken: ADMIN_TOKEN });
  await layOutLinuxKitSet(images, bootdepot.assetsDir, { name: 'e2e', bootdepotUrl: bootdepot.guestUrl });
  console.warn(`e2e: persistent-ipxe: bootdepot on ${bootdepot.server.url}; files in ${scenario.dir}`);

  const vms: Vm[] = [];
  const boot = (name: string) => {
    const vm = startVm({ name, workDir: scenario.dir, firmware: 'bios', bootfile: `${bootdepot.guestUrl}/boot.ipxe`, mac: MAC, uuid: UUID });
    vms.push(vm);
    scenario.defer(() => vm.kill());
    console.warn(`e2e: persistent-ipxe: VM ${name} started; serial log ${vm.serialLogPath}, monitor ${vm.monitorPath}`);
    return vm;
  };
  const start = Date.now();
  // What iPXE did after the local-disk answer; read by the subtest below.
  let afterLocal: { outcome: 'asked-again' | 'firmware' | 'nothing'; detail: string } | undefined;

  await reportFailures({ scenario, bootdepot, vms, mac: MAC, start }, async () => {
    // Run 1: the install.
    const install = boot('install');
    const failOn = [MARKERS.failed, 'Kernel panic'];
    await install.waitFor(MARKERS.done, { timeoutMs: VM_HARD_LIMIT_MS - 10_000, failOn });
    const exit = await Promise.race([install.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000).unref())]);
    assert.ok(exit, 'the VM powers off after init is done');
    const installDone = Date.now();

    const first = await checkLinuxKitBootRecorded(bootdepot, { mac: MAC, profile: 'install', group: 'install', platform: 'pcbios', order: ['kernel', 'initrd'], dir: 'linuxkit', name: 'e2e' });
    assert.equal(first.view.device.identity.uuid, UUID);
    const afterInstall = await eventually('installOnce set the next boot', 10_000, async () => {
      const view = await bootdepot.device(MAC);
      return view?.device.nextBoot ? view : undefined;
    });
    assert.deepEqual(
      { action: afterInstall.device.nextBoot?.action, reason: afterInstall.device.nextBoot?.reason },
      { action: 'local', reason: INSTALL_ONCE_REASON },
      'after the succeeded report the next boot is the local disk',
    );
    const succeeded = afterInstall.events.find((e) => e.detail.type === 'report' && e.detail.state === 'succeeded');
    const setLocal = afterInstall.events.find((e) => e.detail.type === 'next-boot');
    assert.ok(succeeded && setLocal, 'a next-boot event was recorded');
    assert.ok(setLocal.id > succeeded.id, 'the next boot changed after the succeeded report');
    assert.deepEqual(setLocal.detail.type === 'next-boot' ? [setLocal.detail.by, setLocal.detail.nextBoot?.action] : [], ['installOnce', 'local']);

    // Run 2: the same machine powers on again.
    const second = boot('local');
    const secondStart = Date.now();
    const answered = await eventually('bootdepot answered the second power-on', 90_000, async () => {
      const view = await bootdepot.device(MAC);
      const seen = view ? scripts(view.events) : [];
      return view && seen.length >= 2 ? { view, script: seen[1] } : undefined;
    });
    const answeredAt = Date.now();
    const local = answered.script;
    assert.ok(local?.detail.type === 'script');
    assert.equal(local.detail.action, 'local', 'the second script boots the local disk');
    assert.equal(local.detail.reason, `next boot set to local: ${INSTALL_ONCE_REASON}`);
    assert.equal(local.detail.identity.mac, MAC);
    assert.equal(local.detail.identity.uuid, UUID, 'the same SMBIOS UUID both times');
    assert.equal(local.detail.identity.platform, 'pcbios');
    assert.equal(local.detail.group, 'install');
    assert.equal(local.detail.profile, undefined, 'no profile is booted');
    assert.ok(local.bootId && local.bootId !== first.view.device.lastBootId, 'the local boot has a boot id of its own');
    assert.equal(answered.view.device.nextBoot?.action, 'local', 'the next boot stays local');
    assert.equal(answered.view.device.lastAction, 'local');
    assert.equal(answered.view.device.bootCount, 2, 'the local-disk boot counts as a boot');

    // What bootdepot answered (the event has no body): the log's decision for that request.
    const decisions = (await bootdepot.logLines()).filter((l) => l.msg === 'script decided');
    assert.deepEqual(
      decisions.map((d) => d.outcome),
      ['boot', 'local'],
      'bootdepot logged a boot, then a local-disk decision',
    );
    // Nothing but the bootstrap and the script was fetched the second time (the request line is
    // written once the answer is sent, just after the event is recorded).
    const afterSecondStart = await eventually('the second /ipxe in the request log', 5_000, async () => {
      const served = (await bootdepot.requests()).filter((r) => r.time >= secondStart && !r.path.startsWith('/api/'));
      return served.some((r) => r.path === '/ipxe') ? served : undefined;
    });
    assert.deepEqual(
      afterSecondStart.map((r) => [r.method, r.path, r.status]),
      [
        ['GET', '/boot.ipxe', 200],
        ['GET', '/ipxe', 200],
      ],
      `the second power-on fetched the bootstrap and its script only:\n${describeRequests(afterSecondStart, start)}`,
    );
    const secondScriptUrl = afterSecondStart.find((r) => r.path === '/ipxe')?.url ?? '';

    // The VM has no disk: iPXE's sanboot of drive 0x80 fails. Wait for what it does next: ask
    // bootdepot again (the bootstrap's retry, 10 s on), or hand back to SeaBIOS.
    const firmwareBefore = (await second.firmwareLog()).length;
    afterLocal = await eventually(
      'iPXE acted on the local-disk script',
      AFTER_ANSWER_MS,
      async () => {
        const views = await bootdepot.device(MAC);
        if (views && scripts(views.events).length > 2) return { outcome: 'asked-again' as const, detail: 'iPXE fetched /ipxe again: the failed sanboot ended the script, and the bootstrap retried' };
        const firmware = (await second.firmwareLog()).slice(firmwareBefore);
        const back = /Booting from (?!ROM)[^\n]*|No bootable device[^\n]*|Boot failed[^\n]*/.exec(firmware);
        if (back) return { outcome: 'firmware' as const, detail: `SeaBIOS got the machine back: ${back[0].trim()}` };
        if (!second.running()) return { outcome: 'firmware' as const, detail: 'the VM ended (the firmware gave up)' };
        return undefined;
      },
      500,
    ).catch(() => ({ outcome: 'nothing' as const, detail: `no further request and no firmware message within ${AFTER_ANSWER_MS / 1000} s` }));
    await second.kill();

    // The script itself (events and log lines carry no body): asked again with the VM's own
    // query, after everything else is checked, since this records one more script.
    const again = await bootdepot.server.app.inject({ method: 'GET', url: secondScriptUrl });
    assert.equal(again.statusCode, 200);
    const lines = again.body.split('\n');
    assert.equal(lines[0], '#!ipxe');
    assert.ok(lines.includes(`# bootdepot: local disk for ${MAC}: next boot set to local: ${INSTALL_ONCE_REASON}`), `the reason is in a comment:\n${again.body}`);
    assert.ok(lines.includes('sanboot --no-describe --drive 0x80 || goto bootdepot-local-failed'), `pcbios boots BIOS drive 0x80:\n${again.body}`);

    t.diagnostic(
      `install: done +${seconds(start, installDone)}s (stages ${first.timeline}); second power-on answered local ` +
        `+${seconds(secondStart, answeredAt)}s after it started; then: ${afterLocal.detail}`,
    );
  });

  // A failed command ends an iPXE script; the local script must still reach its `exit`, or the
  // bootstrap would ask again every 10 s, a new boot each time.
  await t.test('a local-disk script whose sanboot fails hands the machine back to the firmware', () => {
      assert.ok(afterLocal, 'the scenario got that far');
      assert.equal(afterLocal.outcome, 'firmware', afterLocal.detail);
  });
});
