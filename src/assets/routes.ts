/**
 * `GET`/`HEAD /assets/<path>`: files under the assets directory with full HTTP semantics
 * (see send-file.ts), streamed by file-stream.ts, one summary log line per download.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import mime from 'mime';
import type { AssetReader } from './asset-root.ts';
import { DownloadResponder, type Download, type DownloadObserver } from './download.ts';
import type { DownloadAdmission } from './admission.ts';
import { BufferPool } from './file-stream.ts';
import { reprDigestHeader, type ReprDigests } from './repr-digest.ts';
import { sendFile } from './send-file.ts';

export type { DownloadObserver } from './download.ts';

/**
 * Answers for asset paths that no file holds but that bootdepot can write itself (LinuxKit's
 * provider scripts beside a set). Asked only after no file was found: a real file always wins.
 */
export interface GeneratedAssets {
  handles(relativePath: string): boolean;
  answer(request: FastifyRequest, reply: FastifyReply, relativePath: string): Promise<unknown>;
}

export interface AssetRoutesOptions {
  assets: AssetReader;
  generated?: GeneratedAssets | undefined;
  readSize: number;
  readBufferBudget: number;
  cacheControl: string;
  /** Holds large bodies back beyond a number at once (assets.maxActiveDownloads). */
  admission?: DownloadAdmission;
  /** Repr-Digest of each file version (repr-digest.ts); without it answers carry none. */
  digests?: ReprDigests;
  /**
   * Where the files come from instead of the assets directory (a site: the origin's /assets/
   * through the mirror). Resolves like the local files do, before the reply is touched.
   */
  remote?: RemoteAssets;
}

/** Downloads of asset paths from elsewhere; `signal` aborts when the client leaves; `query` is the request's, without `?`. */
export type RemoteAssets = (relativePath: string, request: RemoteRequest) => Promise<Download>;

export interface RemoteRequest {
  method: string;
  signal: AbortSignal;
  query?: string;
}

/** Boot images have names `mime` does not know (vmlinuz, NAME-kernel, initrd.img). */
export function contentTypeFor(path: string): string {
  return mime.getType(path) ?? 'application/octet-stream';
}

export type AssetHandler = (request: FastifyRequest, reply: FastifyReply, relativePath: string, observer?: DownloadObserver) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves one file of the assets directory; the boot-tracking routes reuse it. */
    serveAsset: AssetHandler;
    /** The one download path (and its buffer pool), which the mirror's routes use too. */
    downloads: DownloadResponder;
  }
}

function assetRoutes(app: FastifyInstance, options: AssetRoutesOptions): void {
  const { assets } = options;
  // The one pool for every download's read buffers (the mirror's included), within
  // assets.readBufferBudget.
  const responder = new DownloadResponder({ pool: new BufferPool(options.readSize, options.readBufferBudget), log: app.log, metrics: app.metrics, ...(options.admission ? { admission: options.admission } : {}) });
  app.decorate('downloads', responder);
  app.addHook('onClose', (_app, done) => {
    responder.flush();
    done();
  });

  /** What a request for an asset resolves to: the open file (with its digests when known), or 404. */
  async function resolve(relativePath: string, request: FastifyRequest): Promise<Download> {
    const opened = await assets.open(relativePath);
    if (!opened) return { kind: 'answer', status: 404, message: 'not found' };
    const { handle } = opened;
    let representationHeaders: Record<string, string> = {};
    try {
      const digests = await options.digests?.forAnswer(relativePath, handle, opened.path, await handle.stat({ bigint: true }));
      const header = digests ? reprDigestHeader(digests, request.headers) : undefined;
      if (header) representationHeaders = { 'Repr-Digest': header };
    } catch (error) {
      await handle.close();
      throw error;
    }
    return {
      kind: 'content',
      stream: (res, io) => sendFile(res, handle, { method: io.method, headers: io.headers, contentType: contentTypeFor(relativePath), cacheControl: options.cacheControl, pool: io.pool, sent: io.sent, onBody: io.onBody, representationHeaders }),
      release: () => handle.close(),
    };
  }

  const serveAsset: AssetHandler = async (request, reply, relativePath, observer) => {
    const left = new AbortController();
    if (options.remote) {
      // A client that hangs up while its fill waits (for a slot, for headers) stops wanting it.
      reply.raw.once('close', () => left.abort());
      const at = request.url.indexOf('?');
      const remoteRequest: RemoteRequest = { method: request.method, signal: left.signal, ...(at >= 0 ? { query: request.url.slice(at + 1) } : {}) };
      const download = await options.remote(relativePath, remoteRequest);
      await responder.respond(request, reply, download, relativePath, observer, left);
      return;
    }
    await responder.respond(request, reply, await resolve(relativePath, request), relativePath, observer, left);
  };
  app.decorate('serveAsset', serveAsset);

  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const relativePath = request.params['*'];
    if (options.generated?.handles(relativePath) && !(await assets.file(relativePath))) {
      await options.generated.answer(request, reply, relativePath);
      return reply;
    }
    return serveAsset(request, reply, relativePath);
  });
}

export default fp(assetRoutes, { name: 'bootdepot-asset-routes' });
