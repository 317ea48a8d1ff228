/**
 * The embedded device store: SQLite through node:sqlite, one file in the data directory, WAL.
 *
 * node:sqlite is synchronous, so every call here blocks the event loop for its duration; that
 * is microseconds for these statements, and recording batches events (see recorder.ts) so a
 * burst of boots costs one transaction. With WAL and synchronous=NORMAL a committed event
 * survives the process being killed (it is in the WAL file); only a power loss may take the
 * last transactions. The fsyncing part, checkpoints, runs in a worker thread.
 *
 * This process is the database's only writer, so device rows are also kept in memory: the
 * summary read before every script and every event costs a map lookup, not a query and a
 * JSON parse.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { LRUCache } from 'lru-cache';
import { initialSchema } from './sql-schema.ts';
import { siteSchema, type ForwardedEvent, type SiteHeartbeat, type SiteRecord, type StoredSiteEvent } from './sites.ts';
import { applyEvent, supersedesProgress, type BootRecord, type Device, type NewEvent, type NextBoot, type StoredEvent } from './model.ts';
import { DEFAULT_LIMITS, eventSlack, isBooted, type DeviceFilter, type DeviceStore, type EventListener, type StoreLimits } from './store.ts';

/** Schema versions, applied in order, each once. */
const MIGRATIONS: readonly string[] = [
  initialSchema({ eventId: 'INTEGER PRIMARY KEY AUTOINCREMENT', time: 'TEXT', json: 'TEXT' }),
  // What keeps the store bounded without reading every row: each device's event count (the
  // per-device cap is held at write time), and whether it ever booted or has a next boot (a
  // device with neither is one of the unknown devices, pruned first). Backfilled from the rows.
  `ALTER TABLE devices ADD COLUMN event_count INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE devices ADD COLUMN booted INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE devices ADD COLUMN next_boot INTEGER NOT NULL DEFAULT 0;
   UPDATE devices SET
     event_count = (SELECT COUNT(*) FROM events WHERE events.device_id = devices.id),
     booted = (stage IN ('booting', 'running', 'succeeded', 'failed') OR json_extract(data, '$.lastReport') IS NOT NULL
       OR EXISTS (SELECT 1 FROM events WHERE events.device_id = devices.id AND events.type IN ('beacon', 'report'))),
     next_boot = (json_extract(data, '$.nextBoot') IS NOT NULL);
   CREATE INDEX devices_unknown ON devices (last_seen) WHERE booted = 0 AND next_boot = 0;
   CREATE INDEX devices_last_seen ON devices (last_seen);
   CREATE INDEX boots_device ON boots (device_id);`,
  siteSchema({ bigint: 'INTEGER', time: 'TEXT', json: 'TEXT' }),
];

/**
 * Rows one prune statement deletes at most. The oldest events are spread over many devices, so
 * each deleted row is a page of the device index rewritten: 1,000 rows write ~4 MiB of WAL and
 * hold the event loop ~10-50 ms on a busy 2-CPU machine (2,000 took up to 120 ms).
 */
export const PRUNE_BATCH = 1000;
/** Unknown devices removed per step at most (and fewer when they have many events). */
export const UNKNOWN_DEVICE_BATCH = 500;
/** The WAL size at which the checkpointer resets it, and the size it is cut back to (bytes). */
export const WAL_RESET_BYTES = 4 * 1024 * 1024;
/**
 * The serving connection's own checkpoint, only for when the checkpoint worker falls behind or
 * is gone (pages): larger than the worker's reset size, so normally it never runs.
 */
const FALLBACK_AUTOCHECKPOINT_PAGES = 8192;

interface SiteRow {
  name: string;
  first_seen: string;
  last_heartbeat: string | null;
  heartbeat: string | null;
  events_received: number;
  last_event_id: number;
}

interface SiteEventRow {
  site: string;
  event_id: number;
  device_id: string;
  boot_id: string | null;
  at: string;
  type: string;
  detail: string;
  received_at: string;
}

