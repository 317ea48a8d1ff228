/**
 * The public side of boot state, what machines and booted systems call:
 * - `GET /b/<boot>/assets/<path>`: an asset download tied to its boot (script URLs point here);
 * - `GET /b/<boot>/beacon`: fetched by the script just before `boot`;
 * - `POST /events?mac=`: Packet-style user state from the booted OS (device by MAC, else by
 *   the source IP of its last boot);
 * - `POST /api/v1/devices/<mac>/state`: the same, device named in the path.
 * None of these needs a token, so none can do more than append the named device's own events.
 */
import type {} from '@fastify/swagger';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { normaliseMac } from '../common/identity.ts';
import { HttpError } from '../common/http-error.ts';
import type { DownloadObserver } from '../assets/download.ts';
import { sendProblem } from '../http/errors.ts';
import { isBootId, type BootState } from './boot-state.ts';
import { REPORT_STATES, type BootRecord } from './model.ts';

const ReportBody = Type.Object(
  {
    state: Type.Unsafe<(typeof REPORT_STATES)[number]>({ type: 'string', enum: [...REPORT_STATES] }),
    code: Type.Optional(Type.Integer({ minimum: 1000, maximum: 1099 })),
    message: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  // Packet's clients may send more; only these fields are kept.
  { additionalProperties: true },
);
type ReportBody = Static<typeof ReportBody>;

const REPORT_BODY_LIMIT = 16 * 1024;

export interface BootRoutesStateOptions {
  bootState: BootState;
  /** What the mirror knows is wrong with a file, for the reason of a failed download. */
  mirrorProblem?: (name: string, relativePath: string) => { upstream: string; error: string } | undefined;
}

function stateRoutes(app: FastifyInstance, options: BootRoutesStateOptions): void {
  const { bootState } = options;

  /**
   * Records a download of a boot: started (with its length when known), its progress while it
   * runs (the responder reports at most once a second), then completed, aborted (the client
   * hung up) or failed (an error status, with the reason: for the mirror, what it knows of the
   * upstream).
   */
  const observe = (plan: BootRecord, key: string, ip: string, why?: () => { upstream: string; error: string } | undefined): DownloadObserver => {
    let total: number | undefined;
    return {
      started: (length) => {
        total = length;
        void bootState.recordDownload(plan, key, 'started', 0, 200, ip, { total });
      },
      progress: ({ bytes, ms, rate }) => void bootState.recordDownload(plan, key, 'progress', bytes, 200, ip, { total, ms, rate }),
      finished: ({ status, bytes, complete, ms }) => {
        if (status >= 400) {
          const known = why?.();
          const reason = known ? `HTTP ${status}: ${known.upstream}: ${known.error}` : `HTTP ${status}`;
          void bootState.recordDownload(plan, key, 'failed', bytes, status, ip, { reason, ms });
          return;
        }
        void bootState.recordDownload(plan, key, complete ? 'completed' : 'aborted', bytes, status, ip, { total, ms });
      },
    };
  };

  app.get<{ Params: { bootId: string; '*': string } }>('/b/:bootId/assets/*', async (request, reply) => {
    const { bootId } = request.params;
    const relativePath = request.params['*'];
    // An unknown or expired boot still gets its file: tracking must never stop a boot.
    const plan = isBootId(bootId) ? await bootState.planFor(bootId) : undefined;
    if (plan) request.deviceMac = plan.deviceId;
    const key = `/assets/${relativePath}`;
    await app.serveAsset(request, reply, relativePath, plan && observe(plan, key, request.ip));
  });

  app.get<{ Params: { bootId: string; name: string; '*': string } }>('/b/:bootId/mirror/:name/*', async (request, reply) => {
    const serveMirror = app.serveMirror;
    if (!serveMirror) return sendProblem(request, reply, 404, 'the mirror is off');
    const { bootId, name } = request.params;
    const relativePath = request.params['*'];
    const plan = isBootId(bootId) ? await bootState.planFor(bootId) : undefined;
    if (plan) request.deviceMac = plan.deviceId;
    const key = `/mirror/${name}/${relativePath}`;
    await serveMirror(request, reply, name, relativePath, plan && observe(plan, key, request.ip, () => options.mirrorProblem?.(name, relativePath)));
  });

  app.get<{ Params: { bootId: string } }>('/b/:bootId/beacon', async (request, reply) => {
    const plan = isBootId(request.params.bootId) ? await bootState.planFor(request.params.bootId) : undefined;
    if (!plan) return sendProblem(request, reply, 404, 'unknown boot');
    request.deviceMac = plan.deviceId;
    await bootState.recordBeacon(plan, request.ip);
    // Header names as GRUB 2.06 needs them (it matches `Content-Length: ` case-sensitively, and
    // without it waits for the connection to close): GRUB configs fetch the beacon with `cat`.
    void reply.code(200);
    reply.hijack();
    reply.raw.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '3', 'Cache-Control': 'no-store' });
    reply.raw.end(request.method === 'HEAD' ? undefined : 'ok\n');
    return reply;
  });

  // Reports: any content type is read as JSON (busybox wget and curl -d send other types).
  app.register((scope, _opts, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: REPORT_BODY_LIMIT }, (_request, body, next) => {
      try {
        next(null, JSON.parse(String(body)) as unknown);
      } catch {
        next(new HttpError(400, 'body is not valid JSON: expected {"state":"running|succeeded|failed","code":1000-1099,"message":"..."}'), undefined);
      }
    });

    const report = async (request: FastifyRequest<{ Body: ReportBody }>, reply: FastifyReply, deviceId: string | undefined, via: 'events' | 'state-api' | 'boot', knownBoot?: BootRecord) => {
      if (!deviceId) return sendProblem(request, reply, 404, 'unknown device: pass ?mac=, or report from the address the device booted from');
      request.deviceMac = deviceId;
      const { state, code, message } = request.body;
      let boot = knownBoot;
      if (!boot) {
        try {
          boot = await bootState.bootReportedFrom(deviceId, request.ip);
        } catch (error) {
          request.log.error({ err: error, device: deviceId }, 'device store unavailable: report refused');
          return sendProblem(request, reply, 503, 'the device store is unavailable; report again later');
        }
      }
      const stored = await bootState.recordReport({ deviceId, state, ip: request.ip, via, boot, ...(code !== undefined ? { code } : {}), ...(message !== undefined ? { message } : {}) });
      if (!stored) return sendProblem(request, reply, 503, 'the device store is unavailable; report again later');
      const verified = boot !== undefined && boot.verified !== false;
      return reply.code(200).send({ device: deviceId, state, event: stored.id, verified });
    };

    // The boot's own URL: its id is the credential, so the report is verified wherever it comes from.
    scope.post<{ Body: ReportBody; Params: { bootId: string } }>('/b/:bootId/report', { schema: { body: ReportBody } }, async (request, reply) => {
      const plan = isBootId(request.params.bootId) ? await bootState.planFor(request.params.bootId) : undefined;
      if (!plan) return sendProblem(request, reply, 404, 'unknown boot');
      return report(request, reply, plan.deviceId, 'boot', plan);
    });

    scope.post<{ Body: ReportBody; Querystring: { mac?: string } }>(
      '/events',
      { schema: { body: ReportBody, querystring: Type.Object({ mac: Type.Optional(Type.String()) }) } },
      async (request, reply) => {
        const raw = request.query.mac;
        const mac = raw === undefined || raw === '' ? undefined : normaliseMac(raw);
        if (raw && !mac) return sendProblem(request, reply, 400, `invalid mac ${JSON.stringify(raw.slice(0, 40))}`);
        return report(request, reply, await bootState.deviceForReport(mac, request.ip), 'events');
      },
    );

    scope.post<{ Body: ReportBody; Params: { id: string } }>(
      '/api/v1/devices/:id/state',
      { schema: { tags: ['reports'], summary: 'Report state from the booted OS (no token: appends to this device only)', security: [], body: ReportBody } }, async (request, reply) => {
      const mac = normaliseMac(request.params.id);
      if (!mac) return sendProblem(request, reply, 400, `invalid device id ${JSON.stringify(request.params.id.slice(0, 40))}: expected a MAC address`);
      return report(request, reply, await bootState.deviceForReport(mac, request.ip), 'state-api');
    });
    done();
  });
}

export default fp(stateRoutes, { name: 'bootdepot-state-routes', dependencies: ['bootdepot-asset-routes'] });
