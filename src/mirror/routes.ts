/**
 * `GET`/`HEAD /mirror/NAME/<path>`: the pull-through mirror over HTTP, one summary log line per
 * download as for /assets. Thin: serve.ts answers, mirror.ts decides where bytes come from.
 *
 * Register with an open mirror (`{ mirror }`, the server's, shared with the admin API) or with
 * `{ settings }`, in which case the plugin opens the mirror and closes it with the app.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DownloadObserver } from '../assets/routes.ts';
import fp from 'fastify-plugin';
import { DownloadLog } from '../assets/download-log.ts';
import { BufferPool, ClientGoneError } from '../assets/file-stream.ts';
import type { MirrorSettings } from './config.ts';
import { PullThroughMirror } from './mirror.ts';
import { DEFAULT_CACHE_CONTROL, serveMirrorFile, type MirrorCacheControl } from './serve.ts';

export type MirrorHandler = (request: FastifyRequest, reply: FastifyReply, name: string, relativePath: string, observer?: DownloadObserver) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves one mirrored file; the boot-tracking routes reuse it. */
    serveMirror?: MirrorHandler;
  }
}

export interface MirrorRoutesOptions {
  /** An open mirror; the caller closes it. */
  mirror?: PullThroughMirror;
  /** Settings to open a mirror of the plugin's own, closed when the app closes. */
  settings?: MirrorSettings;
  /** Bytes read from disk per step (as `assets.readSize`). */
  readSize?: number;
  cacheControl?: MirrorCacheControl;
}

async function mirrorRoutes(app: FastifyInstance, options: MirrorRoutesOptions): Promise<void> {
  let mirror = options.mirror;
  if (!mirror) {
    if (!options.settings) throw new Error('mirrorRoutes needs a mirror or its settings');
    mirror = await PullThroughMirror.open({ settings: options.settings, log: app.log });
    const owned = mirror;
    app.addHook('onClose', async () => owned.close());
  }
  const service = mirror;
  const pool = new BufferPool(options.readSize ?? 1024 * 1024);
  const cacheControl = options.cacheControl ?? DEFAULT_CACHE_CONTROL;
  const downloads = new DownloadLog(app.log);
  app.addHook('onClose', (_app, done) => {
    downloads.flush();
    done();
  });

  const serveMirror: MirrorHandler = async (request, reply, name, relativePath, observer) => {
    const started = performance.now();
    reply.hijack();
    // This handler writes its own line: a download summary, or the usual request line.
    reply.quietRequestLog = true;
    const res = reply.raw;
    const sent = { bytes: 0 };
    const logPath = `mirror/${name}/${relativePath}`;
    const tracked = request.method === 'GET' ? observer : undefined;
    tracked?.started();
    // A client that hangs up while its fill waits (for a slot, for headers) stops wanting it.
    const left = new AbortController();
    res.once('close', () => left.abort());
    try {
      const outcome = await serveMirrorFile(res, service, name, relativePath, { method: request.method, headers: request.headers, pool, cacheControl, sent, signal: left.signal });
      if (outcome.bytes > 0 && outcome.file) {
        downloads.record({ client: request.ip, mac: request.deviceMac, path: logPath, status: outcome.status, bytes: outcome.bytes, complete: true, durationMs: performance.now() - started, ranged: outcome.status === 206 });
      } else {
        request.log.info({ method: request.method, url: request.url, status: outcome.status, from: outcome.from, ms: Math.round((performance.now() - started) * 10) / 10, client: request.ip, ...(request.deviceMac ? { mac: request.deviceMac } : {}) }, 'request');
      }
      tracked?.finished({ status: outcome.status, bytes: outcome.bytes, complete: outcome.status < 300 });
    } catch (error) {
      const gone = error instanceof ClientGoneError;
      tracked?.finished({ status: res.statusCode, bytes: sent.bytes, complete: false });
      if (!gone) request.log.warn({ path: logPath, reason: (error as Error).message, sent: sent.bytes }, 'mirror download cut off');
      if (res.headersSent) {
        downloads.record({ client: request.ip, mac: request.deviceMac, path: logPath, status: res.statusCode, bytes: sent.bytes, complete: false, durationMs: performance.now() - started, ranged: res.statusCode === 206 });
        // Never end a short body cleanly: the client must see the transfer fail.
        res.destroy();
      } else if (!res.destroyed) {
        const message = `${(error as Error).message}\n`;
        const status = (error as { status?: number }).status;
        res.writeHead(status !== undefined && status >= 500 && status < 600 ? status : 502, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(message)), 'Cache-Control': 'no-store' });
        res.end(message);
      }
    }
  };
  app.decorate('serveMirror', serveMirror);

  app.get<{ Params: { name: string; '*': string } }>('/mirror/:name/*', (request, reply) => serveMirror(request, reply, request.params.name, request.params['*']));
}

export default fp(mirrorRoutes, { name: 'bootdepot-mirror-routes' });
