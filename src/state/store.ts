/**
 * The device store: one interface, two implementations (SQLite for one process, PostgreSQL for
 * several replicas acting as one service). A shared test suite runs against both.
 */
import type { BootPlanRecord, Device, NewEvent, NextBoot, Stage, StoredEvent } from './model.ts';

export interface DeviceFilter {
  stage?: Stage;
  profile?: string;
  /** Only devices seen at or after this time. */
  seenSince?: Date;
  limit?: number;
}

export type EventListener = (event: StoredEvent) => void;

export interface DeviceStore {
  /** `sqlite` or `postgres`, for logs and health. */
  readonly kind: string;
  /** Applies schema migrations; called once at start. */
  migrate(): Promise<void>;
  /** Appends events and updates their devices, atomically, in order. */
  recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]>;
  saveBootPlan(plan: BootPlanRecord): Promise<void>;
  getBootPlan(id: string): Promise<BootPlanRecord | undefined>;
  getDevice(id: string): Promise<Device | undefined>;
  listDevices(filter?: DeviceFilter): Promise<Device[]>;
  /** Newest first. */
  listEvents(deviceId: string, limit: number): Promise<StoredEvent[]>;
  /** The device whose last boot came from this IP, for reports that carry no MAC. */
  findDeviceByIp(ip: string): Promise<string | undefined>;
  /** Sets or clears a device's next boot, recording the change as an event; undefined for an unknown device. */
  setNextBoot(id: string, nextBoot: NextBoot | null, by: 'api' | 'installOnce' | 'once-consumed'): Promise<Device | undefined>;
  deleteDevice(id: string): Promise<boolean>;
  /** Drops events older than `before` and all but the newest `keepPerDevice` of each device. */
  prune(before: Date, keepPerDevice: number): Promise<number>;
  /** Live events from every replica sharing the store. Returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void;
  close(): Promise<void>;
}
