/**
 * The first schema version, shared by both stores: the same tables and indexes, with each SQL
 * dialect's column types. Later migrations differ more than by types and stay in each store.
 */
export interface ColumnTypes {
  /** Auto-incrementing event id, e.g. `INTEGER PRIMARY KEY AUTOINCREMENT` or `BIGSERIAL PRIMARY KEY`. */
  eventId: string;
  /** Timestamps: `TEXT` (ISO 8601) or `TIMESTAMPTZ`. */
  time: string;
  /** JSON documents: `TEXT` or `JSONB`. */
  json: string;
}

export function initialSchema(types: ColumnTypes): string {
  return `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     data ${types.json} NOT NULL,
     stage TEXT,
     last_profile TEXT,
     last_seen ${types.time} NOT NULL,
     last_ip TEXT
   );
   CREATE INDEX devices_last_ip ON devices (last_ip, last_seen);
   CREATE TABLE events (
     id ${types.eventId},
     device_id TEXT NOT NULL,
     boot_id TEXT,
     at ${types.time} NOT NULL,
     type TEXT NOT NULL,
     detail ${types.json} NOT NULL
   );
   CREATE INDEX events_device ON events (device_id, id);
   CREATE INDEX events_at ON events (at);
   CREATE TABLE boots (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL,
     created_at ${types.time} NOT NULL,
     data ${types.json} NOT NULL
   );
   CREATE INDEX boots_created ON boots (created_at);`;
}
