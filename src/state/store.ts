/**
 * The device store: one interface, two implementations (SQLite for one process, PostgreSQL for
 * several replicas acting as one service). A shared test suite runs against both.
 */
import type { BootRecord, Device, NewEvent, NextBoot, Stage, StoredEvent } from './model.ts';
import type { SiteRecords } from './sites.ts';

const BOOTED_STAGES: readonly (Stage | null)[] = ['booting', 'running', 'succeeded', 'failed'];

/**
 * Whether a device has shown it booted: a beacon from its OS, or a report. A device that never
 * did (nor has a next boot set by an operator) is an unknown device: any request with a made-up
 * MAC makes one, so the stores keep only the most recently seen {@link StoreLimits.maxUnknownDevices}.
 * Stores remember "booted" once seen, whatever the device does next.
 */
export function isBooted(device: Device): boolean {
  return BOOTED_STAGES.includes(device.stage) || device.lastReport !== null;
}

export interface DeviceFilter {
  stage?: Stage;
  profile?: string;
  /** Only devices seen at or after this time. */
  seenSince?: Date;
  limit?: number;
}

/** What keeps a store bounded whoever writes to it (see docs/security.md, "Limits"). */
export interface StoreLimits {
  /** Newest events kept per device; held at write time, within {@link eventSlack}. */
  maxEventsPerDevice: number;
  /** Devices that never booted kept at most; the oldest beyond go first (see pruneUnknownDevices). */
  maxUnknownDevices: number;
}

export const DEFAULT_LIMITS: StoreLimits = { maxEventsPerDevice: 1000, maxUnknownDevices: 10_000 };

/**
 * How far past its cap a device's events may go before they are trimmed: trimming every
 * insert would cost a range scan per event; every tenth of the cap (at most 100) costs one per
 * hundred events.
 */
export function eventSlack(maxEventsPerDevice: number): number {
  return Math.min(100, Math.max(1, Math.ceil(maxEventsPerDevice / 10)));
}

export type EventListener = (event: StoredEvent) => void;

/** Both stores keep boot state and, for sites and origins, what sites.ts describes. */
export interface DeviceStore extends SiteRecords {
  /** `sqlite` or `postgres`, for logs and health. */
  readonly kind: string;
  /** Applies schema migrations; called once at start. */
  migrate(): Promise<void>;
  /** Appends events and updates their devices, atomically, in order. */
  recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]>;
  getBootPlan(id: string): Promise<BootRecord | undefined>;
  getDevice(id: string): Promise<Device | undefined>;
  listDevices(filter?: DeviceFilter): Promise<Device[]>;
  /** Newest first. */
  listEvents(deviceId: string, limit: number): Promise<StoredEvent[]>;
  /** The device whose last boot came from this IP, for reports that carry no MAC. */
  findDeviceByIp(ip: string): Promise<string | undefined>;
  /** Sets or clears a device's next boot, recording the change as an event; undefined for an unknown device. */
  setNextBoot(id: string, nextBoot: NextBoot | null, by: 'api' | 'installOnce' | 'once-consumed'): Promise<Device | undefined>;
  deleteDevice(id: string): Promise<boolean>;
  /**
   * One bounded step of pruning: the oldest unknown devices beyond the limit, events older than
   * `before`, devices seen last before `before` that have no next boot, boot plans older than
   * `before`, and all but the newest `keepPerDevice` events of a device. Each step deletes a
   * few thousand rows at most, so it holds the event loop (SQLite) or locks (PostgreSQL) for
   * milliseconds. Resolves with the rows removed; 0 when nothing is left, so callers repeat it
   * (with a turn of the event loop between, see pruner.ts) until then.
   */
  prune(before: Date, keepPerDevice: number): Promise<number>;
  /** Live events from every replica sharing the store. Returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void;
  close(): Promise<void>;
}
