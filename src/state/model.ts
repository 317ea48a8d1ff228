/**
 * Boot state: what bootdepot records about each device and how a device's summary follows
 * from its events. Pure: both stores apply events with {@link applyEvent} inside their own
 * transactions, so SQLite and PostgreSQL derive exactly the same state.
 */
import type { DeviceIdentity } from '../common/identity.ts';

/**
 * Where a device is, in order (a new script starts over): `waiting` (its script waits: why is
 * in the device's `problem`), `held` (by the operator), `local` (handed to its disk), or a boot
 * in progress: `script`, `kernel`, `initrd`, `booting`, then what the booted OS reports.
 */
export const STAGES = ['waiting', 'held', 'local', 'script', 'kernel', 'initrd', 'booting', 'running', 'succeeded', 'failed'] as const;
/** The configs a boot's machine fetches: Ignition, metadata, and matchbox's generic and cloud configs. */
export type ConfigWhat = 'ignition' | 'metadata' | 'generic' | 'cloud';

export type Stage = (typeof STAGES)[number];

const STAGE_RANK: Record<Stage, number> = { waiting: 0, held: 0, local: 0, script: 0, kernel: 1, initrd: 2, booting: 3, running: 4, succeeded: 5, failed: 5 };

/** Hardware identity that a genuine machine sends the same on every boot. */
const STABLE_IDENTITY = ['uuid', 'serial'] as const;

/**
 * Whether a script request's identity agrees with what the device recorded: every recorded
 * UUID and serial is sent again, unchanged. A MAC is no identity; these are the next best thing
 * a booting machine has, and a request that only knows the MAC must not rewrite the record.
 */
export function identityAgrees(recorded: DeviceIdentity, sent: DeviceIdentity): boolean {
  return STABLE_IDENTITY.every((field) => recorded[field] === undefined || recorded[field] === sent[field]);
}

/** The stage a script answer puts a device in. */
const SCRIPT_STAGE: Record<ScriptAction, Stage> = { boot: 'script', wait: 'waiting', notFound: 'waiting', hold: 'held', local: 'local' };

export const REPORT_STATES = ['running', 'succeeded', 'failed'] as const;
export type ReportState = (typeof REPORT_STATES)[number];

export const NEXT_BOOT_ACTIONS = ['profile', 'local', 'hold', 'once'] as const;
export type NextBootAction = (typeof NEXT_BOOT_ACTIONS)[number];

/**
 * An operator's instruction for a device's next boots:
 * - `profile`: normal matching, or always this profile when one is named;
 * - `local`: boot the local disk;
 * - `hold`: wait (and keep asking) until released;
 * - `once`: boot `profile` once, then back to normal.
 */
export interface NextBoot {
  action: NextBootAction;
  profile?: string;
  /** Why it was set, e.g. `profile flatcar-install has installOnce; device reported succeeded`. */
  reason: string;
  setAt: string;
}

/** What a script answer did. */
export type ScriptAction = 'boot' | 'wait' | 'local' | 'hold' | 'notFound';

export type DownloadRole = 'kernel' | 'initrd' | 'other';

export type DownloadPhase = 'started' | 'progress' | 'completed' | 'aborted' | 'failed';

/**
 * Whether recording this event replaces the download's earlier progress events: a newer progress
 * event, or the download's end. The stores delete those in the same transaction, so a download
 * leaves at most one progress row while it runs and none once it has ended.
 */
export function supersedesProgress(detail: EventDetail): detail is Extract<EventDetail, { type: 'download' }> {
  return detail.type === 'download' && detail.phase !== 'started';
}

