/**
 * What a LinuxKit boot must leave in bootdepot's boot state, checked through the admin API:
 * one script, the kernel and initrd each downloaded whole, the beacon, then /init's two reports,
 * in the order the script shape fetches them.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { applyEvent, type Device, type NewEvent, type Stage } from '../../src/state/model.ts';
import { eventually, type ApiEvent, type DeviceView, type E2eServer } from './harness.ts';

export type Role = 'kernel' | 'initrd';

export interface LinuxKitBootExpectation {
  mac: string;
  profile: string;
  group: string;
  /** iPXE's `${platform}`. */
  platform: 'pcbios' | 'efi';
  /** Download order of the script shape: kernel first under BIOS, initrd first under EFI. */
  order: readonly [Role, Role];
  /** The set's directory and name in the assets directory, e.g. `linuxkit` and `e2e`. */
  dir: string;
  name: string;
  /** Boot count the device must show afterwards (1 for its first boot). */
  bootCount?: number;
}

export interface CheckedBoot {
  view: DeviceView;
  /** The events of this boot and the reports after it, oldest first. */
  events: ApiEvent[];
  /** The stage each event implies, consecutive repeats dropped. */
  eventStages: string[];
  /** The device's recorded stage after each of those events (what `GET /devices/<mac>` showed). */
  recordedStages: Stage[];
  /** One line for the test's diagnostics: each stage and when it was reached. */
  timeline: string;
}

/** The stage an event implies on its own: the script, a download starting, the beacon, a report. */
export function impliedStage(event: ApiEvent): string | undefined {
  const { detail } = event;
  switch (detail.type) {
    case 'script':
      return 'script';
    case 'download':
      return detail.phase === 'started' && detail.role !== 'other' ? detail.role : undefined;
    case 'beacon':
      return 'booting';
    case 'report':
      return detail.state;
    default:
      return undefined;
  }
}

const dedupe = <T>(items: readonly T[]): T[] => items.filter((item, i) => i === 0 || items[i - 1] !== item);

/** The device's stage after each event, replayed with the server's own rules (stages only move forward within a boot). */
export function replayStages(events: readonly ApiEvent[]): Stage[] {
  let device: Device | undefined;
  const stages: Stage[] = [];
  for (const event of events) {
    const replayed: NewEvent = { deviceId: event.deviceId, at: new Date(event.at), detail: event.detail, ...(event.bootId ? { bootId: event.bootId } : {}) };
    device = applyEvent(device, replayed);
    if (device.stage) stages.push(device.stage);
  }
  return dedupe(stages);
}

/**
 * Waits until bootdepot has recorded the whole boot (events are committed in batches, after the
 * responses), then checks it. Assumes the device's latest boot is the LinuxKit boot.
 */
export async function checkLinuxKitBootRecorded(bootdepot: E2eServer, expect: LinuxKitBootExpectation): Promise<CheckedBoot> {
  const files: Record<Role, string> = { kernel: `${expect.dir}/${expect.name}-kernel`, initrd: `${expect.dir}/${expect.name}-initrd.img` };
  const downloads = async (role: Role) => ({ path: `/assets/${files[role]}`, size: (await stat(path.join(bootdepot.assetsDir, files[role]))).size });
  return checkKernelBootRecorded(bootdepot, { ...expect, downloads: { kernel: await downloads('kernel'), initrd: await downloads('initrd') } });
}

export interface KernelBootExpectation extends Omit<LinuxKitBootExpectation, 'dir' | 'name'> {
  /** What each download must record: its path as the boot's events name it (`/assets/...`, `/mirror/NAME/...`) and its full size. */
  downloads: Record<Role, { path: string; size: number }>;
}

