/**
 * The origin's side of site mode (docs/sites.md), under /api/v1:
 *   GET  /sites                   every site: last heartbeat, healthy/stale/degraded, cache use, events (admin token)
 *   GET  /sites/<name>/events     the events a site forwarded, newest first (admin token)
 *   GET  /sites/<name>/data       the data directory as one document, strong ETag, If-None-Match (site or admin token)
 *   POST /sites/<name>/heartbeat  a site's heartbeat (site or admin token)
 *   POST /sites/<name>/events     a batch of a site's boot events, kept once per site and id (site or admin token)
 * Every body is bounded, every site's requests are counted per minute, and all of it answers
 * 403 while the origin has no admin token.
 */
import type {} from '@fastify/swagger';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StringEnum } from '../common/documents.ts';
import { HttpError } from '../common/http-error.ts';
import { requireAdminToken } from '../http/auth.ts';
import type { SiteRecord } from '../state/sites.ts';
import type { DeviceStore } from '../state/store.ts';
import { DataDocumentError, DEFAULT_DATA_LIMITS, exportDataDirectory, type DataLimits, type ExportedData } from './data-document.ts';
import { MAX_BATCH } from './reporter.ts';
import { requireSiteToken, SITE_NAME } from './tokens.ts';

export interface OriginRoutesOptions {
  /** The origin's data directory (exported as it is on disk: a site checks it before applying it). */
  dataDir: () => string;
  /** Without one, heartbeats and events answer 503 (the data export still works). */
  store?: DeviceStore | undefined;
  adminToken: string | undefined;
  limits?: DataLimits;
  /** Requests per site and minute, per endpoint. */
  perMinute?: { data: number; heartbeat: number; events: number };
  now?: () => Date;
}

const EVENT_TYPES = ['script', 'download', 'beacon', 'config', 'report', 'next-boot'] as const;
const Printable = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '^[\\x21-\\x7e]+$' });
const Text = (maxLength: number) => Type.String({ maxLength });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
// Null first: with type coercion on, a string alternative would turn null into "".
const Time = Type.Union([Type.Null(), Type.String({ format: 'date-time' })]);

