/**
 * `PUT /api/v1/assets/<path>` and `DELETE /api/v1/assets/<path>`: upload and remove assets.
 * The body is streamed (never buffered) into upload.ts's atomic writer. An optional SHA-256
 * comes as `X-Checksum-Sha256: <hex>` or RFC 9530 `Content-Digest: sha-256=:<base64>:`.
 */
import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ReprDigests } from '../assets/repr-digest.ts';
import { deleteAsset, UploadError, writeAsset } from '../assets/upload.ts';
import { requireAdminToken } from '../http/auth.ts';

export interface AssetUploadOptions {
  assetsRoot: string;
  /** Told about each change, so cached file metadata is dropped at once. */
  onChange?: (relativePath: string) => void;
  maxUploadBytes: number;
  adminToken: string | undefined;
  /** Told each upload's digests, so its first download already carries Repr-Digest. */
  digests?: ReprDigests;
}

/** The SHA-256 the client promised, as lowercase hex; undefined when none; throws on a malformed one. */
export function expectedSha256(request: FastifyRequest): string | undefined {
  const hex = request.headers['x-checksum-sha256'];
  if (typeof hex === 'string') {
    if (!/^[0-9a-fA-F]{64}$/.test(hex.trim())) throw new UploadError(400, 'X-Checksum-Sha256 must be 64 hex digits');
    return hex.trim().toLowerCase();
  }
  const digest = request.headers['content-digest'];
  if (typeof digest === 'string') {
    const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/]{43}=):/i.exec(digest);
    if (!match?.[1]) throw new UploadError(400, 'Content-Digest has no sha-256=:<base64>: entry');
    return Buffer.from(match[1], 'base64').toString('hex');
  }
  return undefined;
}

export default function assetUploads(app: FastifyInstance, options: AssetUploadOptions): void {
  app.addHook('onRequest', requireAdminToken(options.adminToken));
  // The body is the file: hand the raw stream to the handler whatever its type, unbuffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  const params = Type.Object({ '*': Type.String({ description: 'path under the assets directory' }) });
  app.put<{ Params: { '*': string } }>('/assets/*', { schema: { tags: ['assets'], summary: 'Upload an asset (body: the file; optional X-Checksum-Sha256 or Content-Digest)', params } }, async (request, reply) => {
    const relativePath = request.params['*'];
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxUploadBytes) {
      throw new UploadError(413, `upload of ${declared} bytes is larger than the limit of ${options.maxUploadBytes}`);
    }
    const { result, version, digests } = await writeAsset(options.assetsRoot, relativePath, request.raw, {
      maxBytes: options.maxUploadBytes,
      expectedSha256: expectedSha256(request),
    });
    await options.digests?.remember(relativePath, version, digests);
    options.onChange?.(relativePath);
    request.log.info({ path: result.path, bytes: result.size, sha256: result.sha256, replaced: !result.created }, 'asset uploaded');
    return reply.code(result.created ? 201 : 200).send({ ...result, url: `/assets/${relativePath}` });
  });

  app.delete<{ Params: { '*': string } }>('/assets/*', { schema: { tags: ['assets'], summary: 'Delete an asset', params } }, async (request, reply) => {
    const relativePath = request.params['*'];
    if (!(await deleteAsset(options.assetsRoot, relativePath))) throw new UploadError(404, `no asset ${relativePath}`);
    await options.digests?.forget(relativePath);
    options.onChange?.(relativePath);
    request.log.info({ path: relativePath }, 'asset deleted');
    return reply.code(204).send();
  });
}
