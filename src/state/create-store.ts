/** Chooses the device store: PostgreSQL when a database URL is given, else SQLite in the data dir. */
import type { DeviceStore, StoreLimits } from './store.ts';

export interface StoreChoice {
  /** `postgres://...` / `postgresql://...`, or undefined for SQLite. */
  databaseUrl: string | undefined;
  sqlitePath: string;
  onError?: (error: Error) => void;
  /**
   * Read without writing anything (for `bootdepot render`): the SQLite file must exist and is
   * neither created nor migrated; PostgreSQL transactions are read-only.
   */
  readOnly?: boolean;
  /** What keeps the store bounded (`state.*` in the config); defaults in store.ts. */
  limits?: Partial<StoreLimits>;
}

export async function openDeviceStore(choice: StoreChoice): Promise<DeviceStore> {
  const readOnly = choice.readOnly ?? false;
  // Loaded on demand: the PostgreSQL driver is memory a single-node install does not need.
  const store: DeviceStore = choice.databaseUrl
    ? new (await import('./postgres-store.ts')).PostgresDeviceStore({ url: choice.databaseUrl, readOnly, ...(choice.onError ? { onError: choice.onError } : {}), ...(choice.limits ? { limits: choice.limits } : {}) })
    : new (await import('./sqlite-store.ts')).SqliteDeviceStore(choice.sqlitePath, { readOnly, ...(choice.limits ? { limits: choice.limits } : {}) });
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/** Where the store is, for log lines (never the database URL: it may carry a password). */
export function describeStoreLocation(choice: StoreChoice): string {
  return choice.databaseUrl ? 'PostgreSQL (--database-url / BOOTDEPOT_DATABASE_URL)' : choice.sqlitePath;
}

/** What an operator can do when the store does not open. */
export function storeRemedy(choice: StoreChoice): string {
  return choice.databaseUrl
    ? 'Check that PostgreSQL is running and reachable with the configured URL and credentials.'
    : `If the file is damaged, move ${choice.sqlitePath} (and its -wal and -shm files) aside: the next retry creates a new, empty one (recorded history and next-boot settings start over).`;
}
