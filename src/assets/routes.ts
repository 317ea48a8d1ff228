/**
 * `GET`/`HEAD /assets/<path>`: files under the assets directory, streamed with large reads.
 */
import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { AssetReader } from './asset-root.ts';

/** Read size for streaming: large reads are what closes most of the gap to sendfile. */
const READ_CHUNK = 1024 * 1024;

export interface AssetRoutesOptions {
  assets: AssetReader;
}

function assetRoutes(app: FastifyInstance, options: AssetRoutesOptions): void {
  const { assets } = options;
  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const file = await assets.file(request.params['*']);
    if (!file) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', file.size)
      .header('last-modified', new Date(file.mtimeMs).toUTCString());
    if (request.method === 'HEAD') return reply.send();
    return reply.send(createReadStream(file.path, { highWaterMark: READ_CHUNK }));
  });
}

export default fp(assetRoutes, { name: 'bootdepot-asset-routes' });
