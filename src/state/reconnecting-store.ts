/**
 * A device store that the server can start without. When the real store cannot be opened (a
 * corrupt SQLite file, PostgreSQL down at start), the server still answers every machine from
 * the data alone: this wrapper stands in, rejects every call with "device store unavailable"
 * (which BootState already treats as "nothing recorded", and the recorder counts as lost
 * events), and keeps trying to open the real store in the background with a bounded backoff.
 * Once it opens, every call goes to it, and live-event listeners carry over.
 */
import { HttpError } from '../common/http-error.ts';
import type { BootRecord, Device, NewEvent, NextBoot, StoredEvent } from './model.ts';
import type { DeviceFilter, DeviceStore, EventListener } from './store.ts';
import type { ForwardedEvent, SiteHeartbeat, SiteRecord, StoredSiteEvent } from './sites.ts';

export interface ReconnectingStoreLogger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface ReconnectingStoreOptions {
  /** `sqlite` or `postgres`: what the real store will be. */
  kind: string;
  /** Where it is, for the log: the SQLite file, or `PostgreSQL (--database-url)`. */
  location: string;
  /** What the operator can do when opening fails. */
  remedy: string;
  /** Opens (and migrates) the real store. */
  open: () => Promise<DeviceStore>;
  log: ReconnectingStoreLogger;
  /** First retry delay; doubled after each failure up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/** The answer to any store call while the store is not open: 503, so reporters retry. */
export class StoreUnavailableError extends HttpError {
  constructor(reason: string) {
    super(503, `device store unavailable: ${reason}`);
    this.name = 'StoreUnavailableError';
  }
}

export class ReconnectingDeviceStore implements DeviceStore {
  readonly kind: string;
  private readonly options: ReconnectingStoreOptions;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly listeners = new Set<EventListener>();
  private store: DeviceStore | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastError: string | undefined;
  private attempts = 0;
  private delayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;

  private constructor(options: ReconnectingStoreOptions) {
    this.options = options;
    this.kind = options.kind;
    this.initialDelayMs = options.initialDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.delayMs = this.initialDelayMs;
  }

  /** Tries to open the real store once, and returns at once either way (retrying in the background). */
  static async open(options: ReconnectingStoreOptions): Promise<ReconnectingDeviceStore> {
    const store = new ReconnectingDeviceStore(options);
    await store.attempt();
    return store;
  }

  /** Undefined when the store is open; otherwise why not, for /readyz. */
  get unavailableReason(): string | undefined {
    if (this.store) return undefined;
    return `${this.lastError ?? 'not open yet'} (retrying, attempt ${this.attempts})`;
  }

  private attempt(): Promise<void> {
    this.opening ??= this.tryOpen().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async tryOpen(): Promise<void> {
    this.attempts += 1;
    let store: DeviceStore;
    try {
      store = await this.options.open();
    } catch (error) {
      this.failed(error as Error);
      return;
    }
    if (this.closed) {
      await store.close().catch(() => undefined);
      return;
    }
    this.store = store;
    this.unsubscribe = store.subscribe((event) => {
      for (const listener of this.listeners) listener(event);
    });
    if (this.attempts > 1) {
      this.options.log.info({ store: this.kind, location: this.options.location, attempts: this.attempts }, `device store ${this.options.location} is open: recording boots again`);
    }
  }

  private failed(error: Error): void {
    const message = error.message;
    const first = this.lastError === undefined;
    const changed = message !== this.lastError;
    this.lastError = message;
    const retryInSeconds = Math.round(this.delayMs / 1000);
    const fields = { store: this.kind, location: this.options.location, err: error, attempts: this.attempts, retryInSeconds };
    // Loud the first time and whenever the cause changes; the repeats of one cause are warnings.
    if (first || changed) {
      this.options.log.error(
        fields,
        `cannot open the device store ${this.options.location}: ${message}. Machines still boot, decided from the data alone; ` +
          `nothing is recorded and next-boot settings are not applied until it opens. ${this.options.remedy} Retrying in ${retryInSeconds} s.`,
      );
    } else {
      this.options.log.warn(fields, `device store ${this.options.location} still cannot be opened: ${message}; retrying in ${retryInSeconds} s`);
    }
    if (this.closed) return;
    this.timer = setTimeout(() => void this.attempt(), this.delayMs);
    // A server that is closing must not be held open by the retry.
    this.timer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.maxDelayMs);
  }

  /** Runs `work` on the real store, or rejects when it is not open. */
  private call<T>(work: (store: DeviceStore) => Promise<T>): Promise<T> {
    const store = this.store;
    if (!store) return Promise.reject(new StoreUnavailableError(this.lastError ?? 'not open yet'));
    return work(store);
  }

  /** The real store migrates when it opens. */
  migrate(): Promise<void> {
    return Promise.resolve();
  }

  recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    return this.call((store) => store.recordEvents(events));
  }


  getBootPlan(id: string): Promise<BootRecord | undefined> {
    return this.call((store) => store.getBootPlan(id));
  }

  getDevice(id: string): Promise<Device | undefined> {
    return this.call((store) => store.getDevice(id));
  }

  listDevices(filter?: DeviceFilter): Promise<Device[]> {
    return this.call((store) => store.listDevices(filter));
  }

  listEvents(deviceId: string, limit: number): Promise<StoredEvent[]> {
    return this.call((store) => store.listEvents(deviceId, limit));
  }

  findDeviceByIp(ip: string): Promise<string | undefined> {
    return this.call((store) => store.findDeviceByIp(ip));
  }

  setNextBoot(id: string, nextBoot: NextBoot | null, by: 'api' | 'installOnce' | 'once-consumed'): Promise<Device | undefined> {
    return this.call((store) => store.setNextBoot(id, nextBoot, by));
  }

  deleteDevice(id: string): Promise<boolean> {
    return this.call((store) => store.deleteDevice(id));
  }

  prune(before: Date, keepPerDevice: number): Promise<number> {
    return this.call((store) => store.prune(before, keepPerDevice));
  }

  eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    return this.call((store) => store.eventsAfter(afterId, limit));
  }

  latestEventId(): Promise<number> {
    return this.call((store) => store.latestEventId());
  }

  outboxCursor(target: string): Promise<number> {
    return this.call((store) => store.outboxCursor(target));
  }

  advanceOutboxCursor(target: string, eventId: number): Promise<void> {
    return this.call((store) => store.advanceOutboxCursor(target, eventId));
  }

  recordSiteHeartbeat(site: string, heartbeat: SiteHeartbeat, at: Date): Promise<void> {
    return this.call((store) => store.recordSiteHeartbeat(site, heartbeat, at));
  }

  recordSiteEvents(site: string, events: readonly ForwardedEvent[], at: Date): Promise<{ added: number; duplicates: number }> {
    return this.call((store) => store.recordSiteEvents(site, events, at));
  }

  listSites(): Promise<SiteRecord[]> {
    return this.call((store) => store.listSites());
  }

  listSiteEvents(site: string, limit: number): Promise<StoredSiteEvent[]> {
    return this.call((store) => store.listSiteEvents(site, limit));
  }

  /** Works before the real store opens: listeners are kept here and fed from it once it does. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.opening;
    this.listeners.clear();
    this.unsubscribe?.();
    await this.store?.close();
  }
}