interface DeviceRow {
  data: string;
}
interface EventRow {
  id: number;
  device_id: string;
  boot_id: string | null;
  at: string;
  detail: string;
}

export function eventFromRow(row: EventRow): StoredEvent {
  return {
    id: Number(row.id),
    deviceId: row.device_id,
    ...(row.boot_id ? { bootId: row.boot_id } : {}),
    at: new Date(row.at),
    detail: JSON.parse(row.detail) as StoredEvent['detail'],
  };
}

export class SqliteDeviceStore implements DeviceStore {
  readonly kind = 'sqlite';
  private readonly db: DatabaseSync;
  private readonly file: string;
  private readonly listeners = new Set<EventListener>();
  private statements: Record<string, StatementSync> = {};
  /** Device rows by id; `null` remembers that there is none. */
  private readonly devices = new LRUCache<string, Device | { missing: true }>({ max: 100_000 });
  private checkpointer: Worker | undefined;

  private readonly readOnly: boolean;
  private readonly limits: StoreLimits;
  /** New devices since the unknown devices were last counted. */
  private newDevices = 0;
  private unknownPruning: Promise<number> | undefined;
  /** How many prune statements ran, by kind: tests check the work is done in bounded pieces. */
  readonly pruneStats = { statements: 0, maxRows: 0 };

