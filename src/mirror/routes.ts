/**
 * `GET`/`HEAD /mirror/NAME/<path>`: the pull-through mirror over HTTP, one summary log line per
 * download as for /assets. Thin: serve.ts answers, mirror.ts decides where bytes come from.
 *
 * Register with an open mirror (`{ mirror }`, the server's, shared with the admin API) or with
 * `{ settings }`, in which case the plugin opens the mirror and closes it with the app.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DownloadResponder, type DownloadMetrics, type DownloadObserver } from '../assets/download.ts';
import { BufferPool } from '../assets/file-stream.ts';
import type { MirrorSettings } from './config.ts';
import { PullThroughMirror } from './mirror.ts';
import { DEFAULT_CACHE_CONTROL, resolveMirrorDownload, type MirrorCacheControl } from './serve.ts';

export type MirrorHandler = (request: FastifyRequest, reply: FastifyReply, name: string, relativePath: string, observer?: DownloadObserver) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves one mirrored file; the boot-tracking routes reuse it. */
    serveMirror?: MirrorHandler;
  }
}

/** Download counters for a mirror served without the metrics plugin. */
const UNCOUNTED: DownloadMetrics = { downloads: { inc: () => undefined }, downloadBytes: { inc: () => undefined } };

export interface MirrorRoutesOptions {
  /** An open mirror; the caller closes it. */
  mirror?: PullThroughMirror;
  /** Settings to open a mirror of the plugin's own, closed when the app closes. */
  settings?: MirrorSettings;
  /** When the mirror is served alone: bytes read from disk per step and the pool's budget (as `assets.*`). */
  readSize?: number;
  readBufferBudget?: number;
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
  const cacheControl = options.cacheControl ?? DEFAULT_CACHE_CONTROL;
  // The app's one download path (registered by the asset routes), or one of its own when the
  // mirror is served alone.
  let responder = app.hasDecorator('downloads') ? app.downloads : undefined;
  if (!responder) {
    const metrics = app.hasDecorator('metrics') ? app.metrics : UNCOUNTED;
    const own = new DownloadResponder({ pool: new BufferPool(options.readSize ?? 1024 * 1024, options.readBufferBudget), log: app.log, metrics });
    app.addHook('onClose', (_app, done) => {
      own.flush();
      done();
    });
    responder = own;
  }
  const downloads = responder;

  const serveMirror: MirrorHandler = async (request, reply, name, relativePath, observer) => {
    // A client that hangs up while its fill waits (for a slot, for headers) stops wanting it.
    const left = new AbortController();
    reply.raw.once('close', () => left.abort());
    // The query is part of what is asked for: in the cache key and in the upstream URL.
    const mark = request.url.indexOf('?');
    const query = mark < 0 ? '' : request.url.slice(mark + 1);
    const download = await resolveMirrorDownload(service, name, relativePath, { method: request.method, signal: left.signal, query }, cacheControl);
    await downloads.respond(request, reply, download, `mirror/${name}/${relativePath}`, observer, left);
  };
  app.decorate('serveMirror', serveMirror);

  app.get<{ Params: { name: string; '*': string } }>('/mirror/:name/*', (request, reply) => serveMirror(request, reply, request.params.name, request.params['*']));
}

export default fp(mirrorRoutes, { name: 'bootdepot-mirror-routes' });
