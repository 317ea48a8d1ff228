/** Chooses the device store: PostgreSQL when a database URL is given, else SQLite in the data dir. */
import type { DeviceStore } from './store.ts';

export interface StoreChoice {
  /** `postgres://...` / `postgresql://...`, or undefined for SQLite. */
  databaseUrl: string | undefined;
  sqlitePath: string;
  onError?: (error: Error) => void;
}

export async function openDeviceStore(choice: StoreChoice): Promise<DeviceStore> {
  // Loaded on demand: the PostgreSQL driver is memory a single-node install does not need.
  const store: DeviceStore = choice.databaseUrl
    ? new (await import('./postgres-store.ts')).PostgresDeviceStore({ url: choice.databaseUrl, ...(choice.onError ? { onError: choice.onError } : {}) })
    : new (await import('./sqlite-store.ts')).SqliteDeviceStore(choice.sqlitePath);
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
