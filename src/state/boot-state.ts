/**
 * Boot state in the request path: what the store says about a device before its script is
 * decided, and what each script, download, beacon and report adds afterwards. Also the rules
 * that follow from events: `once` is consumed when its boot starts, `installOnce` turns a
 * succeeded install into local-disk boots.
 *
 * Reads that fail or take too long count as "nothing recorded" (normal matching): a machine
 * boots even when the store is down.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { HttpError } from '../common/http-error.ts';
import type { BootRecord, ConfigWhat, Device, DownloadPhase, NewEvent, NextBoot, ReportState, StoredEvent } from './model.ts';
import { EventRecorder, withTimeout, type RecorderLogger } from './recorder.ts';
import type { DeviceStore } from './store.ts';

export interface BootStateLogger extends RecorderLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

const BOOT_ID = /^[0-9a-f]{32}$/;

/** How often "device store unavailable" is logged for one effect while the store is down. */
const STORE_DOWN_LOG_MS = 10_000;

/**
 * A new boot's id: 128 random bits as 32 hex digits. It is also the boot's credential: every URL
 * of the boot's script carries it, and what is secret (Ignition, metadata) is served under it,
 * so it must be unguessable (a MAC address is no identity).
 */
export function newBootId(): string {
  return randomBytes(16).toString('hex');
}

export function isBootId(value: string): boolean {
  return BOOT_ID.test(value);
}

/** What boot state needs to know of the profiles in service: declared here, where it is used. */
export interface ProfilesInService {
  profiles: ReadonlyMap<string, { installOnce?: boolean | undefined }>;
}

export interface BootStateOptions {
  store: DeviceStore;
  log: BootStateLogger;
  /** The profiles in service, for their `installOnce` (the boot catalogue is one). */
  catalogue: () => ProfilesInService;
  /** Reads slower than this give up (and the device boots as if nothing were recorded). */
  readTimeoutMs?: number;
}

/** What a download event may carry beyond its bytes and status (see the download event in model.ts). */
export interface DownloadExtra {
  reason?: string | undefined;
  total?: number | undefined;
  ms?: number | undefined;
  rate?: number | undefined;
}

export interface ReportInput {
  deviceId: string;
  state: ReportState;
  code?: number;
  message?: string;
  ip: string;
  via: 'events' | 'state-api' | 'boot';
  /** The boot the report is verified to speak for (by its id, or its script's address); none: unverified. */
  boot: BootRecord | undefined;
}

export class BootState {
  readonly store: DeviceStore;
  readonly recorder: EventRecorder;
  readonly failures = { reads: 0 };
  private readonly log: BootStateLogger;
  private readonly catalogue: () => ProfilesInService;
  private readonly readTimeoutMs: number;
  private readonly plans = new LRUCache<string, BootRecord>({ max: 20_000 });
  private readonly storeDownLogged = new Map<string, { at: number; since: number }>();

  constructor(options: BootStateOptions) {
    this.store = options.store;
    this.log = options.log;
    this.catalogue = options.catalogue;
    this.readTimeoutMs = options.readTimeoutMs ?? 1000;
    this.recorder = new EventRecorder(options.store, options.log);
  }

  /**
   * Logs that the store is down at most once per {@link STORE_DOWN_LOG_MS} for each effect,
   * with how often it happened meanwhile: while it is down every request would say so.
   */
  private storeDown(error: unknown, effect: string): void {
    const now = Date.now();
    const last = this.storeDownLogged.get(effect);
    if (last && now - last.at < STORE_DOWN_LOG_MS) {
      last.since += 1;
      return;
    }
    this.log.warn({ err: error, ...(last ? { sinceLastLine: last.since } : {}) }, `device store unavailable: ${effect}`);
    this.storeDownLogged.set(effect, { at: now, since: 0 });
  }

  /** The device's next boot, or null when there is none or the store cannot say. */
  async nextBootFor(deviceId: string): Promise<NextBoot | null> {
    return (await this.deviceFor(deviceId))?.nextBoot ?? null;
  }

  /** The device as recorded, or null when it is unknown or the store cannot say. */
  async deviceFor(deviceId: string): Promise<Device | null> {
    try {
      return (await withTimeout(this.store.getDevice(deviceId), this.readTimeoutMs, 'reading the device')) ?? null;
    } catch (error) {
      this.failures.reads += 1;
      this.storeDown(error, 'deciding without recorded state');
      return null;
    }
  }

  /**
   * Which of the device's recent boots a report from this address speaks for: the newest whose
   * script went to it. None: the report is unverified (another machine on the network could
   * have sent it) and is recorded without changing anything.
   */
  async bootReportedFrom(deviceId: string, ip: string): Promise<BootRecord | undefined> {
    const device = await withTimeout(this.store.getDevice(deviceId), this.readTimeoutMs, 'reading the device');
    const boot = device?.recentBoots?.find((recent) => recent.ip === ip);
    return boot ? this.planFor(boot.id) : undefined;
  }

  /**
   * Records a script answer; a boot's plan (what its downloads and beacon refer to) goes in the
   * same transaction, and into memory at once for this replica's own requests.
   */
  async recordScript(event: NewEvent, plan: Omit<BootRecord, 'id' | 'deviceId' | 'createdAt'> | undefined): Promise<void> {
    let record: BootRecord | undefined;
    if (plan && event.bootId) {
      record = { id: event.bootId, deviceId: event.deviceId, createdAt: event.at.toISOString(), ...plan };
      this.plans.set(record.id, record);
    }
    const stored = await this.recorder.record(record ? { ...event, plan: record } : event);
    if (!stored && record) this.log.error({ boot: record.id }, 'device store unavailable: boot plan kept in memory only');
  }

