/**
 * `GET`/`HEAD /assets/<path>`: files under the assets directory with full HTTP semantics
 * (see send-file.ts), streamed by file-stream.ts, one summary log line per download.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import mime from 'mime';
import type { AssetReader } from './asset-root.ts';
import { DownloadLog } from './download-log.ts';
import { BufferPool, ClientGoneError } from './file-stream.ts';
import { sendFile } from './send-file.ts';

export interface AssetRoutesOptions {
  assets: AssetReader;
  readSize: number;
  readBufferBudget: number;
  cacheControl: string;
}

/** Boot images have names `mime` does not know (vmlinuz, NAME-kernel, initrd.img). */
export function contentTypeFor(path: string): string {
  return mime.getType(path) ?? 'application/octet-stream';
}

/** Told when a download with a body starts and how it ended (for boot tracking). */
export interface DownloadObserver {
  started(): void;
  finished(outcome: { status: number; bytes: number; complete: boolean }): void;
}

export type AssetHandler = (request: FastifyRequest, reply: FastifyReply, relativePath: string, observer?: DownloadObserver) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves one file of the assets directory; the boot-tracking routes reuse it. */
    serveAsset: AssetHandler;
  }
}

function assetRoutes(app: FastifyInstance, options: AssetRoutesOptions): void {
  const { assets } = options;
  const pool = new BufferPool(options.readSize, options.readBufferBudget);
  const downloads = new DownloadLog(app.log);
  app.addHook('onClose', (_app, done) => {
    downloads.flush();
    done();
  });

  const serveAsset: AssetHandler = async (request, reply, relativePath, observer) => {
    const opened = await assets.open(relativePath);
    if (!opened) {
      await reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
      return;
    }
    const { handle } = opened;
    const started = performance.now();
    reply.hijack();
    // This handler writes its own line: a download summary, or the usual request line.
    reply.quietRequestLog = true;
    const res = reply.raw;
    const sent = { bytes: 0 };
    // Only responses that stream a body are downloads; HEAD, 304, 412 and 416 are not.
    let announced = false;
    try {
      const outcome = await sendFile(res, handle, {
        method: request.method,
        headers: request.headers,
        contentType: contentTypeFor(relativePath),
        cacheControl: options.cacheControl,
        pool,
        sent,
        onBody: () => {
          announced = true;
          observer?.started();
        },
      });
      if (outcome.bytes > 0) {
        app.metrics.downloads.inc({ outcome: 'complete' });
        app.metrics.downloadBytes.inc(outcome.bytes);
        downloads.record({ client: request.ip, mac: request.deviceMac, path: relativePath, status: outcome.status, bytes: outcome.bytes, complete: true, durationMs: performance.now() - started, ranged: outcome.status === 206 });
      } else {
        request.log.info({ method: request.method, url: request.url, status: outcome.status, ms: Math.round((performance.now() - started) * 10) / 10, client: request.ip, ...(request.deviceMac ? { mac: request.deviceMac } : {}) }, 'request');
      }
      if (announced) observer?.finished({ status: outcome.status, bytes: outcome.bytes, complete: true });
    } catch (error) {
      const gone = error instanceof ClientGoneError;
      // A client hanging up mid-download is normal; anything else is worth an error line.
      if (!gone) request.log.error({ err: error, path: relativePath }, 'asset read failed mid-response');
      app.metrics.downloads.inc({ outcome: 'aborted' });
      app.metrics.downloadBytes.inc(sent.bytes);
      downloads.record({ client: request.ip, mac: request.deviceMac, path: relativePath, status: res.statusCode, bytes: sent.bytes, complete: false, durationMs: performance.now() - started, ranged: res.statusCode === 206 });
      if (announced) observer?.finished({ status: res.statusCode, bytes: sent.bytes, complete: false });
      // Never end a short body cleanly: the client must see the transfer fail.
      res.destroy();
    } finally {
      await handle.close();
    }
  };
  app.decorate('serveAsset', serveAsset);

  app.get<{ Params: { '*': string } }>('/assets/*', (request, reply) => serveAsset(request, reply, request.params['*']));
}

export default fp(assetRoutes, { name: 'bootdepot-asset-routes' });
