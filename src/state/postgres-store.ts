/**
 * The shared device store: PostgreSQL, for several bootdepot replicas acting as one service.
 *
 * Each device's summary is derived in application code (model.ts), as with SQLite; to keep two
 * replicas from deriving from the same old row, a transaction takes a per-device advisory lock
 * first. Events reach every replica's live stream through LISTEN/NOTIFY, sent inside the
 * transaction so they are delivered exactly when it commits.
 */
import pg from 'pg';
import { initialSchema } from './sql-schema.ts';
import { siteSchema, type ForwardedEvent, type SiteHeartbeat, type SiteRecord, type StoredSiteEvent } from './sites.ts';
import { applyEvent, supersedesProgress, type BootRecord, type Device, type NewEvent, type NextBoot, type StoredEvent } from './model.ts';
import { DEFAULT_LIMITS, eventSlack, isBooted, type DeviceFilter, type DeviceStore, type EventListener, type StoreLimits } from './store.ts';

const CHANNEL = 'bootdepot_events';
/** NOTIFY payloads are limited to 8000 bytes; larger events are announced by id and read back. */
const MAX_NOTIFY = 7000;

const MIGRATIONS: readonly string[] = [
  initialSchema({ eventId: 'BIGSERIAL PRIMARY KEY', time: 'TIMESTAMPTZ', json: 'JSONB' }),
  // As in SQLite (see sqlite-store.ts): event counts, and whether a device booted or has a
  // next boot, so the per-device cap and the unknown-device limit need no scan of events.
  `ALTER TABLE devices ADD COLUMN event_count INTEGER NOT NULL DEFAULT 0,
     ADD COLUMN booted BOOLEAN NOT NULL DEFAULT false,
     ADD COLUMN next_boot BOOLEAN NOT NULL DEFAULT false;
   UPDATE devices SET
     event_count = (SELECT COUNT(*) FROM events WHERE events.device_id = devices.id),
     booted = (stage IN ('booting', 'running', 'succeeded', 'failed') OR jsonb_typeof(data->'lastReport') = 'object'
       OR EXISTS (SELECT 1 FROM events WHERE events.device_id = devices.id AND events.type IN ('beacon', 'report'))),
     next_boot = (jsonb_typeof(data->'nextBoot') = 'object');
   CREATE INDEX devices_unknown ON devices (last_seen) WHERE NOT booted AND NOT next_boot;
   CREATE INDEX devices_last_seen ON devices (last_seen);
   CREATE INDEX boots_device ON boots (device_id);`,
  siteSchema({ bigint: 'BIGINT', time: 'TIMESTAMPTZ', json: 'JSONB' }),
];

/**
 * Events are forwarded from a site once they are this old: ids come from a sequence, so with
 * several replicas a lower id may commit after a higher one; a cursor that passed it would
 * skip it. No transaction here stays open nearly this long.
 */
const FORWARD_SETTLE = '10 seconds';

/** Rows one prune statement deletes at most, so no step holds its locks for long. */
const PRUNE_BATCH = 1000;
/** Devices removed per step at most (and fewer when they have many events). */
const DEVICE_BATCH = 500;

/** Arbitrary constant for the migration lock, so replicas starting together migrate once. */
const MIGRATION_LOCK = 424242;

interface EventRow {
  id: string;
  device_id: string;
  boot_id: string | null;
  at: Date;
  detail: StoredEvent['detail'];
}

function eventFromRow(row: EventRow): StoredEvent {
  return { id: Number(row.id), deviceId: row.device_id, ...(row.boot_id ? { bootId: row.boot_id } : {}), at: new Date(row.at), detail: row.detail };
}

export interface PostgresStoreOptions {
  url: string;
  /** Told about LISTEN connection trouble (the store reconnects by itself). */
  onError?: (error: Error) => void;
  poolSize?: number;
  /**
   * For `bootdepot render`: every transaction read-only (PostgreSQL refuses writes), no
   * migration and no LISTEN connection; `migrate()` only checks that the schema is there.
   */
  readOnly?: boolean;
  limits?: Partial<StoreLimits>;
}

interface Candidate {
  id: string;
  event_count: number;
  last_seen: Date;
}

