/**
 * The admin API for devices, under /api/v1 with the bearer token:
 *   GET    /devices                   list, with filters
 *   GET    /devices/<id>              one device with its recent events
 *   PUT    /devices/<id>/next-boot    set what it boots next
 *   DELETE /devices/<id>/next-boot    back to normal
 *   DELETE /devices/<id>              forget it
 *   GET    /events/stream             Server-Sent Events, live, from every replica
 */
import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import type { Catalogue } from '../boot/catalogue.ts';
import { normaliseMac } from '../common/identity.ts';
import { HttpError } from '../common/http-error.ts';
import type { StoredEvent } from '../state/model.ts';
import type { DeviceStore } from '../state/store.ts';
import { requireAdminToken } from '../http/auth.ts';
import { eventStreams } from '../http/event-stream.ts';
import { clearNextBoot, setNextBoot } from './next-boot.ts';
import { DeviceIdParams, DeviceListQuery, DeviceSchema, DeviceShowQuery, ErrorSchema, EventSchema, NextBootBody } from './schemas.ts';

export interface DeviceApiOptions {
  store: DeviceStore;
  catalogue: () => Catalogue;
  adminToken: string | undefined;
  /** Seconds between SSE keep-alive comments (proxies drop idle streams). */
  heartbeatSeconds?: number;
}

function deviceId(request: FastifyRequest<{ Params: { id: string } }>): string {
  const id = normaliseMac(request.params.id);
  if (!id) throw new HttpError(400, `invalid device id ${JSON.stringify(request.params.id.slice(0, 40))}: expected a MAC address`);
  return id;
}

export function eventJson(event: StoredEvent) {
  return { id: event.id, deviceId: event.deviceId, ...(event.bootId ? { bootId: event.bootId } : {}), at: event.at.toISOString(), detail: event.detail };
}

/**
 * Fastify's validation messages, except that a value outside a list says which values the list
 * has (`?stage=` names every stage) instead of "must be equal to one of the allowed values".
 */
function listAllowedValues(errors: FastifySchemaValidationError[], dataVar: string): Error {
  return new Error(
    errors
      .map((error) => {
        const allowed = error.keyword === 'enum' ? error.params.allowedValues : undefined;
        const what = `${dataVar}${error.instancePath}`;
        return Array.isArray(allowed) ? `${what} must be one of ${allowed.map(String).join(', ')}` : `${what} ${error.message ?? 'is invalid'}`;
      })
      .join(', '),
  );
}

const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema };

export default function deviceApi(app: FastifyInstance, options: DeviceApiOptions): void {
  const { store } = options;
  app.addHook('onRequest', requireAdminToken(options.adminToken));
  const openStream = eventStreams(app);

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  app.get<{ Querystring: typeof DeviceListQuery.static }>(
    '/devices',
    {
      schema: { tags: ['devices'], summary: 'List devices', querystring: DeviceListQuery, response: { 200: Type.Object({ devices: Type.Array(DeviceSchema) }), ...errors } },
      schemaErrorFormatter: listAllowedValues,
    },
    async (request) => {
      const { stage, profile, seenSince, limit } = request.query;
      const devices = await store.listDevices({ ...(stage ? { stage } : {}), ...(profile ? { profile } : {}), ...(seenSince ? { seenSince: new Date(seenSince) } : {}), ...(limit ? { limit } : {}) });
      return { devices };
    },
  );

  app.get<{ Params: { id: string }; Querystring: typeof DeviceShowQuery.static }>(
    '/devices/:id',
    { schema: { tags: ['devices'], summary: 'A device and its recent events, newest first', params: DeviceIdParams, querystring: DeviceShowQuery, response: { 200: Type.Object({ device: DeviceSchema, events: Type.Array(EventSchema) }), ...errors } } },
    async (request) => {
      const id = deviceId(request);
      const device = await store.getDevice(id);
      if (!device) throw new HttpError(404, `unknown device ${id}`);
      const events = await store.listEvents(id, request.query.events ?? 50);
      return { device, events: events.map(eventJson) };
    },
  );

  app.put<{ Params: { id: string }; Body: typeof NextBootBody.static }>(
    '/devices/:id/next-boot',
    { schema: { tags: ['devices'], summary: 'Set what the device boots next', params: DeviceIdParams, body: NextBootBody, response: { 200: Type.Object({ device: DeviceSchema }), ...errors } } },
    async (request) => {
      const id = deviceId(request);
      const { device, nextBoot } = await setNextBoot(store, options.catalogue(), id, request.body, 'set through the API');
      request.log.info({ device: id, nextBoot }, 'next boot set');
      return { device };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/devices/:id/next-boot',
    { schema: { tags: ['devices'], summary: 'Clear the next boot (normal matching)', params: DeviceIdParams, response: { 200: Type.Object({ device: DeviceSchema }), ...errors } } },
    async (request) => {
      const id = deviceId(request);
      return { device: await clearNextBoot(store, id) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/devices/:id',
    { schema: { tags: ['devices'], summary: 'Forget a device and its history', params: DeviceIdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const id = deviceId(request);
      if (!(await store.deleteDevice(id))) throw new HttpError(404, `unknown device ${id}`);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { device?: string } }>(
    '/events/stream',
    {
      schema: {
        tags: ['events'],
        summary: 'Live boot events (Server-Sent Events): one `event: <type>` with JSON data per event',
        querystring: Type.Object({ device: Type.Optional(Type.String({ description: 'only this device (MAC)' })) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors },
      },
    },
    (request, reply) => {
      const only = request.query.device ? normaliseMac(request.query.device) : undefined;
      if (request.query.device && !only) throw new HttpError(400, 'invalid device filter: expected a MAC address');
      openStream(reply, {
        greeting: 'bootdepot event stream',
        heartbeatSeconds: options.heartbeatSeconds ?? 15,
        subscribe: (write) =>
          store.subscribe((event) => {
            if (only && event.deviceId !== only) return;
            write(`id: ${event.id}\nevent: ${event.detail.type}\ndata: ${JSON.stringify(eventJson(event))}\n\n`);
          }),
      });
    },
  );
}