  /** The plan of a boot, from memory or (another replica's boot) from the store. */
  async planFor(bootId: string): Promise<BootRecord | undefined> {
    const cached = this.plans.get(bootId);
    if (cached) return cached;
    try {
      const plan = await withTimeout(this.store.getBootPlan(bootId), this.readTimeoutMs, 'reading the boot plan');
      if (plan) this.plans.set(bootId, plan);
      return plan;
    } catch (error) {
      this.failures.reads += 1;
      this.storeDown(error, 'downloads not tied to their boots');
      return undefined;
    }
  }

  /** The device's current boot (its latest script that started one), when the store knows it. */
  async currentBootOf(deviceId: string): Promise<BootRecord | undefined> {
    const device = await withTimeout(this.store.getDevice(deviceId), this.readTimeoutMs, 'reading the device');
    return device?.lastBootId ? this.planFor(device.lastBootId) : undefined;
  }

  /** The device whose latest boot's script was fetched from this address. */
  async deviceByIp(ip: string): Promise<string | undefined> {
    return withTimeout(this.store.findDeviceByIp(ip), this.readTimeoutMs, 'finding the device');
  }

  /** Records a config fetch, served or refused, on the device's history. */
  async recordConfig(deviceId: string, bootId: string | undefined, detail: { what: ConfigWhat; status: number; ip: string; reason?: string }): Promise<void> {
    await this.recorder.record({ deviceId, ...(bootId ? { bootId } : {}), at: new Date(), detail: { type: 'config', ...detail } });
  }

  async recordDownload(plan: BootRecord, path: string, phase: DownloadPhase, bytes: number, status: number, ip: string, extra: DownloadExtra = {}): Promise<void> {
    const role = plan.downloads[path] ?? 'other';
    const { reason, total, ms, rate } = extra;
    await this.recorder.record({
      deviceId: plan.deviceId,
      bootId: plan.id,
      at: new Date(),
      detail: { type: 'download', path, role, phase, bytes, status, ip, ...(reason ? { reason } : {}), ...(total !== undefined ? { total } : {}), ...(ms !== undefined ? { ms } : {}), ...(rate !== undefined ? { rate } : {}) },
    });
  }

  /** The script says its images are loaded and it is booting: the boot has started. */
  async recordBeacon(plan: BootRecord, ip: string): Promise<void> {
    await this.recorder.record({ deviceId: plan.deviceId, bootId: plan.id, at: new Date(), detail: { type: 'beacon', ip } });
    try {
      const device = await this.store.getDevice(plan.deviceId);
      const next = device?.nextBoot;
      // A one-time boot is used up once it actually starts, not when a download fails and retries,
      // and only by a boot whose script request agreed with the device's recorded identity.
      if (plan.verified !== false && next?.action === 'once' && next.profile === plan.profile) {
        await this.store.setNextBoot(plan.deviceId, null, 'once-consumed');
        this.log.info({ device: plan.deviceId, profile: plan.profile }, 'one-time boot started; next boot back to normal');
      }
    } catch (error) {
      this.log.error({ err: error, device: plan.deviceId }, 'device store unavailable: could not consume a one-time boot');
    }
  }

  /**
   * Records what the booted OS reports. Resolves with the stored event, or undefined when the
   * store could not take it (the caller answers 503 so the OS retries).
   */
  async recordReport(input: ReportInput): Promise<StoredEvent | undefined> {
    const verified = input.boot !== undefined && input.boot.verified !== false;
    if (!verified) this.log.warn({ device: input.deviceId, ip: input.ip, state: input.state }, 'unverified report recorded; it changes nothing (report from the booted machine\'s address, or to its boot\'s URL)');
    const stored = await this.recorder.record({
      deviceId: input.deviceId,
      ...(input.boot ? { bootId: input.boot.id } : {}),
      at: new Date(),
      detail: {
        type: 'report',
        state: input.state,
        ...(input.code !== undefined ? { code: input.code } : {}),
        ...(input.message !== undefined ? { message: input.message } : {}),
        ip: input.ip,
        via: input.via,
        verified,
      },
    });
    // installOnce follows the boot that installed and reported, not whatever script came since.
    if (stored && verified && input.state === 'succeeded' && input.boot) await this.applyInstallOnce(input.deviceId, input.boot.profile);
    return stored;
  }

  /** A device that installed with an `installOnce` profile boots its disk from now on. */
  private async applyInstallOnce(deviceId: string, profileId: string | null): Promise<void> {
    try {
      const device: Device | undefined = await this.store.getDevice(deviceId);
      if (!device || !profileId || device.nextBoot?.action === 'local') return;
      const profile = this.catalogue().profiles.get(profileId);
      if (!profile?.installOnce) return;
      const reason = `profile ${profileId} has installOnce and the device reported succeeded`;
      await this.store.setNextBoot(deviceId, { action: 'local', reason, setAt: new Date().toISOString() }, 'installOnce');
      this.log.info({ device: deviceId, profile: profileId }, `next boot set to local: ${reason}`);
    } catch (error) {
      this.log.error({ err: error, device: deviceId }, 'device store unavailable: installOnce not applied');
    }
  }

  /** Finds the device a report is about: by MAC when given, else by the IP of its last boot. */
  async deviceForReport(mac: string | undefined, ip: string): Promise<string | undefined> {
    try {
      const lookup = mac ? this.store.getDevice(mac).then((device) => (device ? mac : undefined)) : this.store.findDeviceByIp(ip);
      return await withTimeout(lookup, this.readTimeoutMs, 'finding the device');
    } catch (error) {
      this.failures.reads += 1;
      this.log.error({ err: error, mac, ip }, 'device store unavailable: report refused');
      throw new HttpError(503, 'the device store is unavailable; report again later', { cause: error });
    }
  }

  async close(): Promise<void> {
    await this.recorder.flush();
  }
}
