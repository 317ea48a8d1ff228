/**
 * A site telling its origin how it is (docs/sites.md): a heartbeat, and its boot events
 * forwarded in batches. The outbox is the site's own event table read in id order behind a
 * cursor kept in the same store, moved only after the origin acknowledged a batch; the origin
 * keeps each event once per site and id. So an outage or a restart resends at most the batch
 * in flight, which the origin recognises, and loses nothing the site's store still holds.
 */
import type { Logger } from 'pino';
import type { StoredEvent } from '../state/model.ts';
import type { ForwardedEvent, SiteHeartbeat } from '../state/sites.ts';
import type { DeviceStore } from '../state/store.ts';
import type { OriginClient } from './origin-client.ts';

/** Events per batch; the origin accepts at most {@link MAX_BATCH}. */
export const BATCH_SIZE = 200;
export const MAX_BATCH = 500;
/** Batches per round at most, so a long backlog does not hold one round for ever. */
const BATCHES_PER_ROUND = 50;
/** JSON bytes of one batch at most: well inside the origin's 1 MiB body limit, whatever the events hold. */
export const BATCH_BYTES = 512 * 1024;

export interface ForwardStatus {
  /** The newest event id the origin acknowledged. */
  forwardedThrough: number;
  latestId: number;
  /** Events acknowledged since start. */
  forwarded: number;
  lastError: string | null;
  lastForwardAt: string | null;
}

export interface SiteReporterOptions {
  client: OriginClient;
  store: DeviceStore;
  log: Logger;
  forwardEvents: boolean;
  /** The heartbeat's content apart from the events part. */
  heartbeat: () => Omit<SiteHeartbeat, 'events'>;
  batchSize?: number;
}

export function forwardedEvent(event: StoredEvent): ForwardedEvent {
  return {
    id: event.id,
    deviceId: event.deviceId,
    ...(event.bootId !== undefined ? { bootId: event.bootId } : {}),
    at: event.at.toISOString(),
    type: event.detail.type,
    detail: event.detail,
  };
}

export class SiteReporter {
  private readonly options: SiteReporterOptions;
  /** The outbox cursor's name: one per origin, so a site moved to another origin starts over there. */
  private readonly target: string;
  private loggedError: string | undefined;
  private readonly state: ForwardStatus = { forwardedThrough: 0, latestId: 0, forwarded: 0, lastError: null, lastForwardAt: null };
  lastHeartbeatError: string | null = null;
  lastHeartbeatAt: string | null = null;

  constructor(options: SiteReporterOptions) {
    this.options = options;
    this.target = `origin ${options.client.origin}`;
  }

  status(): Readonly<ForwardStatus> {
    return { ...this.state };
  }

  /** Events not yet acknowledged by the origin (as of the last round). */
  get behind(): number {
    return Math.max(0, this.state.latestId - this.state.forwardedThrough);
  }

  private trouble(what: string, message: string): void {
    const line = `${what}: ${message}`;
    if (line === this.loggedError) return;
    this.loggedError = line;
    this.options.log.warn({ origin: this.options.client.origin, error: message, behind: this.behind }, `site ${line}`);
  }

  /** Reads the cursor and the newest id from the store (a store that is down leaves them as they were). */
  private async refresh(): Promise<void> {
    try {
      this.state.forwardedThrough = await this.options.store.outboxCursor(this.target);
      this.state.latestId = await this.options.store.latestEventId();
    } catch {
      // The store's own trouble is reported by the store and the heartbeat.
    }
  }

  /** Forwards what is behind the cursor, batch by batch, until caught up or a batch fails. */
  async forward(): Promise<number> {
    if (!this.options.forwardEvents) return 0;
    const { store, client } = this.options;
    const size = Math.min(this.options.batchSize ?? BATCH_SIZE, MAX_BATCH);
    let sent = 0;
    try {
      let cursor = await store.outboxCursor(this.target);
      this.state.forwardedThrough = cursor;
      for (let round = 0; round < BATCHES_PER_ROUND; round++) {
        const events = await store.eventsAfter(cursor, size);
        if (events.length === 0) break;
        // A download's progress is transient (the store replaces it, and drops it when the
        // download ends): the origin gets the download's start and end, not its progress.
        const lasting: ForwardedEvent[] = [];
        let bytes = 0;
        let last = cursor;
        for (const event of events) {
          if (event.detail.type === 'download' && event.detail.phase === 'progress') {
            last = event.id;
            continue;
          }
          const forwarded = forwardedEvent(event);
          const size = Buffer.byteLength(JSON.stringify(forwarded));
          if (lasting.length > 0 && bytes + size > BATCH_BYTES) break;
          lasting.push(forwarded);
          bytes += size;
          last = event.id;
        }
        if (lasting.length > 0) await client.post('/events', { events: lasting });
        await store.advanceOutboxCursor(this.target, last);
        cursor = last;
        sent += lasting.length;
        this.state.forwardedThrough = cursor;
        this.state.forwarded += lasting.length;
        this.state.lastForwardAt = new Date().toISOString();
        if (events.length < size && last === events.at(-1)?.id) break;
      }
      if (this.state.lastError) this.options.log.info({ origin: client.origin }, 'site events reach the origin again');
      this.state.lastError = null;
      if (this.loggedError?.startsWith('event forwarding')) this.loggedError = undefined;
    } catch (error) {
      this.state.lastError = (error as Error).message;
      this.trouble('event forwarding failed (kept in the outbox, sent when the origin answers)', this.state.lastError);
    }
    await this.refresh();
    return sent;
  }

  /** Sends one heartbeat; resolves either way. */
  async heartbeat(): Promise<boolean> {
    await this.refresh();
    const body: SiteHeartbeat = { ...this.options.heartbeat(), events: { latestId: this.state.latestId, forwardedThrough: this.state.forwardedThrough, forwarding: this.options.forwardEvents } };
    try {
      await this.options.client.post('/heartbeat', body);
      this.lastHeartbeatAt = new Date().toISOString();
      this.lastHeartbeatError = null;
      if (this.loggedError?.startsWith('heartbeat')) this.loggedError = undefined;
      return true;
    } catch (error) {
      this.lastHeartbeatError = (error as Error).message;
      this.trouble('heartbeat failed', this.lastHeartbeatError);
      return false;
    }
  }
}
