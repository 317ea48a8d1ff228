/**
 * `GET`/`HEAD /assets/<path>`: files under the assets directory with full HTTP semantics
 * (see send-file.ts), streamed by file-stream.ts, one summary log line per download.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import mime from 'mime';
import type { AssetReader } from './asset-root.ts';
import { DownloadLog } from './download-log.ts';
import { BufferPool, ClientGoneError } from './file-stream.ts';
import { sendFile } from './send-file.ts';

export interface AssetRoutesOptions {
  assets: AssetReader;
  readSize: number;
  cacheControl: string;
}

/** Boot images have names `mime` does not know (vmlinuz, NAME-kernel, initrd.img). */
export function contentTypeFor(path: string): string {
  return mime.getType(path) ?? 'application/octet-stream';
}

function assetRoutes(app: FastifyInstance, options: AssetRoutesOptions): void {
  const { assets } = options;
  const pool = new BufferPool(options.readSize);
  const downloads = new DownloadLog(app.log);
  app.addHook('onClose', (_app, done) => {
    downloads.flush();
    done();
  });

  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const relativePath = request.params['*'];
    const opened = await assets.open(relativePath);
    if (!opened) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    const { handle } = opened;
    const started = performance.now();
    reply.hijack();
    // This handler writes its own line: a download summary, or the usual request line.
    reply.quietRequestLog = true;
    const res = reply.raw;
    const sent = { bytes: 0 };
    try {
      const outcome = await sendFile(res, handle, {
        method: request.method,
        headers: request.headers,
        contentType: contentTypeFor(relativePath),
        cacheControl: options.cacheControl,
        pool,
        sent,
      });
      if (outcome.bytes > 0) {
        downloads.record({ client: request.ip, path: relativePath, status: outcome.status, bytes: outcome.bytes, complete: true, durationMs: performance.now() - started, ranged: outcome.status === 206 });
      } else {
        request.log.info({ method: request.method, url: request.url, status: outcome.status, ms: Math.round((performance.now() - started) * 10) / 10, client: request.ip }, 'request');
      }
    } catch (error) {
      const gone = error instanceof ClientGoneError;
      // A client hanging up mid-download is normal; anything else is worth an error line.
      if (!gone) request.log.error({ err: error, path: relativePath }, 'asset read failed mid-response');
      downloads.record({ client: request.ip, path: relativePath, status: res.statusCode, bytes: sent.bytes, complete: false, durationMs: performance.now() - started, ranged: res.statusCode === 206 });
      // Never end a short body cleanly: the client must see the transfer fail.
      res.destroy();
    } finally {
      await handle.close();
    }
  });
}

export default fp(assetRoutes, { name: 'bootdepot-asset-routes' });