export const HeartbeatBody = Type.Object(
  {
    version: Text(64),
    uptimeSeconds: Count,
    intervalSeconds: Type.Integer({ minimum: 1, maximum: 86400 }),
    cache: Type.Object({ bytesUsed: Count, maxBytes: Count, fills: Count, failedFills: Count, staleServed: Count }, { additionalProperties: false }),
    store: Type.Object({ kind: Text(32), healthy: Type.Boolean(), reason: Type.Optional(Text(1000)) }, { additionalProperties: false }),
    data: Type.Object({ etag: Type.Union([Type.Null(), Text(256)]), appliedAt: Time, lastSyncAt: Time, lastSyncError: Type.Union([Type.Null(), Text(2000)]) }, { additionalProperties: false }),
    events: Type.Object({ latestId: Count, forwardedThrough: Count, forwarding: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

export const EventsBody = Type.Object(
  {
    events: Type.Array(
      Type.Object(
        {
          id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
          deviceId: Printable(128),
          bootId: Type.Optional(Printable(128)),
          at: Type.String({ format: 'date-time' }),
          type: StringEnum(EVENT_TYPES),
          detail: Type.Object({ type: StringEnum(EVENT_TYPES) }, { additionalProperties: true, maxProperties: 32 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_BATCH },
    ),
  },
  { additionalProperties: false },
);

const NameParams = Type.Object({ name: Type.String({ pattern: SITE_NAME.source }) });
const ListEventsQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) });

/** A site is stale when three heartbeats in a row did not come (with 10 s of slack). */
export function siteHealth(site: SiteRecord, now: Date): { health: 'healthy' | 'degraded' | 'stale' | 'unknown'; reasons: string[] } {
  const beat = site.heartbeat;
  if (!beat || !site.lastHeartbeat) return { health: 'unknown', reasons: ['no heartbeat yet'] };
  const age = (now.getTime() - Date.parse(site.lastHeartbeat)) / 1000;
  if (age > beat.intervalSeconds * 3 + 10) return { health: 'stale', reasons: [`no heartbeat for ${Math.round(age)} s (one expected every ${beat.intervalSeconds} s)`] };
  const reasons: string[] = [];
  if (!beat.store.healthy) reasons.push(`store: ${beat.store.reason ?? 'not open'}`);
  if (beat.data.lastSyncError) reasons.push(`data: ${beat.data.lastSyncError}`);
  if (!beat.data.etag) reasons.push('data: no copy yet');
  return { health: reasons.length > 0 ? 'degraded' : 'healthy', reasons };
}

/** Counts requests per key in fixed one-minute windows; the keys are authenticated site names. */
class SiteRequestLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  /** Milliseconds to wait when over `max`, else 0. */
  take(key: string, max: number, now: number): number {
    let window = this.windows.get(key);
    if (!window || now - window.start >= 60_000) {
      if (this.windows.size > 10_000) this.windows.clear();
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    return window.count > max ? window.start + 60_000 - now : 0;
  }
}

const errors = { 401: Type.Object({ error: Type.String(), statusCode: Type.Integer() }), 403: Type.Object({ error: Type.String(), statusCode: Type.Integer() }) };

export default function originRoutes(app: FastifyInstance, options: OriginRoutesOptions): void {
  const limits = options.limits ?? DEFAULT_DATA_LIMITS;
  const perMinute = options.perMinute ?? { data: 30, heartbeat: 30, events: 600 };
  const now = options.now ?? (() => new Date());
  const limiter = new SiteRequestLimiter();
  const siteGuard = requireSiteToken(options.adminToken);
  const adminGuard = requireAdminToken(options.adminToken);
  let building: Promise<ExportedData> | undefined;
  let lastExport: string | undefined;

  function limited(kind: keyof typeof perMinute) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const site = (request.params as { name: string }).name;
      const wait = limiter.take(`${kind} ${site}`, perMinute[kind], Date.now());
      if (wait > 0) {
        const seconds = Math.max(1, Math.ceil(wait / 1000));
        reply.header('retry-after', String(seconds));
        await reply.code(429).send({ error: `site ${site}: more than ${perMinute[kind]} ${kind} requests this minute; retry in ${seconds} s`, statusCode: 429 });
      }
    };
  }

  function requireStore(): DeviceStore {
    if (!options.store) throw new HttpError(503, 'the origin keeps no device store (state.enabled is false): heartbeats and events cannot be kept');
    return options.store;
  }

  /** One export at a time; sites that ask meanwhile share it. */
  function exportData(): Promise<ExportedData> {
    building ??= exportDataDirectory(options.dataDir(), limits).finally(() => {
      building = undefined;
    });
    return building;
  }

  app.get('/sites', { onRequest: adminGuard, schema: { tags: ['sites'], summary: 'List sites with their last heartbeat, health, cache use and events', response: errors } }, async () => {
    const at = now();
    const sites = await requireStore().listSites();
    return {
      sites: sites.map((site) => {
        const beat = site.heartbeat;
        const { health, reasons } = siteHealth(site, at);
        const latest = beat?.events.latestId ?? site.lastEventId;
        return {
          name: site.name,
          health,
          reasons,
          firstSeen: site.firstSeen,
          lastHeartbeat: site.lastHeartbeat,
          version: beat?.version ?? null,
          uptimeSeconds: beat?.uptimeSeconds ?? null,
          cache: beat?.cache ?? null,
          store: beat?.store ?? null,
          data: beat ? { ...beat.data, current: lastExport === undefined ? null : beat.data.etag === lastExport } : null,
          // A site that forwards nothing is behind by nothing: it keeps its events to itself.
          events: { forwarding: beat?.events.forwarding ?? true, received: site.eventsReceived, lastId: site.lastEventId, latestAtSite: latest, behind: beat?.events.forwarding === false ? 0 : Math.max(0, latest - site.lastEventId) },
        };
      }),
    };
  });

  app.get<{ Params: Static<typeof NameParams>; Querystring: Static<typeof ListEventsQuery> }>(
    '/sites/:name/events',
    { onRequest: adminGuard, schema: { tags: ['sites'], summary: "A site's forwarded boot events, newest first", params: NameParams, querystring: ListEventsQuery, response: errors } },
    async (request) => ({ events: await requireStore().listSiteEvents(request.params.name, request.query.limit ?? 100) }),
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/sites/:name/data',
    { onRequest: [siteGuard, limited('data')], schema: { tags: ['sites'], summary: 'The data directory as one JSON document (strong ETag; If-None-Match answers 304)', params: NameParams, response: errors } },
    async (request, reply) => {
      let exported: ExportedData;
      try {
        exported = await exportData();
      } catch (error) {
        if (error instanceof DataDocumentError) throw new HttpError(503, `cannot export the data directory: ${error.message}`);
        throw error;
      }
      lastExport = exported.etag;
      reply.header('etag', exported.etag).header('cache-control', 'no-cache');
      const given = request.headers['if-none-match'];
      if (typeof given === 'string' && (given.trim() === '*' || given.split(',').some((tag) => tag.trim() === exported.etag))) return reply.code(304).send();
      return reply.type('application/json').send(exported.body);
    },
  );

  app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof HeartbeatBody> }>(
    '/sites/:name/heartbeat',
    { onRequest: [siteGuard, limited('heartbeat')], bodyLimit: 16 * 1024, schema: { tags: ['sites'], summary: "A site's heartbeat", params: NameParams, body: HeartbeatBody, response: errors } },
    async (request, reply) => {
      await requireStore().recordSiteHeartbeat(request.params.name, request.body, now());
      return reply.code(204).send();
    },
  );

  app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof EventsBody> }>(
    '/sites/:name/events',
    { onRequest: [siteGuard, limited('events')], bodyLimit: 1024 * 1024, schema: { tags: ['sites'], summary: "A batch of a site's boot events (kept once per site and event id)", params: NameParams, body: EventsBody, response: errors } },
    async (request) => {
      const { events } = request.body;
      const result = await requireStore().recordSiteEvents(request.params.name, events, now());
      return { ...result, through: events.reduce((max, event) => Math.max(max, event.id), 0) };
    },
  );
}
