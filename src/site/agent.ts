/**
 * Site mode's loop (docs/sites.md): every `site.syncIntervalSeconds`, sync the origin's data,
 * send a heartbeat, forward boot events; one round at a time, the next one an interval after
 * the last ended. What it knows is read by /metrics, the site's `GET /api/v1/site` and the
 * catalogue's problems.
 */
import type { Logger } from 'pino';
import type { DeviceStore } from '../state/store.ts';
import type { SiteHeartbeat } from '../state/sites.ts';
import type { DataSync } from './data-sync.ts';
import { SiteReporter } from './reporter.ts';
import type { OriginClient } from './origin-client.ts';

/** Within the origin's field limits (origin-routes.ts), so a long message never stops heartbeats. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function clipOrNull(text: string | null, max: number): string | null {
  return text === null ? null : clip(text, max);
}

export interface SiteAgentOptions {
  name: string;
  client: OriginClient;
  sync: DataSync;
  /** The site's own store; without one (state.enabled false) there is nothing to forward. */
  store?: DeviceStore | undefined;
  log: Logger;
  intervalMs: number;
  forwardEvents: boolean;
  version: string;
  /** The site's cache, for the heartbeat. */
  cache: () => SiteHeartbeat['cache'];
  /** Why the store is not usable, or undefined when it is. */
  storeTrouble: () => string | undefined;
}

export class SiteAgent {
  readonly name: string;
  readonly sync: DataSync;
  readonly reporter: SiteReporter | undefined;
  private readonly options: SiteAgentOptions;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Rounds finished since start. */
  rounds = 0;

  constructor(options: SiteAgentOptions) {
    this.options = options;
    this.name = options.name;
    this.sync = options.sync;
    this.reporter = options.store
      ? new SiteReporter({ client: options.client, store: options.store, log: options.log, forwardEvents: options.forwardEvents, heartbeat: () => this.heartbeat() })
      : undefined;
  }

  private heartbeat(): Omit<SiteHeartbeat, 'events'> {
    const sync = this.sync.status();
    const trouble = this.options.storeTrouble();
    return {
      version: this.options.version,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      intervalSeconds: Math.round(this.options.intervalMs / 1000),
      cache: this.options.cache(),
      store: { kind: this.options.store?.kind ?? 'off', healthy: this.options.store !== undefined && trouble === undefined, ...(trouble !== undefined ? { reason: clip(trouble, 1000) } : {}) },
      data: {
        etag: sync.etag,
        appliedAt: sync.appliedAt,
        lastSyncAt: sync.lastSyncAt,
        lastSyncError: clipOrNull(sync.lastSyncError ?? (sync.rejected ? `the origin's copy ${sync.rejected.etag} fails the check: ${sync.rejected.problems[0] ?? ''}` : null), 2000),
      },
    };
  }

  /** One round: sync, heartbeat, forward. Never rejects. */
  round(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.sync.syncOnce();
        if (this.reporter) {
          await this.reporter.forward();
          await this.reporter.heartbeat();
        }
        this.rounds += 1;
      } catch (error) {
        this.options.log.error({ err: error }, 'site round failed');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** The first round now, then one every interval after the last ended. */
  start(): void {
    const next = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.round().then(next), this.options.intervalMs);
      this.timer.unref();
    };
    void this.round().then(next);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** What `GET /api/v1/site` shows. */
  status() {
    return {
      name: this.name,
      origin: this.options.client.origin,
      intervalSeconds: Math.round(this.options.intervalMs / 1000),
      data: this.sync.status(),
      events: this.reporter ? { ...this.reporter.status(), behind: this.reporter.behind, enabled: this.options.forwardEvents } : { enabled: false, reason: 'no device store (state.enabled is false)' },
      heartbeat: this.reporter ? { lastAt: this.reporter.lastHeartbeatAt, lastError: this.reporter.lastHeartbeatError } : { lastAt: null, lastError: 'no device store: heartbeats are sent with it' },
    };
  }

  /** `bootdepot_site_*` gauges for /metrics. */
  gauges(): Record<string, { help: string; value: number }> {
    const data = this.sync.status();
    const events = this.reporter?.status();
    return {
      bootdepot_site_data_sync_ok: { help: "1 when the last sync of the origin's data worked (200 or 304), 0 while it fails", value: data.lastSyncError === null && data.lastSyncAt !== null ? 1 : 0 },
      bootdepot_site_data_sync_failures: { help: "Syncs of the origin's data in a row that failed (origin unreachable, refused, bad document)", value: data.failures },
      bootdepot_site_data_copy_rejected: { help: "1 while the origin's newest data fails the check and the site serves its last good copy", value: data.rejected ? 1 : 0 },
      bootdepot_site_data_applied_timestamp_seconds: { help: "When the copy of the origin's data in service was fetched (Unix time; 0: none yet)", value: data.appliedAt ? Math.floor(Date.parse(data.appliedAt) / 1000) : 0 },
      bootdepot_site_data_copies_applied: { help: "Copies of the origin's data put in service since start", value: data.applied },
      bootdepot_site_data_copies_refused: { help: "Copies of the origin's data refused by the check since start", value: data.refused },
      bootdepot_site_events_forwarded: { help: 'Boot events the origin acknowledged since start', value: events?.forwarded ?? 0 },
      bootdepot_site_events_behind: { help: 'Boot events in the outbox, not yet acknowledged by the origin', value: this.reporter?.behind ?? 0 },
      bootdepot_site_heartbeat_ok: { help: '1 when the last heartbeat reached the origin', value: this.reporter?.lastHeartbeatAt && !this.reporter.lastHeartbeatError ? 1 : 0 },
    };
  }
}