export type EventDetail =
  | {
      type: 'script';
      ip: string;
      userAgent: string;
      identity: DeviceIdentity;
      action: ScriptAction;
      reason: string;
      group?: string;
      profile?: string;
      /** No group matched: `profile` is the `boot.unmatched` fallback's. */
      unmatched?: boolean;
      /**
       * False when the request's identity contradicts what the device recorded (another UUID or
       * serial, or none where one was recorded): such a script is answered and recorded, but
       * changes nothing about the device, so it cannot spoil the device's boot in progress.
       */
      verified?: boolean;
    }
  /**
   * `failed`: answered with an error status (`reason` says why); `aborted`: the client hung up;
   * `progress`: bytes sent so far of a download still running, at most one a second per
   * download, and the store keeps only a download's latest (none once it has ended).
   * `total`: the body's length, when known; `ms`: since the body started; `rate`: bytes a second
   * over the last interval (progress only).
   */
  | { type: 'download'; path: string; role: DownloadRole; phase: DownloadPhase; bytes: number; status: number; ip: string; reason?: string; total?: number; ms?: number; rate?: number }
  | { type: 'beacon'; ip: string }
  /** The booted OS fetched one of its configs (status 200), or was refused (403: no credential). */
  | { type: 'config'; what: ConfigWhat; status: number; ip: string; reason?: string }
  /**
   * What the booted OS reports. `verified`: it carried the boot's id, or came from the address
   * that fetched the boot's script; an unverified report is kept but changes nothing.
   */
  | { type: 'report'; state: ReportState; code?: number; message?: string; ip: string; via: 'events' | 'state-api' | 'boot'; verified?: boolean }
  | { type: 'next-boot'; nextBoot: NextBoot | null; by: 'api' | 'installOnce' | 'once-consumed' };

export type EventType = EventDetail['type'];

export interface NewEvent {
  deviceId: string;
  /** The boot this belongs to: the id in the URLs of the script that started it. */
  bootId?: string;
  at: Date;
  detail: EventDetail;
  /** A script event that starts a boot carries its plan, saved in the same transaction. */
  plan?: BootRecord;
}

export interface StoredEvent extends Omit<NewEvent, 'plan'> {
  id: number;
}

export interface Device {
  /** MAC in lowercase colon form. */
  id: string;
  firstSeen: string;
  lastSeen: string;
  /** Scripts that started a boot (booting a profile or the local disk). */
  bootCount: number;
  stage: Stage | null;
  lastAction: ScriptAction | null;
  lastProfile: string | null;
  lastGroup: string | null;
  lastIp: string | null;
  lastBootId: string | null;
  /** Its last script matched no group and booted the `boot.unmatched` fallback profile. Absent on older rows. */
  lastUnmatched?: boolean;
  identity: DeviceIdentity;
  nextBoot: NextBoot | null;
  lastReport: { state: ReportState; code?: number; message?: string; at: string } | null;
  /**
   * Why the device waits (its last script's reason) or what went wrong in its current boot (a
   * failed download); null while all is well. Absent on rows written before it existed.
   */
  problem?: string | null;
  /** The latest boots (newest first, at most {@link RECENT_BOOTS}): whose address may report for which boot. */
  recentBoots?: RecentBoot[];
  /**
   * The current boot's downloads as far as they got, in the order they started (at most
   * {@link BOOT_DOWNLOADS_KEPT}, the latest): what the fleet's progress bars show without reading
   * events. Absent on rows written before it existed.
   */
  downloads?: DownloadState[];
}

export interface DownloadState {
  path: string;
  role: DownloadRole;
  phase: DownloadPhase;
  status: number;
  /** Body bytes sent so far (all of them once completed). */
  bytes: number;
  total?: number;
  /** Bytes a second: the latest progress's, or the whole download's once it ended. */
  rate?: number;
  /** Milliseconds since the body started, as of the latest event. */
  ms?: number;
  startedAt: string;
  at: string;
}

export const BOOT_DOWNLOADS_KEPT = 8;

/** The current boot's downloads after one more download event. */
function withDownload(downloads: readonly DownloadState[] | undefined, detail: Extract<EventDetail, { type: 'download' }>, at: string): DownloadState[] {
  const list = [...(downloads ?? [])];
  const index = list.findIndex((d) => d.path === detail.path);
  const before = index >= 0 ? list[index] : undefined;
  // A new `started` of the same path (iPXE's retry) starts that download over.
  const fresh = detail.phase === 'started' || !before;
  const total = detail.total ?? (fresh ? undefined : before.total);
  const ended = detail.phase === 'completed' || detail.phase === 'aborted' || detail.phase === 'failed';
  const rate = detail.rate ?? (ended && detail.ms !== undefined && detail.ms > 0 ? Math.round((detail.bytes * 1000) / detail.ms) : undefined);
  const next: DownloadState = {
    path: detail.path,
    role: detail.role,
    phase: detail.phase,
    status: detail.status,
    bytes: detail.bytes,
    ...(total !== undefined ? { total } : {}),
    ...(rate !== undefined ? { rate } : {}),
    ...(detail.ms !== undefined ? { ms: detail.ms } : {}),
    startedAt: fresh ? at : before.startedAt,
    at,
  };
  if (index >= 0 && !fresh) list[index] = next;
  else {
    if (index >= 0) list.splice(index, 1);
    list.push(next);
  }
  return list.slice(-BOOT_DOWNLOADS_KEPT);
}

