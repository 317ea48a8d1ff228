/**
 * The shared device store: PostgreSQL, for several bootdepot replicas acting as one service.
 *
 * Each device's summary is derived in application code (model.ts), as with SQLite; to keep two
 * replicas from deriving from the same old row, a transaction takes a per-device advisory lock
 * first. Events reach every replica's live stream through LISTEN/NOTIFY, sent inside the
 * transaction so they are delivered exactly when it commits.
 */
import pg from 'pg';
import { applyEvent, type BootPlanRecord, type Device, type NewEvent, type NextBoot, type StoredEvent } from './model.ts';
import type { DeviceFilter, DeviceStore, EventListener } from './store.ts';

const CHANNEL = 'bootdepot_events';
/** NOTIFY payloads are limited to 8000 bytes; larger events are announced by id and read back. */
const MAX_NOTIFY = 7000;

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     data JSONB NOT NULL,
     stage TEXT,
     last_profile TEXT,
     last_seen TIMESTAMPTZ NOT NULL,
     last_ip TEXT
   );
   CREATE INDEX devices_last_ip ON devices (last_ip, last_seen);
   CREATE TABLE events (
     id BIGSERIAL PRIMARY KEY,
     device_id TEXT NOT NULL,
     boot_id TEXT,
     at TIMESTAMPTZ NOT NULL,
     type TEXT NOT NULL,
     detail JSONB NOT NULL
   );
   CREATE INDEX events_device ON events (device_id, id);
   CREATE INDEX events_at ON events (at);
   CREATE TABLE boots (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL,
     created_at TIMESTAMPTZ NOT NULL,
     data JSONB NOT NULL
   );
   CREATE INDEX boots_created ON boots (created_at);`,
];

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
}

export class PostgresDeviceStore implements DeviceStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private readonly listeners = new Set<EventListener>();
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly options: PostgresStoreOptions;

  constructor(options: PostgresStoreOptions) {
    this.options = options;
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
    for (const event of events) devices.set(event.deviceId, applyEvent(devices.get(event.deviceId), event));

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
    await client.query(
      `INSERT INTO devices (id, data, stage, last_profile, last_seen, last_ip)
       SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
       ON CONFLICT (id) DO UPDATE SET data = excluded.data, stage = excluded.stage, last_profile = excluded.last_profile,
         last_seen = excluded.last_seen, last_ip = excluded.last_ip`,
      [changed.map((d) => d.id), changed.map((d) => JSON.stringify(d)), changed.map((d) => d.stage), changed.map((d) => d.lastProfile), changed.map((d) => d.lastSeen), changed.map((d) => d.lastIp)],
    );
    return stored;
  }

  recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return Promise.resolve([]);
    return this.transaction((client) => this.appendEvents(client, events));
  }

  async saveBootPlan(plan: BootPlanRecord): Promise<void> {
    await this.pool.query('INSERT INTO boots (id, device_id, created_at, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET data = excluded.data', [
      plan.id,
      plan.deviceId,
      plan.createdAt,
      JSON.stringify(plan),
    ]);
  }

  async getBootPlan(id: string): Promise<BootPlanRecord | undefined> {
    const { rows } = await this.pool.query<{ data: BootPlanRecord }>('SELECT data FROM boots WHERE id = $1', [id]);
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

  prune(before: Date, keepPerDevice: number): Promise<number> {
    return this.transaction(async (client) => {
      const old = await client.query('DELETE FROM events WHERE at < $1', [before]);
      const excess = await client.query(
        `DELETE FROM events WHERE id IN (
           SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY id DESC) AS n FROM events) ranked WHERE n > $1)`,
        [keepPerDevice],
      );
      await client.query('DELETE FROM boots WHERE created_at < $1', [before]);
      return (old.rowCount ?? 0) + (excess.rowCount ?? 0);
    });
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.listenRetry);
    this.listeners.clear();
    const client = this.listenClient;
    this.listenClient = undefined;
    await client?.end().catch(() => undefined);
    await this.pool.end();
  }
}
