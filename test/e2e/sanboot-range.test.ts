/**
 * End to end, sanboot over HTTP: a template profile's script is `sanboot --no-describe` of a
 * disk image in bootdepot's assets directory. iPXE's HTTP block device reads the image by Range
 * requests, and its INT 13 emulation makes it BIOS drive 0x80; SeaBIOS-era code then runs from
 * it: the image's hand-made boot sector prints on COM1, reads the disk's last sector through
 * INT 13h (another Range request, 16 MiB in) and prints what it found.
 *
 * bootdepot logs range requests as one `ranged download` summary per client and file, after
 * 10 s of quiet or when it closes; each request's 206 is visible per request in the boot's
 * recorded download events (the script uses the tracked `{{ assets_url }}`).
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { buildDiskImage, DISK_BYTES, DISK_MARKERS, SECTOR } from './disk-image.ts';
import { describeRequests, eventually, failOnRepeatedRequest, openScenario, prepareScenario, reportFailures, seconds, startBootdepot } from './harness.ts';
import { startVm, VM_HARD_LIMIT_MS, type Vm } from './qemu.ts';

const MAC = '52:54:00:e2:e0:03';
const ADMIN_TOKEN = 'e2e-sanboot-range-admin-token';

const TEMPLATE = `#!ipxe
# bootdepot e2e: sanboot of a disk image over HTTP (iPXE reads it by Range requests)
imgfetch --name bootdepot-beacon {{ urls.beacon }} && imgfree bootdepot-beacon ||
sanboot --no-describe {{ assets_url }}/disk.img
`;

const DATA = {
  'groups/sanboot.yaml': `name: e2e sanboot\nprofile: sanboot\nselector:\n  mac: "${MAC}"\n`,
  'profiles/sanboot.yaml': 'name: e2e sanboot over HTTP\ntemplate: sanboot\n',
  'templates/sanboot.liquid': TEMPLATE,
};

test('BIOS iPXE sanboots a disk image from /assets over HTTP Range requests', { timeout: 10 * 60_000 }, async (t) => {
  const prepared = await prepareScenario(t, 'bios', { images: false });
  if (!prepared) return;
  const disk = await buildDiskImage();
  t.diagnostic(`disk image ${disk.key}: ${disk.bytes} bytes, ${disk.built ? 'built' : 'cached'}`);

  const scenario = await openScenario(t, 'sanboot-range');
  const bootdepot = await startBootdepot(scenario, DATA, { adminToken: ADMIN_TOKEN });
  await copyFile(disk.path, path.join(bootdepot.assetsDir, 'disk.img'));
  console.warn(`e2e: sanboot-range: bootdepot on ${bootdepot.server.url}; files in ${scenario.dir}`);

  const start = Date.now();
  const vm: Vm = startVm({ name: 'sanboot-range', workDir: scenario.dir, firmware: 'bios', bootfile: `${bootdepot.guestUrl}/boot.ipxe`, mac: MAC });
  scenario.defer(() => vm.kill());
  console.warn(`e2e: sanboot-range: VM started; serial log ${vm.serialLogPath}, monitor ${vm.monitorPath}`);

  await reportFailures({ scenario, bootdepot, vms: [vm], mac: MAC, start }, async () => {
    const failOn = [DISK_MARKERS.readFailed];
    const deadline = VM_HARD_LIMIT_MS - 10_000;
    // A failed sanboot shows only on the VGA screen; the bootstrap asking /ipxe again tells it here.
    const retries = failOnRepeatedRequest(bootdepot, '/ipxe');
    await Promise.race([vm.waitFor(DISK_MARKERS.bootSector, { timeoutMs: deadline, failOn }), retries.failed]).finally(() => retries.stop());
    const bootSectorAt = Date.now();
    const far = await vm.waitFor(DISK_MARKERS.farSector, { timeoutMs: 30_000, failOn });
    await vm.waitFor(DISK_MARKERS.done, { timeoutMs: 30_000, failOn });
    assert.match(far, new RegExp(`\\(${DISK_BYTES - SECTOR} bytes in\\)`), 'the boot sector read the last sector of the image');
    // The boot sector powers the VM off (ACPI); a halted VM is killed instead.
    const exit = await Promise.race([vm.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())]);
    const poweredOff = exit !== undefined;
    await vm.kill();

    const requests = await bootdepot.requests();
    const script = requests.find((r) => r.path === '/ipxe');
    assert.ok(script, `bootdepot served /ipxe:\n${describeRequests(requests, start)}`);
    const decided = (await bootdepot.logLines()).find((l) => l.msg === 'script decided');
    assert.deepEqual([decided?.profile, decided?.outcome], ['sanboot', 'boot'], 'the template profile was decided');

    // Each request, as the boot's download events record it: 206s of whole sectors.
    // No request is under way any more: wait until every started read has its end recorded.
    const view = await eventually('bootdepot recorded the end of every disk read', 10_000, async () => {
      const seen = await bootdepot.device(MAC);
      const phases = (seen?.events ?? []).flatMap((e) => (e.detail.type === 'download' ? [e.detail.phase] : []));
      const started = phases.filter((p) => p === 'started').length;
      return seen && started > 0 && phases.length === 2 * started ? seen : undefined;
    });
    const reads = view.events
      .slice()
      .sort((a, b) => a.id - b.id)
      .flatMap((e) => (e.detail.type === 'download' && e.detail.phase !== 'started' ? [e.detail] : []));
    assert.ok(reads.length >= 2, `iPXE read the image in several requests (${reads.length})`);
    for (const read of reads) {
      assert.deepEqual([read.path, read.status, read.phase, read.role], ['/assets/disk.img', 206, 'completed', 'other'], `every read is a complete 206: ${JSON.stringify(read)}`);
      assert.ok(read.bytes > 0 && read.bytes % SECTOR === 0 && read.bytes < DISK_BYTES, `a read of whole sectors, not the whole image: ${read.bytes} bytes`);
    }
    const readBytes = reads.reduce((sum, r) => sum + r.bytes, 0);
    assert.equal(view.device.stage, 'booting', 'the beacon before sanboot was recorded');
    assert.equal(view.device.lastProfile, 'sanboot');

    // The log's summary of those range requests is written after 10 s of quiet, or at close.
    const summaryBefore = (await bootdepot.logLines()).filter((l) => l.msg === 'ranged download');
    await bootdepot.stop();
    const lines = await bootdepot.logLines();
    const summaries = lines.filter((l) => l.msg === 'ranged download');
    assert.equal(summaries.length, 1, `one ranged download line for the image; the log has:\n${summaries.map((l) => JSON.stringify(l)).join('\n')}`);
    const summary = summaries[0] ?? {};
    assert.equal(summary.path, 'disk.img');
    assert.equal(summary.requests, reads.length, 'the summary counts every range request');
    assert.ok(Number(summary.requests) > 1);
    assert.equal(summary.bytes, readBytes, 'the summary adds up the bytes of the 206s');
    assert.equal(summary.outcome, 'complete');
    // No whole-image download: everything went by Range (a HEAD for the size is not a download).
    const whole = requests.filter((r) => r.kind === 'download' && r.path === '/assets/disk.img');
    assert.deepEqual(whole, [], 'the image was never sent whole');
    const heads = requests.filter((r) => r.method === 'HEAD');

    t.diagnostic(
      `boot sector running +${seconds(start, bootSectorAt)}s after power-on; ${reads.length} range requests (${readBytes} bytes: ` +
        `${reads.map((r) => r.bytes).join(', ')}); ${heads.length} HEAD; summary ${summaryBefore.length === 0 ? 'flushed at close' : 'logged before close'}; ` +
        `VM ${poweredOff ? 'powered itself off' : 'halted and was killed'}`,
    );
  });
});