export class PostgresDeviceStore implements DeviceStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private readonly listeners = new Set<EventListener>();
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly options: PostgresStoreOptions;
  private readonly limits: StoreLimits;
  /** Devices this replica created since it last counted the unknown ones. */
  private newDevices = 0;
  private unknownPruning: Promise<number> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', (error) => options.onError?.(error));
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async migrate(): Promise<void> {
    if (this.options.readOnly) {
      const { rows: tables } = await this.pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
      const { rows } = tables[0]?.t ? await this.pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations') : { rows: [] };
      const version = Number(rows[0]?.v ?? 0);
      if (version < MIGRATIONS.length) throw new Error(`the database has not been set up by this version of bootdepot serve (schema ${version} of ${MIGRATIONS.length})`);
      return;
    }
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)');
      const { rows } = await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
      for (let version = Number(rows[0]?.v ?? 0) + 1; version <= MIGRATIONS.length; version++) {
        await client.query(MIGRATIONS[version - 1] ?? '');
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [version]);
      }
    });
    await this.startListening();
  }

  private async startListening(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.options.url });
    const retry = (error: Error) => {
      this.options.onError?.(error);
      if (this.listenClient === client) this.listenClient = undefined;
      client.removeAllListeners();
      client.end().catch(() => undefined);
      if (!this.closed) {
        this.listenRetry = setTimeout(() => void this.startListening().catch((e: unknown) => retry(e as Error)), 1000);
        this.listenRetry.unref();
      }
    };
    client.on('error', retry);
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      void this.deliver(message.payload).catch((error: unknown) => this.options.onError?.(error as Error));
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.listenClient = client;
  }

  private async deliver(payload: string): Promise<void> {
    if (this.listeners.size === 0) return;
    const parsed = JSON.parse(payload) as StoredEvent | { id: number; large: true };
    let event: StoredEvent | undefined;
    if ('large' in parsed) {
      const { rows } = await this.pool.query<EventRow>('SELECT id, device_id, boot_id, at, detail FROM events WHERE id = $1', [parsed.id]);
      event = rows[0] ? eventFromRow(rows[0]) : undefined;
    } else {
      event = { ...parsed, at: new Date(parsed.at) };
    }
    if (event) for (const listener of this.listeners) listener(event);
  }

  /**
   * Appends a batch in a fixed number of statements whatever its size (locks, read, events,
   * plans, notifications, devices), so a boot storm's batches cost a few round trips each.
   */
  private async appendEvents(client: pg.PoolClient, events: readonly NewEvent[]): Promise<StoredEvent[]> {
    const ids = [...new Set(events.map((e) => e.deviceId))].sort();
    // In sorted order, so two replicas locking overlapping sets cannot deadlock.
    await client.query('SELECT pg_advisory_xact_lock(hashtext(id)) FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n', [ids]);
    const { rows } = await client.query<{ id: string; data: Device }>('SELECT id, data FROM devices WHERE id = ANY($1)', [ids]);
    const devices = new Map<string, Device | undefined>(rows.map((row) => [row.id, row.data]));
    const added = new Map<string, number>();
    const booted = new Set<string>();
    for (const event of events) {
      const device = applyEvent(devices.get(event.deviceId), event);
      devices.set(event.deviceId, device);
      added.set(device.id, (added.get(device.id) ?? 0) + 1);
      // Per event: a beacon followed by a new script in the same batch still counts as booted.
      if (isBooted(device)) booted.add(device.id);
    }

    const inserted = await client.query<{ id: string }>(
      `INSERT INTO events (device_id, boot_id, at, type, detail)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
       RETURNING id`,
      [events.map((e) => e.deviceId), events.map((e) => e.bootId ?? null), events.map((e) => e.at), events.map((e) => e.detail.type), events.map((e) => JSON.stringify(e.detail))],
    );
    const stored: StoredEvent[] = events.map((event, i) => ({
      deviceId: event.deviceId,
      ...(event.bootId ? { bootId: event.bootId } : {}),
      at: event.at,
      detail: event.detail,
      id: Number(inserted.rows[i]?.id),
    }));

    // A download's latest progress replaces the ones before; its end replaces the last: each
    // download keeps one progress row while it runs, none once it ended.
    const newest = new Map<string, { deviceId: string; bootId: string; path: string; id: number }>();
    for (const event of stored) {
      if (supersedesProgress(event.detail) && event.bootId) newest.set(`${event.deviceId} ${event.bootId} ${event.detail.path}`, { deviceId: event.deviceId, bootId: event.bootId, path: event.detail.path, id: event.id });
    }
    if (newest.size > 0) {
      const keys = [...newest.values()];
      const replaced = await client.query<{ device_id: string }>(
        `DELETE FROM events e USING unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS k(device_id, boot_id, path, newest)
         WHERE e.device_id = k.device_id AND e.boot_id = k.boot_id AND e.type = 'download' AND e.detail->>'phase' = 'progress'
           AND e.detail->>'path' = k.path AND e.id < k.newest
         RETURNING e.device_id`,
        [keys.map((k) => k.deviceId), keys.map((k) => k.bootId), keys.map((k) => k.path), keys.map((k) => k.id)],
      );
      for (const row of replaced.rows) added.set(row.device_id, (added.get(row.device_id) ?? 0) - 1);
    }

    const plans = events.flatMap((e) => (e.plan ? [e.plan] : []));
    if (plans.length > 0) {
      await client.query(
        `INSERT INTO boots (id, device_id, created_at, data)
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[])
         ON CONFLICT (id) DO UPDATE SET data = excluded.data`,
        [plans.map((p) => p.id), plans.map((p) => p.deviceId), plans.map((p) => p.createdAt), plans.map((p) => JSON.stringify(p))],
      );
    }

    const payloads = stored.map((event) => {
      const payload = JSON.stringify(event);
      return payload.length <= MAX_NOTIFY ? payload : JSON.stringify({ id: event.id, large: true });
    });
    await client.query('SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS t(payload, n) ORDER BY n', [CHANNEL, payloads]);

    const changed = [...devices.values()].filter((d): d is Device => d !== undefined);
    const written = await client.query<{ id: string; event_count: number; inserted: boolean }>(
      `INSERT INTO devices (id, data, stage, last_profile, last_seen, last_ip, event_count, booted, next_boot)
       SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::integer[], $8::boolean[], $9::boolean[])
       ON CONFLICT (id) DO UPDATE SET data = excluded.data, stage = excluded.stage, last_profile = excluded.last_profile,
         last_seen = excluded.last_seen, last_ip = excluded.last_ip, event_count = devices.event_count + excluded.event_count,
         booted = devices.booted OR excluded.booted, next_boot = excluded.next_boot
       RETURNING id, event_count, (xmax = 0) AS inserted`,
      [
        changed.map((d) => d.id),
        changed.map((d) => JSON.stringify(d)),
        changed.map((d) => d.stage),
        changed.map((d) => d.lastProfile),
        changed.map((d) => d.lastSeen),
        changed.map((d) => d.lastIp),
        changed.map((d) => added.get(d.id) ?? 0),
        changed.map((d) => booted.has(d.id)),
        changed.map((d) => d.nextBoot !== null),
      ],
    );
    this.newDevices += written.rows.filter((row) => row.inserted).length;
    const cap = this.limits.maxEventsPerDevice;
    const over = new Set(written.rows.filter((row) => Number(row.event_count) > cap + eventSlack(cap)).map((row) => row.id));
    // The cap holds in the writing transaction, under the devices' locks taken above.
    if (over.size > 0) await this.trimDevices(client, changed.filter((d) => over.has(d.id)), cap);
    return stored;
  }

  /**
   * Keeps the newest `cap` events of each device (and the boot plans that a kept event or a
   * recent boot still needs); sets their counts right. The caller holds the devices' locks.
   */
  private async trimDevices(client: pg.PoolClient, devices: readonly Device[], cap: number): Promise<number> {
    if (devices.length === 0) return 0;
    const ids = devices.map((d) => d.id);
    const { rows: past } = await client.query<{ id: string; cutoff: string; at: Date }>(
      `SELECT d.id, c.id AS cutoff, c.at FROM unnest($1::text[]) AS d(id)
       CROSS JOIN LATERAL (SELECT id, at FROM events WHERE device_id = d.id ORDER BY id DESC OFFSET $2 LIMIT 1) c`,
      [ids, cap],
    );
    let removed = 0;
    if (past.length > 0) {
      const deleted = await client.query(
        'DELETE FROM events e USING unnest($1::text[], $2::bigint[]) AS p(id, cutoff) WHERE e.device_id = p.id AND e.id <= p.cutoff',
        [past.map((p) => p.id), past.map((p) => p.cutoff)],
      );
      removed = deleted.rowCount ?? 0;
      const keep = devices.flatMap((d) => [d.lastBootId, ...(d.recentBoots ?? []).map((b) => b.id)]).filter((id): id is string => id !== null);
      await client.query('DELETE FROM boots b USING unnest($1::text[], $2::timestamptz[]) AS p(id, at) WHERE b.device_id = p.id AND b.created_at < p.at AND b.id <> ALL($3::text[])', [
        past.map((p) => p.id),
        past.map((p) => p.at),
        keep,
      ]);
    }
    await client.query('UPDATE devices d SET event_count = (SELECT COUNT(*) FROM events e WHERE e.device_id = d.id) WHERE d.id = ANY($1)', [ids]);
    return removed;
  }

  async recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const stored = await this.transaction((client) => this.appendEvents(client, events));
    this.maybePruneUnknown();
    return stored;
  }

  async getBootPlan(id: string): Promise<BootRecord | undefined> {
    const { rows } = await this.pool.query<{ data: BootRecord }>('SELECT data FROM boots WHERE id = $1', [id]);
    return rows[0]?.data;
  }

  async getDevice(id: string): Promise<Device | undefined> {
    const { rows } = await this.pool.query<{ data: Device }>('SELECT data FROM devices WHERE id = $1', [id]);
    return rows[0]?.data;
  }

  async listDevices(filter: DeviceFilter = {}): Promise<Device[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.stage) where.push(`stage = $${params.push(filter.stage)}`);
    if (filter.profile) where.push(`last_profile = $${params.push(filter.profile)}`);
    if (filter.seenSince) where.push(`last_seen >= $${params.push(filter.seenSince)}`);
    const sql = `SELECT data FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.push(filter.limit ?? 1000)}`;
    const { rows } = await this.pool.query<{ data: Device }>(sql, params);
    return rows.map((row) => row.data);
  }

  async listEvents(deviceId: string, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<EventRow>('SELECT id, device_id, boot_id, at, detail FROM events WHERE device_id = $1 ORDER BY id DESC LIMIT $2', [deviceId, limit]);
    return rows.map(eventFromRow);
  }

  async findDeviceByIp(ip: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM devices WHERE last_ip = $1 ORDER BY last_seen DESC LIMIT 1', [ip]);
    return rows[0]?.id;
  }

  setNextBoot(id: string, nextBoot: NextBoot | null, by: 'api' | 'installOnce' | 'once-consumed'): Promise<Device | undefined> {
    return this.transaction(async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM devices WHERE id = $1', [id]);
      if (!rowCount) return undefined;
      await this.appendEvents(client, [{ deviceId: id, at: new Date(), detail: { type: 'next-boot', nextBoot, by } }]);
      const { rows } = await client.query<{ data: Device }>('SELECT data FROM devices WHERE id = $1', [id]);
      return rows[0]?.data;
    });
  }

  deleteDevice(id: string): Promise<boolean> {
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [id]);
      await client.query('DELETE FROM events WHERE device_id = $1', [id]);
      await client.query('DELETE FROM boots WHERE device_id = $1', [id]);
      const { rowCount } = await client.query('DELETE FROM devices WHERE id = $1', [id]);
      return (rowCount ?? 0) > 0;
    });
  }

  /**
   * Removes whole devices with their events and boot plans, in one transaction under their
   * locks. Candidates are taken in order while their events stay within one batch; `still` is
   * the condition re-checked under the locks (another replica may have written meanwhile).
   */
  private async removeDevices(candidates: readonly Candidate[], still: string, params: unknown[] = []): Promise<number> {
    const chosen: Candidate[] = [];
    let events = 0;
    for (const candidate of candidates) {
      if (chosen.length > 0 && events + Number(candidate.event_count) > PRUNE_BATCH) break;
      chosen.push(candidate);
      events += Number(candidate.event_count);
    }
    if (chosen.length === 0) return 0;
    const ids = chosen.map((c) => c.id).sort();
    const newest = new Date(Math.max(...chosen.map((c) => new Date(c.last_seen).getTime())));
    return this.transaction(async (client) => {
      // The same order as appendEvents takes them, so the two cannot deadlock.
      await client.query('SELECT pg_advisory_xact_lock(hashtext(id)) FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n', [ids]);
      const { rows } = await client.query<{ id: string }>(`DELETE FROM devices WHERE id = ANY($1) AND last_seen <= $2 AND ${still} RETURNING id`, [ids, newest, ...params]);
      const gone = rows.map((row) => row.id);
      if (gone.length === 0) return 0;
      const deletedEvents = await client.query('DELETE FROM events WHERE device_id = ANY($1)', [gone]);
      const deletedBoots = await client.query('DELETE FROM boots WHERE device_id = ANY($1)', [gone]);
      return gone.length + (deletedEvents.rowCount ?? 0) + (deletedBoots.rowCount ?? 0);
    });
  }

  /** One step: the least recently seen unknown devices beyond the limit. Rows removed. */
  private async pruneUnknownStep(): Promise<number> {
    const { rows: counted } = await this.pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM devices WHERE NOT booted AND NOT next_boot');
    const excess = Number(counted[0]?.n ?? 0) - this.limits.maxUnknownDevices;
    if (excess <= 0) return 0;
    const { rows } = await this.pool.query<Candidate>('SELECT id, event_count, last_seen FROM devices WHERE NOT booted AND NOT next_boot ORDER BY last_seen LIMIT $1', [
      Math.min(excess, DEVICE_BATCH),
    ]);
    return this.removeDevices(rows, 'NOT booted AND NOT next_boot');
  }

  /** As SqliteDeviceStore's: after enough new devices, remove the unknown ones beyond the limit, off the request path. */
  private maybePruneUnknown(): void {
    if (this.unknownPruning || this.closed || this.newDevices < Math.max(10, Math.ceil(this.limits.maxUnknownDevices / 100))) return;
    this.newDevices = 0;
    this.unknownPruning = this.pruneUnknownDevices()
      .catch((error: unknown) => {
        this.options.onError?.(error as Error);
        return 0;
      })
      .finally(() => {
        this.unknownPruning = undefined;
      });
  }

  /** Removes unknown devices beyond the limit, a step at a time. */
  async pruneUnknownDevices(): Promise<number> {
    let removed = 0;
    while (!this.closed) {
      const rows = await this.pruneUnknownStep();
      if (rows === 0) break;
      removed += rows;
    }
    return removed;
  }

  /** Waits for a background prune of unknown devices, if one is running (tests). */
  async settled(): Promise<void> {
    await this.unknownPruning;
  }

  /** One bounded step of pruning (see DeviceStore.prune): the first kind that finds work. */
  async prune(before: Date, keepPerDevice: number): Promise<number> {
    const steps: (() => Promise<number>)[] = [
      () => this.pruneUnknownStep(),
      async () => (await this.pool.query('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 ORDER BY at LIMIT $2)', [before, PRUNE_BATCH])).rowCount ?? 0,
      async () => {
        const { rows } = await this.pool.query<Candidate>('SELECT id, event_count, last_seen FROM devices WHERE last_seen < $1 AND NOT next_boot ORDER BY last_seen LIMIT $2', [before, DEVICE_BATCH]);
        return this.removeDevices(rows, 'last_seen < $3 AND NOT next_boot', [before]);
      },
      async () => (await this.pool.query('DELETE FROM boots WHERE id IN (SELECT id FROM boots WHERE created_at < $1 ORDER BY created_at LIMIT $2)', [before, PRUNE_BATCH])).rowCount ?? 0,
      async () => (await this.pool.query('DELETE FROM site_events WHERE (site, event_id) IN (SELECT site, event_id FROM site_events WHERE at < $1 ORDER BY at LIMIT $2)', [before, PRUNE_BATCH])).rowCount ?? 0,
      async () => {
        const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM devices WHERE event_count > $1 ORDER BY id LIMIT 20', [keepPerDevice]);
        if (rows.length === 0) return 0;
        const ids = rows.map((row) => row.id).sort();
        const removed = await this.transaction(async (client) => {
          await client.query('SELECT pg_advisory_xact_lock(hashtext(id)) FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n', [ids]);
          const { rows: current } = await client.query<{ data: Device }>('SELECT data FROM devices WHERE id = ANY($1)', [ids]);
          return this.trimDevices(
            client,
            current.map((row) => row.data),
            keepPerDevice,
          );
        });
        // A device whose count only was stale is set right, which is work done too.
        return removed > 0 ? removed : rows.length;
      },
    ];
    for (const step of steps) {
      const removed = await step();
      if (removed > 0) return removed;
    }
    return 0;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT id, device_id, boot_id, at, detail FROM events WHERE id > $1 AND at < now() - interval '${FORWARD_SETTLE}' ORDER BY id LIMIT $2`,
      [afterId, limit],
    );
    return rows.map(eventFromRow);
  }

  async latestEventId(): Promise<number> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT COALESCE(MAX(id), 0) AS id FROM events');
    return Number(rows[0]?.id ?? 0);
  }

  async outboxCursor(target: string): Promise<number> {
    const { rows } = await this.pool.query<{ event_id: string }>('SELECT event_id FROM outbox_cursors WHERE target = $1', [target]);
    return rows[0] ? Number(rows[0].event_id) : 0;
  }

  async advanceOutboxCursor(target: string, eventId: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO outbox_cursors (target, event_id, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (target) DO UPDATE SET event_id = GREATEST(outbox_cursors.event_id, excluded.event_id), updated_at = excluded.updated_at`,
      [target, eventId],
    );
  }

  async recordSiteHeartbeat(site: string, heartbeat: SiteHeartbeat, at: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO sites (name, first_seen, last_heartbeat, heartbeat) VALUES ($1, $2, $2, $3)
       ON CONFLICT (name) DO UPDATE SET last_heartbeat = excluded.last_heartbeat, heartbeat = excluded.heartbeat`,
      [site, at, JSON.stringify(heartbeat)],
    );
  }

  async recordSiteEvents(site: string, events: readonly ForwardedEvent[], at: Date): Promise<{ added: number; duplicates: number }> {
    const added = await this.transaction(async (client) => {
      await client.query('INSERT INTO sites (name, first_seen) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [site, at]);
      // The site's row first: two batches of one site (a retry beside the original) count in turn.
      await client.query('SELECT 1 FROM sites WHERE name = $1 FOR UPDATE', [site]);
      const inserted = await client.query(
        `INSERT INTO site_events (site, event_id, device_id, boot_id, at, type, detail, received_at)
         SELECT $1, * , $8 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::jsonb[])
         ON CONFLICT (site, event_id) DO NOTHING`,
        [site, events.map((e) => e.id), events.map((e) => e.deviceId), events.map((e) => e.bootId ?? null), events.map((e) => e.at), events.map((e) => e.type), events.map((e) => JSON.stringify(e.detail)), at],
      );
      const count = inserted.rowCount ?? 0;
      const highest = events.reduce((max, e) => Math.max(max, e.id), 0);
      await client.query('UPDATE sites SET events_received = events_received + $1, last_event_id = GREATEST(last_event_id, $2) WHERE name = $3', [count, highest, site]);
      return count;
    });
    return { added, duplicates: events.length - added };
  }

  async listSites(): Promise<SiteRecord[]> {
    const { rows } = await this.pool.query<{ name: string; first_seen: Date; last_heartbeat: Date | null; heartbeat: SiteHeartbeat | null; events_received: string; last_event_id: string }>(
      'SELECT name, first_seen, last_heartbeat, heartbeat, events_received, last_event_id FROM sites ORDER BY name',
    );
    return rows.map((row) => ({
      name: row.name,
      firstSeen: row.first_seen.toISOString(),
      lastHeartbeat: row.last_heartbeat ? row.last_heartbeat.toISOString() : null,
      heartbeat: row.heartbeat,
      eventsReceived: Number(row.events_received),
      lastEventId: Number(row.last_event_id),
    }));
  }

  async listSiteEvents(site: string, limit: number): Promise<StoredSiteEvent[]> {
    const { rows } = await this.pool.query<{ site: string; event_id: string; device_id: string; boot_id: string | null; at: Date; type: string; detail: Record<string, unknown>; received_at: Date }>(
      'SELECT site, event_id, device_id, boot_id, at, type, detail, received_at FROM site_events WHERE site = $1 ORDER BY event_id DESC LIMIT $2',
      [site, limit],
    );
    return rows.map((row) => ({
      site: row.site,
      id: Number(row.event_id),
      deviceId: row.device_id,
      ...(row.boot_id !== null ? { bootId: row.boot_id } : {}),
      at: row.at.toISOString(),
      type: row.type as StoredSiteEvent['type'],
      detail: row.detail,
      receivedAt: row.received_at.toISOString(),
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.listenRetry);
    await this.unknownPruning;
    this.listeners.clear();
    const client = this.listenClient;
    this.listenClient = undefined;
    await client?.end().catch(() => undefined);
    await this.pool.end();
  }
}
