/** Chooses the device store: PostgreSQL when a database URL is given, else SQLite in the data dir. */
import type { DeviceStore } from './store.ts';
import { PostgresDeviceStore } from './postgres-store.ts';
import { SqliteDeviceStore } from './sqlite-store.ts';

export interface StoreChoice {
  /** `postgres://...` / `postgresql://...`, or undefined for SQLite. */
  databaseUrl: string | undefined;
  sqlitePath: string;
  onError?: (error: Error) => void;
}

export async function openDeviceStore(choice: StoreChoice): Promise<DeviceStore> {
  const store = choice.databaseUrl
    ? new PostgresDeviceStore({ url: choice.databaseUrl, ...(choice.onError ? { onError: choice.onError } : {}) })
    : new SqliteDeviceStore(choice.sqlitePath);
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