export interface RecentBoot {
  id: string;
  ip: string;
  profile: string | null;
  at: string;
}

export const RECENT_BOOTS = 5;

/** What a boot's script planned: which downloads are its kernel and initrds. */
export interface BootRecord {
  id: string;
  deviceId: string;
  createdAt: string;
  profile: string | null;
  /** The group the boot was decided by (null: none matched, or the operator's next boot chose). */
  group?: string | null;
  /** The labels the device sent with its script request: its configs are rendered from these. */
  labels?: Record<string, string>;
  /** Source address of the script request: plain `/ignition?mac=` is answered only to it. */
  ip?: string;
  /** False for a script whose identity contradicted the device's record (see the script event). */
  verified?: boolean;
  /** URL path (`/assets/linuxkit/x-kernel`) -> role. */
  downloads: Record<string, DownloadRole>;
}

export function newDevice(id: string, at: Date): Device {
  const iso = at.toISOString();
  return {
    id,
    firstSeen: iso,
    lastSeen: iso,
    bootCount: 0,
    stage: null,
    lastAction: null,
    lastProfile: null,
    lastGroup: null,
    lastIp: null,
    lastBootId: null,
    identity: {},
    nextBoot: null,
    lastReport: null,
    problem: null,
  };
}

/** Moves forward only: a late download event never takes a booted device back to `kernel`. */
function advance(current: Stage | null, next: Stage): Stage {
  if (current === null) return next;
  return STAGE_RANK[next] >= STAGE_RANK[current] ? next : current;
}

/** The device after one more event. Events of an older boot are kept but do not move the stage. */
export function applyEvent(previous: Device | undefined, event: NewEvent): Device {
  const device: Device = previous ? { ...previous } : newDevice(event.deviceId, event.at);
  const at = event.at.toISOString();
  if (at > device.lastSeen) device.lastSeen = at;
  const currentBoot = event.bootId !== undefined && event.bootId === device.lastBootId;
  const { detail } = event;
  switch (detail.type) {
    case 'script': {
      if (detail.verified === false) break;
      device.lastIp = detail.ip;
      if (event.bootId !== undefined && event.bootId !== device.lastBootId) {
        const boot: RecentBoot = { id: event.bootId, ip: detail.ip, profile: detail.profile ?? null, at };
        device.recentBoots = [boot, ...(device.recentBoots ?? [])].slice(0, RECENT_BOOTS);
      }
      device.identity = { ...device.identity, ...detail.identity };
      device.lastAction = detail.action;
      device.lastGroup = detail.group ?? null;
      device.lastProfile = detail.profile ?? null;
      device.lastUnmatched = detail.unmatched === true;
      if (event.bootId !== undefined && event.bootId !== device.lastBootId) {
        device.bootCount += 1;
        device.lastBootId = event.bootId;
        device.downloads = [];
      }
      device.stage = SCRIPT_STAGE[detail.action];
      device.problem = detail.action === 'wait' || detail.action === 'hold' || detail.action === 'notFound' ? detail.reason : null;
      break;
    }
    case 'download':
      device.lastIp = detail.ip;
      if (currentBoot) device.downloads = withDownload(device.downloads, detail, at);
      if (currentBoot && detail.phase === 'failed') {
        device.problem = `${detail.role === 'other' ? 'download' : detail.role} ${detail.path} failed: ${detail.reason ?? `HTTP ${detail.status}`}`;
      } else if (currentBoot && detail.role !== 'other' && detail.phase !== 'aborted') {
        device.stage = advance(device.stage, detail.role);
        if (detail.phase === 'completed') device.problem = null;
      }
      break;
    case 'beacon':
      device.lastIp = detail.ip;
      if (currentBoot) device.stage = advance(device.stage, 'booting');
      break;
    case 'report':
      if (detail.verified === false) break;
      device.lastIp = detail.ip;
      // The booted OS speaks for the latest boot; its word replaces what came before.
      device.stage = detail.state;
      device.lastReport = { state: detail.state, ...(detail.code !== undefined ? { code: detail.code } : {}), ...(detail.message !== undefined ? { message: detail.message } : {}), at };
      break;
    case 'next-boot':
      device.nextBoot = detail.nextBoot;
      break;
    case 'config':
      break;
  }
  return device;
}
