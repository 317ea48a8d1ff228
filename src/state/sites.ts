/**
 * What the stores keep about sites (docs/sites.md). On a site: its boot events read in id order
 * for forwarding, and the outbox cursor (how far forwarding got), kept in the site's own store so
 * nothing is lost or sent twice across an outage or a restart. On the origin: each site's last
 * heartbeat and the events it forwarded, tagged with the site, kept once per site and event id.
 */
import type { EventType, StoredEvent } from './model.ts';

/** What a site says about itself every heartbeat. Written by the site, shown by the origin. */
export interface SiteHeartbeat {
  /** bootdepot's version on the site. */
  version: string;
  uptimeSeconds: number;
  /** Seconds between heartbeats: the origin calls the site stale after three missed. */
  intervalSeconds: number;
  /** The site's cache (its mirror of the origin's /assets and of release servers). */
  cache: { bytesUsed: number; maxBytes: number; fills: number; failedFills: number; staleServed: number };
  /** The site's own device store: `healthy` false with `reason` while it is not open. */
  store: { kind: string; healthy: boolean; reason?: string };
  /** The copy of the origin's data directory in service. */
  data: { etag: string | null; appliedAt: string | null; lastSyncAt: string | null; lastSyncError: string | null };
  /** Boot events: the site's newest event id, and the newest the origin has acknowledged. */
  events: { latestId: number; forwardedThrough: number; /** False when the site forwards none (`site.forwardEvents`). */ forwarding?: boolean };
}

/** A boot event as a site forwards it: the site's own event id, kept by the origin once. */
export interface ForwardedEvent {
  id: number;
  deviceId: string;
  bootId?: string;
  /** ISO 8601. */
  at: string;
  type: EventType;
  detail: Record<string, unknown>;
}

/** A forwarded event as the origin keeps it. */
export interface StoredSiteEvent extends ForwardedEvent {
  site: string;
  receivedAt: string;
}

/** A site as the origin's store knows it. */
export interface SiteRecord {
  name: string;
  firstSeen: string;
  /** Null until its first heartbeat (events may come first). */
  lastHeartbeat: string | null;
  heartbeat: SiteHeartbeat | null;
  /** Events the origin kept from this site (duplicates not counted). */
  eventsReceived: number;
  /** The highest event id the origin has from this site. */
  lastEventId: number;
}

/** What the stores share for sites; both device stores implement it. */
export interface SiteRecords {
  /** Events with an id above `afterId`, oldest first, at most `limit` (the forwarder's read). */
  eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]>;
  /** The newest event id; 0 with none. */
  latestEventId(): Promise<number>;
  /** How far forwarding to `target` got: the last event id the origin acknowledged (0: none). */
  outboxCursor(target: string): Promise<number>;
  /** Moves the cursor forward (never back: an older value is ignored). */
  advanceOutboxCursor(target: string, eventId: number): Promise<void>;
  recordSiteHeartbeat(site: string, heartbeat: SiteHeartbeat, at: Date): Promise<void>;
  /** Keeps each event once per site and id; says how many were new and how many already kept. */
  recordSiteEvents(site: string, events: readonly ForwardedEvent[], at: Date): Promise<{ added: number; duplicates: number }>;
  listSites(): Promise<SiteRecord[]>;
  /** Newest first. */
  listSiteEvents(site: string, limit: number): Promise<StoredSiteEvent[]>;
}

/** The third schema version of both stores, with each dialect's column types. */
export function siteSchema(types: { bigint: string; time: string; json: string }): string {
  return `CREATE TABLE outbox_cursors (
     target TEXT PRIMARY KEY,
     event_id ${types.bigint} NOT NULL,
     updated_at ${types.time} NOT NULL
   );
   CREATE TABLE sites (
     name TEXT PRIMARY KEY,
     first_seen ${types.time} NOT NULL,
     last_heartbeat ${types.time},
     heartbeat ${types.json},
     events_received ${types.bigint} NOT NULL DEFAULT 0,
     last_event_id ${types.bigint} NOT NULL DEFAULT 0
   );
   CREATE TABLE site_events (
     site TEXT NOT NULL,
     event_id ${types.bigint} NOT NULL,
     device_id TEXT NOT NULL,
     boot_id TEXT,
     at ${types.time} NOT NULL,
     type TEXT NOT NULL,
     detail ${types.json} NOT NULL,
     received_at ${types.time} NOT NULL,
     PRIMARY KEY (site, event_id)
   );
   CREATE INDEX site_events_at ON site_events (at);`;
}