  /**
   * `readOnly` (for `bootdepot render`) opens an existing file without writing anything: no
   * directory, no migration, and no `-wal`/`-shm` files. SQLite creates those for any reader of
   * a WAL database, and leaves them, unless the database is opened as immutable; that is safe
   * only while no writer is using it, which a missing `-wal` file shows. With a writer, the
   * files exist already and a plain read-only open adds nothing.
   */
  constructor(file: string, options: { readOnly?: boolean; limits?: Partial<StoreLimits> } = {}) {
    this.file = file;
    this.readOnly = options.readOnly ?? false;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    if (this.readOnly) {
      if (file !== ':memory:' && !existsSync(file)) throw new Error(`${file} does not exist`);
      const immutable = file !== ':memory:' && !existsSync(`${file}-wal`);
      const location = immutable ? pathToFileURL(path.resolve(file)) : file;
      if (location instanceof URL) location.searchParams.set('immutable', '1');
      this.db = new DatabaseSync(location, { readOnly: true });
      this.db.exec('PRAGMA busy_timeout = 5000;');
      return;
    }
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.db = new DatabaseSync(file);
    try {
      // The first statement that reads the file: a file that is not a database fails here.
      // journal_size_limit: a WAL that grew in a burst is cut back when it is next reset.
      this.db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = ${WAL_RESET_BYTES};`);
    } catch (error) {
      // Not left open for the next attempt to collide with.
      this.db.close();
      throw error;
    }
  }

  /** Moves WAL checkpoints off this thread (see sqlite-checkpointer.ts); once, on first write. */
  private startCheckpointer(): void {
    if (this.file === ':memory:' || this.checkpointer) return;
    this.db.exec(`PRAGMA wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES};`);
    // The worker file beside this one: .ts when run from the sources, .js from the build.
    this.checkpointer = new Worker(new URL(`./sqlite-checkpointer${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url), { workerData: { file: this.file, intervalMs: 50, resetBytes: WAL_RESET_BYTES } });
    // It must not keep the process alive, nor take it down.
    this.checkpointer.unref();
    this.checkpointer.on('error', () => {
      this.checkpointer = undefined;
      this.db.exec('PRAGMA wal_autocheckpoint = 1000;');
    });
  }

  migrate(): Promise<void> {
    if (this.readOnly) {
      // A reader checks the schema instead of changing it; `serve` migrates.
      let version = 0;
      try {
        version = Number((this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v);
      } catch {
        // no schema_migrations table: not migrated at all
      }
      if (version < MIGRATIONS.length) return Promise.reject(new Error(`${this.file} has not been set up by this version of bootdepot serve (schema ${version} of ${MIGRATIONS.length})`));
      this.prepareStatements();
      return Promise.resolve();
    }
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const row = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number };
    for (let version = Number(row.v) + 1; version <= MIGRATIONS.length; version++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[version - 1] ?? '');
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
      });
    }
    this.prepareStatements();
    return Promise.resolve();
  }

  private prepareStatements(): void {
    this.statements = {
      getDevice: this.db.prepare('SELECT data FROM devices WHERE id = ?'),
      upsertDevice: this.db.prepare(
        `INSERT INTO devices (id, data, stage, last_profile, last_seen, last_ip, event_count, booted, next_boot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, stage = excluded.stage, last_profile = excluded.last_profile,
           last_seen = excluded.last_seen, last_ip = excluded.last_ip, event_count = devices.event_count + excluded.event_count,
           booted = MAX(devices.booted, excluded.booted), next_boot = excluded.next_boot
         RETURNING event_count`,
      ),
      // The newest event past the cap: it and everything older of the device go.
      eventPastCap: this.db.prepare('SELECT id, at FROM events WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?'),
      trimEvents: this.db.prepare('DELETE FROM events WHERE device_id = ? AND id <= ?'),
      trimBoots: this.db.prepare('DELETE FROM boots WHERE device_id = ? AND created_at < ? AND id NOT IN (SELECT value FROM json_each(?))'),
      countEvents: this.db.prepare('UPDATE devices SET event_count = (SELECT COUNT(*) FROM events WHERE device_id = ?1) WHERE id = ?1'),
      countUnknown: this.db.prepare('SELECT COUNT(*) AS n FROM devices WHERE booted = 0 AND next_boot = 0'),
      oldestUnknown: this.db.prepare('SELECT id, event_count FROM devices WHERE booted = 0 AND next_boot = 0 ORDER BY last_seen LIMIT ?'),
      expiredDevices: this.db.prepare('SELECT id, event_count FROM devices WHERE last_seen < ? AND next_boot = 0 LIMIT ?'),
      overCap: this.db.prepare('SELECT id FROM devices WHERE event_count > ? LIMIT 20'),
      expiredEvents: this.db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?)'),
      expiredBoots: this.db.prepare('DELETE FROM boots WHERE id IN (SELECT id FROM boots WHERE created_at < ? ORDER BY created_at LIMIT ?)'),
      deleteDevicesEvents: this.db.prepare('DELETE FROM events WHERE device_id IN (SELECT value FROM json_each(?))'),
      deleteDevicesBoots: this.db.prepare('DELETE FROM boots WHERE device_id IN (SELECT value FROM json_each(?))'),
      deleteDevices: this.db.prepare('DELETE FROM devices WHERE id IN (SELECT value FROM json_each(?))'),
      deleteProgress: this.db.prepare(
        "DELETE FROM events WHERE device_id = ? AND boot_id = ? AND type = 'download' AND json_extract(detail, '$.phase') = 'progress' AND json_extract(detail, '$.path') = ?",
      ),
      insertEvent: this.db.prepare('INSERT INTO events (device_id, boot_id, at, type, detail) VALUES (?, ?, ?, ?, ?) RETURNING id'),
      listEvents: this.db.prepare('SELECT id, device_id, boot_id, at, detail FROM events WHERE device_id = ? ORDER BY id DESC LIMIT ?'),
      byIp: this.db.prepare('SELECT id FROM devices WHERE last_ip = ? ORDER BY last_seen DESC LIMIT 1'),
      saveBoot: this.db.prepare('INSERT OR REPLACE INTO boots (id, device_id, created_at, data) VALUES (?, ?, ?, ?)'),
      getBoot: this.db.prepare('SELECT data FROM boots WHERE id = ?'),
      eventsAfter: this.db.prepare('SELECT id, device_id, boot_id, at, detail FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      latestEventId: this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM events'),
      outboxCursor: this.db.prepare('SELECT event_id FROM outbox_cursors WHERE target = ?'),
      advanceOutbox: this.db.prepare(
        `INSERT INTO outbox_cursors (target, event_id, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (target) DO UPDATE SET event_id = MAX(outbox_cursors.event_id, excluded.event_id), updated_at = excluded.updated_at`,
      ),
      touchSite: this.db.prepare('INSERT INTO sites (name, first_seen) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      siteHeartbeat: this.db.prepare('UPDATE sites SET heartbeat = ?, last_heartbeat = ? WHERE name = ?'),
      insertSiteEvent: this.db.prepare(
        `INSERT INTO site_events (site, event_id, device_id, boot_id, at, type, detail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (site, event_id) DO NOTHING`,
      ),
      countSiteEvents: this.db.prepare('UPDATE sites SET events_received = events_received + ?, last_event_id = MAX(last_event_id, ?) WHERE name = ?'),
      listSites: this.db.prepare('SELECT name, first_seen, last_heartbeat, heartbeat, events_received, last_event_id FROM sites ORDER BY name'),
      listSiteEvents: this.db.prepare('SELECT site, event_id, device_id, boot_id, at, type, detail, received_at FROM site_events WHERE site = ? ORDER BY event_id DESC LIMIT ?'),
      expiredSiteEvents: this.db.prepare('DELETE FROM site_events WHERE rowid IN (SELECT rowid FROM site_events WHERE at < ? ORDER BY at LIMIT ?)'),
    };
  }

  private statement(name: string): StatementSync {
    const statement = this.statements[name];
    if (!statement) throw new Error('device store used before migrate()');
    return statement;
  }

  /** Device rows written by the running transaction: cached only once it commits. */
  private pendingDevices: Device[] = [];

  private transaction<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    this.pendingDevices = [];
    try {
      const result = work();
      this.db.exec('COMMIT');
      for (const device of this.pendingDevices) this.devices.set(device.id, device);
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    } finally {
      this.pendingDevices = [];
    }
  }

  private readDevice(id: string): Device | undefined {
    const cached = this.devices.get(id);
    if (cached) return 'missing' in cached ? undefined : cached;
    const row = this.statement('getDevice').get(id) as DeviceRow | undefined;
    const device = row ? (JSON.parse(row.data) as Device) : undefined;
    this.devices.set(id, device ?? { missing: true });
    return device;
  }

  /** Writes a device row; `added` events of it were just inserted. Returns its event count. */
  private writeDevice(device: Device, added: number, booted: boolean): number {
    const row = this.statement('upsertDevice').get(
      device.id,
      JSON.stringify(device),
      device.stage,
      device.lastProfile,
      device.lastSeen,
      device.lastIp,
      added,
      booted ? 1 : 0,
      device.nextBoot ? 1 : 0,
    ) as { event_count: number };
    return Number(row.event_count);
  }

  /**
   * Holds the per-device cap in the writing transaction: once a device is `slack` past it, its
   * events older than the newest `cap` go (and the boot plans no kept event or recent boot needs).
   */
  private trimDevice(device: Device, cap: number): number {
    const past = this.statement('eventPastCap').get(device.id, cap) as { id: number; at: string } | undefined;
    if (!past) {
      // The count was stale (retention removed some): set it right.
      this.statement('countEvents').run(device.id);
      return 0;
    }
    const removed = Number(this.statement('trimEvents').run(device.id, past.id).changes);
    const keep = [...new Set([device.lastBootId, ...(device.recentBoots ?? []).map((b) => b.id)].filter((id): id is string => id !== null))];
    this.statement('trimBoots').run(device.id, past.at, JSON.stringify(keep));
    this.statement('countEvents').run(device.id);
    return removed;
  }

  private appendEvents(events: readonly NewEvent[]): StoredEvent[] {
    const stored: StoredEvent[] = [];
    const devices = new Map<string, Device | undefined>();
    const added = new Map<string, number>();
    const booted = new Set<string>();
    for (const event of events) {
      const known = devices.has(event.deviceId);
      const previous = known ? devices.get(event.deviceId) : this.readDevice(event.deviceId);
      if (!known && !previous) this.newDevices += 1;
      const device = applyEvent(previous, event);
      devices.set(event.deviceId, device);
      // A download's latest progress replaces the one before; its end replaces the last.
      const replaced = supersedesProgress(event.detail) && event.bootId ? Number(this.statement('deleteProgress').run(event.deviceId, event.bootId, event.detail.path).changes) : 0;
      added.set(event.deviceId, (added.get(event.deviceId) ?? 0) + 1 - replaced);
      // Per event, not from the batch's end state: a beacon then a new script in one batch still booted.
      if (isBooted(device)) booted.add(device.id);
      const row = this.statement('insertEvent').get(event.deviceId, event.bootId ?? null, event.at.toISOString(), event.detail.type, JSON.stringify(event.detail)) as { id: number };
      if (event.plan) this.statement('saveBoot').run(event.plan.id, event.plan.deviceId, event.plan.createdAt, JSON.stringify(event.plan));
      stored.push({ deviceId: event.deviceId, ...(event.bootId ? { bootId: event.bootId } : {}), at: event.at, detail: event.detail, id: Number(row.id) });
    }
    const cap = this.limits.maxEventsPerDevice;
    for (const device of devices.values()) {
      if (!device) continue;
      const count = this.writeDevice(device, added.get(device.id) ?? 0, booted.has(device.id));
      if (count > cap + eventSlack(cap)) this.trimDevice(device, cap);
    }
    this.pendingDevices.push(...[...devices.values()].filter((d): d is Device => d !== undefined));
    return stored;
  }

  private emit(events: StoredEvent[]): void {
    for (const event of events) for (const listener of this.listeners) listener(event);
  }

  recordEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return Promise.resolve([]);
    // Started with the first write: a worker thread costs ~25 MiB, which a server that records
    // nothing (only serving files, say) need not pay.
    this.startCheckpointer();
    const stored = this.transaction(() => this.appendEvents(events));
    this.emit(stored);
    this.maybePruneUnknown();
    return Promise.resolve(stored);
  }

  getBootPlan(id: string): Promise<BootRecord | undefined> {
    const row = this.statement('getBoot').get(id) as { data: string } | undefined;
    return Promise.resolve(row ? (JSON.parse(row.data) as BootRecord) : undefined);
  }

  getDevice(id: string): Promise<Device | undefined> {
    return Promise.resolve(this.readDevice(id));
  }

  listDevices(filter: DeviceFilter = {}): Promise<Device[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.stage) {
      where.push('stage = ?');
      params.push(filter.stage);
    }
    if (filter.profile) {
      where.push('last_profile = ?');
      params.push(filter.profile);
    }
    if (filter.seenSince) {
      where.push('last_seen >= ?');
      params.push(filter.seenSince.toISOString());
    }
    const sql = `SELECT data FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, filter.limit ?? 1000) as unknown as DeviceRow[];
    return Promise.resolve(rows.map((row) => JSON.parse(row.data) as Device));
  }

  listEvents(deviceId: string, limit: number): Promise<StoredEvent[]> {
    const rows = this.statement('listEvents').all(deviceId, limit) as unknown as EventRow[];
    return Promise.resolve(rows.map(eventFromRow));
  }

  findDeviceByIp(ip: string): Promise<string | undefined> {
    const row = this.statement('byIp').get(ip) as { id: string } | undefined;
    return Promise.resolve(row?.id);
  }

  setNextBoot(id: string, nextBoot: NextBoot | null, by: 'api' | 'installOnce' | 'once-consumed'): Promise<Device | undefined> {
    const stored = this.transaction(() => {
      if (!this.readDevice(id)) return undefined;
      return this.appendEvents([{ deviceId: id, at: new Date(), detail: { type: 'next-boot', nextBoot, by } }]);
    });
    if (!stored) return Promise.resolve(undefined);
    this.emit(stored);
    // Read after the commit, which put the updated row in the cache.
    return Promise.resolve(this.readDevice(id));
  }

  deleteDevice(id: string): Promise<boolean> {
    return Promise.resolve(
      this.transaction(() => {
        this.db.prepare('DELETE FROM events WHERE device_id = ?').run(id);
        this.db.prepare('DELETE FROM boots WHERE device_id = ?').run(id);
        const deleted = Number(this.db.prepare('DELETE FROM devices WHERE id = ?').run(id).changes) > 0;
        this.devices.delete(id);
        return deleted;
      }),
    );
  }

  /** Runs a statement that deletes rows, counting it for {@link pruneStats}. */
  private deleting(statement: StatementSync, ...params: (string | number)[]): number {
    const rows = Number(statement.run(...params).changes);
    this.pruneStats.statements += 1;
    this.pruneStats.maxRows = Math.max(this.pruneStats.maxRows, rows);
    return rows;
  }

  /**
   * Removes whole devices, their events and boot plans, in one transaction. `candidates` come
   * with their event counts, and are taken in order only while the events stay within one batch.
   */
  private removeDevices(candidates: readonly { id: string; event_count: number }[]): number {
    const ids: string[] = [];
    let events = 0;
    for (const candidate of candidates) {
      if (ids.length > 0 && events + Number(candidate.event_count) > PRUNE_BATCH) break;
      ids.push(candidate.id);
      events += Number(candidate.event_count);
    }
    if (ids.length === 0) return 0;
    const list = JSON.stringify(ids);
    return this.transaction(() => {
      let removed = this.deleting(this.statement('deleteDevicesEvents'), list);
      removed += this.deleting(this.statement('deleteDevicesBoots'), list);
      removed += this.deleting(this.statement('deleteDevices'), list);
      for (const id of ids) this.devices.delete(id);
      return removed;
    });
  }

  /** One step: the least recently seen unknown devices beyond the limit. Rows removed. */
  private pruneUnknownStep(): number {
    const unknown = Number((this.statement('countUnknown').get() as { n: number }).n);
    const excess = unknown - this.limits.maxUnknownDevices;
    if (excess <= 0) return 0;
    const candidates = this.statement('oldestUnknown').all(Math.min(excess, UNKNOWN_DEVICE_BATCH)) as unknown as { id: string; event_count: number }[];
    return this.removeDevices(candidates);
  }

  /**
   * Once enough new devices came since the last count (a hundredth of the limit), counts the
   * unknown devices and removes those beyond the limit, a step per turn of the event loop.
   * Started after a commit, never inside one: the request that brought the device is not slowed.
   */
  private maybePruneUnknown(): void {
    if (this.unknownPruning || this.newDevices < Math.max(10, Math.ceil(this.limits.maxUnknownDevices / 100))) return;
    this.newDevices = 0;
    this.unknownPruning = this.pruneUnknownDevices()
      .catch(() => 0)
      .finally(() => {
        this.unknownPruning = undefined;
      });
  }

  /** Removes unknown devices beyond the limit, in steps with a turn of the event loop between. */
  async pruneUnknownDevices(): Promise<number> {
    let removed = 0;
    for (;;) {
      // First a turn of the event loop: not in the call that recorded the events.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.db.isOpen) return removed;
      const rows = this.pruneUnknownStep();
      if (rows === 0) return removed;
      removed += rows;
    }
  }

  /** Rows in each table (tests and benchmarks). */
  counts(): { devices: number; events: number; boots: number } {
    const count = (table: string) => Number((this.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n);
    return { devices: count('devices'), events: count('events'), boots: count('boots') };
  }

  /** Waits for a background prune of unknown devices, if one is running (tests). */
  async settled(): Promise<void> {
    await this.unknownPruning;
  }

  /**
   * One bounded step of pruning (see DeviceStore.prune), the first kind that finds work:
   * unknown devices beyond the limit, expired events, devices whose events all expired (and
   * that have no next boot), expired boot plans, devices past the event cap.
   */
  prune(before: Date, keepPerDevice: number): Promise<number> {
    const cutoff = before.toISOString();
    const steps: (() => number)[] = [
      () => this.pruneUnknownStep(),
      () => this.transaction(() => this.deleting(this.statement('expiredEvents'), cutoff, PRUNE_BATCH)),
      () => this.removeDevices(this.statement('expiredDevices').all(cutoff, UNKNOWN_DEVICE_BATCH) as unknown as { id: string; event_count: number }[]),
      () => this.transaction(() => this.deleting(this.statement('expiredBoots'), cutoff, PRUNE_BATCH)),
      () => this.transaction(() => this.deleting(this.statement('expiredSiteEvents'), cutoff, PRUNE_BATCH)),
      () => {
        const over = this.statement('overCap').all(keepPerDevice) as unknown as { id: string }[];
        return this.transaction(() => {
          let removed = 0;
          for (const { id } of over) {
            const device = this.readDevice(id);
            if (device) removed += this.trimDevice(device, keepPerDevice);
          }
          // A device whose count only was stale is set right, which is work done too.
          return removed > 0 ? removed : over.length;
        });
      },
    ];
    for (const step of steps) {
      const removed = step();
      if (removed > 0) return Promise.resolve(removed);
    }
    return Promise.resolve(0);
  }

  eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    const rows = this.statement('eventsAfter').all(afterId, limit) as unknown as EventRow[];
    return Promise.resolve(rows.map(eventFromRow));
  }

  latestEventId(): Promise<number> {
    return Promise.resolve(Number((this.statement('latestEventId').get() as { id: number }).id));
  }

  outboxCursor(target: string): Promise<number> {
    const row = this.statement('outboxCursor').get(target) as { event_id: number } | undefined;
    return Promise.resolve(row ? Number(row.event_id) : 0);
  }

  advanceOutboxCursor(target: string, eventId: number): Promise<void> {
    this.statement('advanceOutbox').run(target, eventId, new Date().toISOString());
    return Promise.resolve();
  }

  recordSiteHeartbeat(site: string, heartbeat: SiteHeartbeat, at: Date): Promise<void> {
    this.transaction(() => {
      this.statement('touchSite').run(site, at.toISOString());
      this.statement('siteHeartbeat').run(JSON.stringify(heartbeat), at.toISOString(), site);
    });
    return Promise.resolve();
  }

  recordSiteEvents(site: string, events: readonly ForwardedEvent[], at: Date): Promise<{ added: number; duplicates: number }> {
    const received = at.toISOString();
    const added = this.transaction(() => {
      this.statement('touchSite').run(site, received);
      let count = 0;
      let highest = 0;
      for (const event of events) {
        const result = this.statement('insertSiteEvent').run(site, event.id, event.deviceId, event.bootId ?? null, event.at, event.type, JSON.stringify(event.detail), received);
        count += Number(result.changes);
        highest = Math.max(highest, event.id);
      }
      this.statement('countSiteEvents').run(count, highest, site);
      return count;
    });
    return Promise.resolve({ added, duplicates: events.length - added });
  }

  listSites(): Promise<SiteRecord[]> {
    const rows = this.statement('listSites').all() as unknown as SiteRow[];
    return Promise.resolve(
      rows.map((row) => ({
        name: row.name,
        firstSeen: row.first_seen,
        lastHeartbeat: row.last_heartbeat,
        heartbeat: row.heartbeat === null ? null : (JSON.parse(row.heartbeat) as SiteHeartbeat),
        eventsReceived: Number(row.events_received),
        lastEventId: Number(row.last_event_id),
      })),
    );
  }

  listSiteEvents(site: string, limit: number): Promise<StoredSiteEvent[]> {
    const rows = this.statement('listSiteEvents').all(site, limit) as unknown as SiteEventRow[];
    return Promise.resolve(
      rows.map((row) => ({
        site: row.site,
        id: Number(row.event_id),
        deviceId: row.device_id,
        ...(row.boot_id !== null ? { bootId: row.boot_id } : {}),
        at: row.at,
        type: row.type as StoredSiteEvent['type'],
        detail: JSON.parse(row.detail) as Record<string, unknown>,
        receivedAt: row.received_at,
      })),
    );
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.unknownPruning;
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (worker) {
      const stopped = new Promise((resolve) => {
        // It also reports checkpoints as it goes; only `stopped` ends the wait.
        worker.on('message', (message: { stopped?: boolean }) => message.stopped && resolve(undefined));
        worker.once('exit', resolve);
      });
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await worker.terminate();
    }
    if (this.db.isOpen) this.db.close();
  }
}