/** {@link checkLinuxKitBootRecorded} for any kernel and initrd the script fetches, from `/assets` or through the mirror. */
export async function checkKernelBootRecorded(bootdepot: E2eServer, expect: KernelBootExpectation): Promise<CheckedBoot> {
  const files: Record<Role, string> = { kernel: expect.downloads.kernel.path, initrd: expect.downloads.initrd.path };
  const sizes: Record<Role, number> = { kernel: expect.downloads.kernel.size, initrd: expect.downloads.initrd.size };

  const view = await eventually(`bootdepot recorded ${expect.mac}'s downloads and both reports`, 10_000, async () => {
    const seen = await bootdepot.device(expect.mac);
    if (!seen) return undefined;
    const has = (pred: (e: ApiEvent) => boolean) => seen.events.some(pred);
    const complete = (role: Role) => has((e) => e.detail.type === 'download' && e.detail.role === role && e.detail.phase !== 'started' && e.bootId === seen.device.lastBootId);
    const reported = (state: string) => has((e) => e.detail.type === 'report' && e.detail.state === state);
    return complete('kernel') && complete('initrd') && reported('running') && reported('succeeded') ? seen : undefined;
  });
  const { device } = view;
  const bootId = device.lastBootId;
  assert.ok(bootId, 'the device has a boot id');

  // This boot: from its script on (reports carry no boot id: they belong to the latest boot).
  const chronological = view.events.slice().sort((a, b) => a.id - b.id);
  const scriptAt = chronological.findIndex((e) => e.detail.type === 'script' && e.bootId === bootId);
  assert.ok(scriptAt >= 0, `the script event of boot ${bootId} is among the device's events`);
  const events = chronological.slice(scriptAt).filter((e) => e.bootId === bootId || e.bootId === undefined);
  const describe = () => events.map((e) => `  #${e.id} ${e.at} ${JSON.stringify(e.detail)}`).join('\n');

  const script = events[0];
  assert.ok(script?.detail.type === 'script');
  assert.equal(script.detail.action, 'boot');
  assert.equal(script.detail.profile, expect.profile);
  assert.equal(script.detail.group, expect.group);
  assert.equal(script.detail.identity.mac, expect.mac);
  assert.equal(script.detail.identity.platform, expect.platform, 'the platform iPXE reported reached bootdepot');

  const eventStages = dedupe(events.map(impliedStage).filter((s): s is string => s !== undefined));
  assert.deepEqual(eventStages, ['script', ...expect.order, 'booting', 'running', 'succeeded'], `the boot's events in order; recorded:\n${describe()}`);

  for (const role of ['kernel', 'initrd'] as const) {
    const downloads = events.filter((e) => e.detail.type === 'download' && e.detail.role === role);
    const phases = downloads.map((e) => (e.detail.type === 'download' ? [e.detail.phase, e.detail.path, e.detail.status, e.detail.bytes] : []));
    assert.deepEqual(
      phases,
      [
        ['started', files[role], 200, 0],
        ['completed', files[role], 200, sizes[role]],
      ],
      `the ${role} was downloaded once, completely (${sizes[role]} bytes); recorded:\n${describe()}`,
    );
  }
  assert.equal(events.filter((e) => e.detail.type === 'beacon').length, 1, 'one beacon');

  const reports = events.filter((e) => e.detail.type === 'report').map((e) => (e.detail.type === 'report' ? e.detail : undefined));
  assert.deepEqual(
    reports.map((r) => r && [r.state, r.code, r.message, r.via]),
    [
      ['running', 1000, 'init', 'events'],
      ['succeeded', 1000, 'done', 'events'],
    ],
    'both reports of /init were recorded',
  );

  assert.equal(device.bootCount, expect.bootCount ?? 1, 'boot count');
  assert.equal(device.stage, 'succeeded');
  assert.equal(device.lastAction, 'boot');
  assert.equal(device.lastProfile, expect.profile);
  assert.equal(device.lastGroup, expect.group);
  assert.equal(device.lastReport?.state, 'succeeded');
  assert.equal(device.identity.platform, expect.platform);

  const recordedStages = replayStages(events);
  const firstAt = Date.parse(script.at);
  const reached = new Map<string, number>();
  for (const e of events) {
    const stage = impliedStage(e);
    if (stage && !reached.has(stage)) reached.set(stage, Date.parse(e.at));
  }
  const timeline = [...reached].map(([stage, at]) => `${stage} +${((at - firstAt) / 1000).toFixed(1)}s`).join(', ');
  return { view, events, eventStages, recordedStages, timeline };
}
