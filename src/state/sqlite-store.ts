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
import { pathToFileURL } from 'node:url';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { LRUCache } from 'lru-cache';
import { applyEvent, type BootPlanRecord, type Device, type NewEvent, type NextBoot, type StoredEvent } from './model.ts';
import type { DeviceFilter, DeviceStore, EventListener } from './store.ts';

/** Schema versions, applied in order, each once. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     data TEXT NOT NULL,
     stage TEXT,
     last_profile TEXT,
     last_seen TEXT NOT NULL,
     last_ip TEXT
   );
   CREATE INDEX devices_last_ip ON devices (last_ip, last_seen);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     device_id TEXT NOT NULL,
     boot_id TEXT,
     at TEXT NOT NULL,
     type TEXT NOT NULL,
     detail TEXT NOT NULL
   );
   CREATE INDEX events_device ON events (device_id, id);
   CREATE INDEX events_at ON events (at);
   CREATE TABLE boots (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL,
     created_at TEXT NOT NULL,
     data TEXT NOT NULL
   );
   CREATE INDEX boots_created ON boots (created_at);`,
];

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

  /**
   * `readOnly` (for `bootdepot render`) opens an existing file without writing anything: no
   * directory, no migration, and no `-wal`/`-shm` files. SQLite creates those for any reader of
   * a WAL database, and leaves them, unless the database is opened as immutable; that is safe
   * only while no writer is using it, which a missing `-wal` file shows. With a writer, the
   * files exist already and a plain read-only open adds nothing.
   */
  constructor(file: string, options: { readOnly?: boolean } = {}) {
    this.file = file;
    this.readOnly = options.readOnly ?? false;
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
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
    } catch (error) {
      // Not left open for the next attempt to collide with.
      this.db.close();
      throw error;
    }
  }

  /** Moves WAL checkpoints off this thread (see sqlite-checkpointer.ts); once, on first write. */
  private startCheckpointer(): void {
    if (this.file === ':memory:' || this.checkpointer) return;
    this.db.exec('PRAGMA wal_autocheckpoint = 0;');
    this.checkpointer = new Worker(new URL('./sqlite-checkpointer.ts', import.meta.url), { workerData: { file: this.file, intervalMs: 1000 } });
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
        `INSERT INTO devices (id, data, stage, last_profile, last_seen, last_ip) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, stage = excluded.stage, last_profile = excluded.last_profile,
           last_seen = excluded.last_seen, last_ip = excluded.last_ip`,
      ),
      insertEvent: this.db.prepare('INSERT INTO events (device_id, boot_id, at, type, detail) VALUES (?, ?, ?, ?, ?) RETURNING id'),
      listEvents: this.db.prepare('SELECT id, device_id, boot_id, at, detail FROM events WHERE device_id = ? ORDER BY id DESC LIMIT ?'),
      byIp: this.db.prepare('SELECT id FROM devices WHERE last_ip = ? ORDER BY last_seen DESC LIMIT 1'),
      saveBoot: this.db.prepare('INSERT OR REPLACE INTO boots (id, device_id, created_at, data) VALUES (?, ?, ?, ?)'),
      getBoot: this.db.prepare('SELECT data FROM boots WHERE id = ?'),
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

  private writeDevice(device: Device): void {
    this.statement('upsertDevice').run(device.id, JSON.stringify(device), device.stage, device.lastProfile, device.lastSeen, device.lastIp);
  }

  private appendEvents(events: readonly NewEvent[]): StoredEvent[] {
    const stored: StoredEvent[] = [];
    const devices = new Map<string, Device | undefined>();
    for (const event of events) {
      const previous = devices.has(event.deviceId) ? devices.get(event.deviceId) : this.readDevice(event.deviceId);
      devices.set(event.deviceId, applyEvent(previous, event));
      const row = this.statement('insertEvent').get(event.deviceId, event.bootId ?? null, event.at.toISOString(), event.detail.type, JSON.stringify(event.detail)) as { id: number };
      if (event.plan) this.statement('saveBoot').run(event.plan.id, event.plan.deviceId, event.plan.createdAt, JSON.stringify(event.plan));
      stored.push({ deviceId: event.deviceId, ...(event.bootId ? { bootId: event.bootId } : {}), at: event.at, detail: event.detail, id: Number(row.id) });
    }
    for (const device of devices.values()) if (device) this.writeDevice(device);
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
    return Promise.resolve(stored);
  }

  saveBootPlan(plan: BootPlanRecord): Promise<void> {
    this.statement('saveBoot').run(plan.id, plan.deviceId, plan.createdAt, JSON.stringify(plan));
    return Promise.resolve();
  }

  getBootPlan(id: string): Promise<BootPlanRecord | undefined> {
    const row = this.statement('getBoot').get(id) as { data: string } | undefined;
    return Promise.resolve(row ? (JSON.parse(row.data) as BootPlanRecord) : undefined);
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

  prune(before: Date, keepPerDevice: number): Promise<number> {
    return Promise.resolve(
      this.transaction(() => {
        const old = Number(this.db.prepare('DELETE FROM events WHERE at < ?').run(before.toISOString()).changes);
        const excess = Number(
          this.db
            .prepare(
              `DELETE FROM events WHERE id IN (
                 SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY id DESC) AS n FROM events) WHERE n > ?)`,
            )
            .run(keepPerDevice).changes,
        );
        this.db.prepare('DELETE FROM boots WHERE created_at < ?').run(before.toISOString());
        return old + excess;
      }),
    );
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (worker) {
      const stopped = new Promise((resolve) => {
        worker.once('message', resolve);
        worker.once('exit', resolve);
      });
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await worker.terminate();
    }
    if (this.db.isOpen) this.db.close();
  }
}
