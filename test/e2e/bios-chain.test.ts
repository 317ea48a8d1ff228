/**
 * End to end, BIOS: a QEMU VM whose virtio NIC runs Debian's iPXE ROM DHCPs, chains
 * bootdepot's /boot.ipxe, which chains /ipxe with the machine's identity; the group for its MAC
 * gives it a LinuxKit profile, and iPXE fetches the set's kernel and initrd through the boot's
 * tracked URLs (/b/<id>/assets/...) and boots them. The kernel's /init reports on the serial
 * console and to /events, then powers off. bootdepot's admin API must then show the whole boot:
 * script, kernel, initrd, booting (beacon), running, succeeded.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { checkLinuxKitBootRecorded } from './boot-checks.ts';
import { describeRequests, openScenario, prepareScenario, reportFailures, seconds, startBootdepot, type LoggedRequest } from './harness.ts';
import { layOutLinuxKitSet, MARKERS } from './images.ts';
import { DEFAULT_MAC, DEFAULT_UUID, startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = DEFAULT_MAC;
/** A serial number with a space and an ampersand: it must reach bootdepot intact. */
const SERIAL = 'E2E 42&x';
const ADMIN_TOKEN = 'e2e-bios-chain-admin-token';

const DATA = {
  'groups/e2e.yaml': `name: e2e BIOS VM\nprofile: e2e\nselector:\n  mac: "${MAC}"\n`,
  'profiles/e2e.yaml': 'name: e2e LinuxKit set\nlinuxkit:\n  name: e2e\n',
};

test('BIOS iPXE chains boot.ipxe -> /ipxe -> a LinuxKit kernel and initrd, which boot', { timeout: 10 * 60_000 }, async (t) => {
  const prepared = await prepareScenario(t, 'bios');
  if (!prepared) return;
  const { images } = prepared;

  const scenario = await openScenario(t, 'bios-chain');
  const bootdepot = await startBootdepot(scenario, DATA, { adminToken: ADMIN_TOKEN });
  await layOutLinuxKitSet(images, bootdepot.assetsDir, { name: 'e2e', bootdepotUrl: bootdepot.guestUrl });
  console.warn(`e2e: bios-chain: bootdepot on ${bootdepot.server.url}; files in ${scenario.dir}`);

  const start = Date.now();
  const vm: Vm = startVm({ name: 'bios-chain', workDir: scenario.dir, firmware: 'bios', bootfile: `${bootdepot.guestUrl}/boot.ipxe`, serial: SERIAL });
  scenario.defer(() => vm.kill());
  console.warn(`e2e: bios-chain: VM started; serial log ${vm.serialLogPath}, monitor ${vm.monitorPath}`);

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

    assert.match(network, new RegExp(`mac ${MAC}`), 'the guest runs on the NIC the group selects');

    const requests = await bootdepot.requests();
    const find = (what: string, pred: (r: LoggedRequest) => boolean) => {
      const found = requests.find(pred);
      assert.ok(found, `bootdepot served ${what}; it logged:\n${describeRequests(requests, start)}`);
      return found;
    };
    const bootstrap = find('GET /boot.ipxe', (r) => r.method === 'GET' && r.path === '/boot.ipxe');
    const script = find('GET /ipxe', (r) => r.method === 'GET' && r.path === '/ipxe');
    const kernel = find('GET the kernel', (r) => r.method === 'GET' && r.path === '/assets/linuxkit/e2e-kernel');
    const initrd = find('GET the initrd', (r) => r.method === 'GET' && r.path === '/assets/linuxkit/e2e-initrd.img');
    for (const r of [bootstrap, script, kernel, initrd]) assert.equal(r.status, 200, `${r.method} ${r.url}`);
    const sizes = await Promise.all(['e2e-kernel', 'e2e-initrd.img'].map((f) => stat(path.join(bootdepot.assetsDir, 'linuxkit', f)).then((s) => s.size)));
    // The asset routes log a download line (bytes sent, outcome) instead of a request line.
    assert.deepEqual([kernel.kind, kernel.bytes, kernel.outcome], ['download', sizes[0], 'complete'], 'the whole kernel was sent');
    assert.deepEqual([initrd.kind, initrd.bytes, initrd.outcome], ['download', sizes[1], 'complete'], 'the whole initrd was sent');
    assert.ok(bootstrap.time <= script.time && script.time <= kernel.time && kernel.time <= initrd.time, 'boot.ipxe, /ipxe, kernel, initrd in that order');

    // What iPXE filled in: the bootstrap's expansions reached the server.
    assert.equal(script.query.get('mac'), MAC.replace(/:/g, '-'));
    assert.equal(script.query.get('uuid'), DEFAULT_UUID);
    assert.equal(script.query.get('platform'), 'pcbios');
    // ${buildarch} is iPXE's own build: Debian's pxe-virtio.rom is a 32-bit (i386) iPXE.
    assert.ok(['i386', 'x86_64'].includes(script.query.get('arch') ?? ''), `arch=${script.query.get('arch')}`);

    const decided = (await bootdepot.logLines()).find((l) => l.msg === 'script decided');
    assert.ok(decided, 'bootdepot logged its decision');
    assert.equal(decided.profile, 'e2e');
    assert.equal(decided.group, 'e2e');
    assert.equal(decided.outcome, 'boot');
    // SMBIOS strings travel hex-encoded (:hexraw), so & and + arrive intact.
    const identity = decided.identity as Record<string, string> | undefined;
    assert.equal(identity?.serial, SERIAL);
    assert.equal(identity?.product, 'Standard PC (i440FX + PIIX, 1996)');

    // /init posts its state to /events, which takes it.
    const events = requests.filter((r) => r.method === 'POST' && r.path === '/events');
    assert.equal(events.length, 2, `init posted running and succeeded; bootdepot logged:\n${describeRequests(requests, start)}`);
    assert.deepEqual(events.map((e) => [e.query.get('mac'), e.status]), [[MAC, 200], [MAC, 200]]);
    // The script's kernel and initrd URLs are this boot's tracked ones, and its beacon was fetched.
    const tracked = requests.filter((r) => r.kind === 'request' && r.path.startsWith('/b/')).map((r) => r.path.replace(/^\/b\/[0-9a-f]{32}\//, '/b/ID/'));
    assert.deepEqual(tracked, ['/b/ID/beacon'], 'the beacon is the one tracked request with a request line');

    // The boot as bootdepot recorded it, through the admin API.
    const recorded = await checkLinuxKitBootRecorded(bootdepot, { mac: MAC, profile: 'e2e', group: 'e2e', platform: 'pcbios', order: ['kernel', 'initrd'], dir: 'linuxkit', name: 'e2e' });
    assert.deepEqual(recorded.recordedStages, ['script', 'kernel', 'initrd', 'booting', 'running', 'succeeded'], 'the stages GET /devices showed, in order');

    t.diagnostic(
      `timeline from VM start: boot.ipxe +${seconds(start, bootstrap.time)}s, /ipxe +${seconds(start, script.time)}s, ` +
        `kernel +${seconds(start, kernel.time)}s, initrd +${seconds(start, initrd.time)}s, init +${seconds(start, initAt)}s, ` +
        `done +${seconds(start, doneAt)}s; iPXE arch ${script.query.get('arch')}; /events answered ${events.map((e) => e.status).join(', ')}`,
    );
    t.diagnostic(`recorded stages from the script: ${recorded.timeline}`);
  });
});
