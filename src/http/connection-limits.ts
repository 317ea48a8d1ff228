/**
 * Bounds on connections, so that clients that open many, or hold them without sending, cannot
 * take the server offline or hold up a shutdown:
 * - the timeouts node enforces (headers, idle, keep-alive) are set where Fastify is built
 *   (`serverTimeouts`); the body deadline is ours, because node's requestTimeout would also cut a
 *   long streamed upload;
 * - at most `maxConnections` open (node closes the ones beyond at once), and beyond
 *   `maxConnections - reservedConnections` only probes and token-carrying admin requests are
 *   answered; the rest get 503 with Retry-After and the connection is closed;
 * - a shutdown waits `shutdownDrain` seconds for requests in flight, then closes every connection.
 */
import type { ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './errors.ts';
import { classify } from './request-classes.ts';

export interface ConnectionLimitSettings {
  headersTimeout: number;
  bodyTimeout: number;
  idleTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  reservedConnections: number;
  shutdownDrain: number;
}

/** Fastify's server options for the timeouts (seconds in, milliseconds out). */
export function serverTimeouts(settings: ConnectionLimitSettings): Pick<FastifyServerOptions, 'connectionTimeout' | 'keepAliveTimeout' | 'requestTimeout'> & { http: ServerOptions } {
  const headersMs = settings.headersTimeout * 1000;
  return {
    // Inactivity, not duration: a download that keeps moving is never cut.
    connectionTimeout: settings.idleTimeout * 1000,
    keepAliveTimeout: settings.keepAliveTimeout * 1000,
    // Off: it would bound a streamed upload's whole body. Bodies read whole have bodyTimeout.
    requestTimeout: 0,
    // node checks header deadlines every connectionsCheckingInterval (30 s by default, which
    // would let a slow client keep its connection up to 30 s longer).
    http: { headersTimeout: headersMs, connectionsCheckingInterval: Math.min(5000, Math.max(250, Math.floor(headersMs / 4))) },
  };
}

/** Retry-After for a 503 beyond the soft limit: soon, since connections come and go. */
const BUSY_RETRY_SECONDS = 5;
/** At most one warning per reason in this time, so that a flood cannot fill the log. */
const WARN_EVERY_MS = 10_000;

const bodyTimers = new WeakMap<object, NodeJS.Timeout>();

function connectionLimits(app: FastifyInstance, options: { settings: ConnectionLimitSettings; adminToken: string | undefined }): void {
  const { settings } = options;
  const softLimit = settings.maxConnections - settings.reservedConnections;
  let open = 0;
  const lastWarned = new Map<string, number>();
  const warn = (reason: string, fields: Record<string, unknown>, message: string) => {
    app.metrics.limited.inc({ reason });
    const now = Date.now();
    if ((lastWarned.get(reason) ?? 0) + WARN_EVERY_MS > now) return;
    lastWarned.set(reason, now);
    app.log.warn({ ...fields, open }, message);
  };

  app.server.maxConnections = settings.maxConnections;
  app.server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => open--);
  });
  app.server.on('drop', (data?: { remoteAddress?: string }) => {
    warn('max-connections', { client: data?.remoteAddress, maxConnections: settings.maxConnections }, 'connection refused: server.maxConnections reached (further refusals in the next 10 s are not logged)');
  });
  app.metrics.openConnections = () => open;

  app.addHook('onRequest', (request, reply, done) => {
    if (open > softLimit) {
      const kind = classify(request, options.adminToken);
      if (kind !== 'probe' && kind !== 'admin') {
        warn('reserved-connections', { client: request.ip, softLimit }, 'request refused with 503: connections beyond maxConnections - reservedConnections are kept for probes and the admin API');
        reply.header('retry-after', String(BUSY_RETRY_SECONDS)).header('connection', 'close');
        sendProblem(request, reply, 503, `bootdepot is at its connection limit; retry in ${BUSY_RETRY_SECONDS} s`);
        done();
        return;
      }
    }
    const raw = request.raw;
    // A body is coming when there is a length or a chunked encoding; it must arrive in time.
    const length = raw.headers['content-length'];
    if ((length !== undefined && length !== '0') || raw.headers['transfer-encoding'] !== undefined) {
      const timer = setTimeout(() => {
        warn('body-timeout', { client: request.ip, url: request.url, bodyTimeout: settings.bodyTimeout }, 'request body not received within server.bodyTimeout: connection closed');
        raw.socket.destroy();
      }, settings.bodyTimeout * 1000);
      timer.unref();
      bodyTimers.set(raw, timer);
      reply.raw.once('close', () => clearTimeout(timer));
    }
    done();
  });
  // The body has been read whole (or is the handler's to stream, as uploads are).
  app.addHook('preValidation', (request, _reply, done) => {
    clearTimeout(bodyTimers.get(request.raw));
    done();
  });

  app.addHook('preClose', (done) => {
    // Requests in flight get the drain to finish; then every connection is closed, so a
    // client that never finishes its request cannot hold the shutdown.
    const timer = setTimeout(() => {
      if (open > 0) app.log.warn({ open, shutdownDrain: settings.shutdownDrain }, 'shutdown drain over: closing the remaining connections');
      app.server.closeAllConnections();
    }, settings.shutdownDrain * 1000);
    timer.unref();
    app.server.once('close', () => clearTimeout(timer));
    done();
  });
}

export default fp(connectionLimits, { name: 'bootdepot-connection-limits', dependencies: ['bootdepot-metrics', 'bootdepot-errors'] });
