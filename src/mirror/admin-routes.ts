/**
 * The mirror's admin API, registered under `/api/v1` behind the admin token:
 *   POST   /mirror/warm             {"paths": ["MIRROR/path", ...]}: fill the cache ahead of boots.
 *                                   JSON summary at the end; with `Accept: application/x-ndjson`,
 *                                   one JSON line per progress step and result, then the summary.
 *   GET    /mirror                  cached files (mirror, path, size, age, hits), fills, counters
 *   DELETE /mirror/<mirror>/<path>  forget one file
 *   DELETE /mirror                  forget every file
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAdminToken } from '../http/auth.ts';
import type { PullThroughMirror, WarmEvent } from './mirror.ts';
import { splitMirrorPath } from './paths.ts';

export interface MirrorAdminOptions {
  mirror: PullThroughMirror;
  adminToken: string | undefined;
}

export const WarmRequestSchema = Type.Object(
  {
    /** `MIRROR/path` of each file, e.g. `flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz`. */
    paths: Type.Array(Type.String({ minLength: 3, maxLength: 1100 }), { minItems: 1, maxItems: 1000 }),
  },
  { additionalProperties: false },
);
type WarmRequest = Static<typeof WarmRequestSchema>;

export default function mirrorAdminRoutes(app: FastifyInstance, options: MirrorAdminOptions): void {
  const { mirror } = options;
  app.addHook('onRequest', requireAdminToken(options.adminToken));

  const warmSchema = { tags: ['mirror'], summary: 'Fill the mirror cache ahead of boots (Accept: application/x-ndjson for progress lines)', body: WarmRequestSchema };
  app.post<{ Body: WarmRequest }>('/mirror/warm', { schema: warmSchema }, async (request, reply) => {
    const { paths } = request.body;
    const streaming = /application\/x-ndjson/i.test(request.headers.accept ?? '');
    if (!streaming) {
      const report = await mirror.warm(paths);
      request.log.info({ ...report.summary }, 'mirror warmed');
      return reply.send(report);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
    // A client that leaves does not stop the fills: they complete and are kept.
    const write = (line: object) => {
      if (!res.destroyed) res.write(`${JSON.stringify(line)}\n`);
    };
    try {
      const report = await mirror.warm(paths, (event: WarmEvent) => write(event));
      request.log.info({ ...report.summary }, 'mirror warmed');
      write({ type: 'summary', summary: report.summary });
      res.end();
    } catch (error) {
      request.log.error({ err: error }, 'mirror warm failed');
      res.destroy();
    }
  });

  app.get('/mirror', { schema: { tags: ['mirror'], summary: 'Cached files (mirror, path, size, age, hits), fills in progress, counters' } }, () => ({
    files: mirror.list(),
    filling: mirror.filling(),
    stats: mirror.stats(),
    mirrors: mirror.mirrors().map(({ name, url, flatcarDigests }) => ({ name, url, flatcarDigests })),
  }));

  app.delete('/mirror', { schema: { tags: ['mirror'], summary: 'Forget every cached file' } }, async (request, reply) => {
    const files = mirror.purgeAll();
    request.log.info({ files }, 'mirror cache purged');
    return reply.send({ purged: files });
  });

  app.delete<{ Params: { '*': string } }>('/mirror/*', { schema: { tags: ['mirror'], summary: 'Forget one cached file: /api/v1/mirror/<mirror>/<path>[?<query>]' } }, async (request, reply) => {
    const asked = request.params['*'];
    const parsed = splitMirrorPath(asked);
    if (!parsed) return reply.code(400).send({ error: 'expected /api/v1/mirror/<mirror>/<path>', statusCode: 400 });
    const mark = request.url.indexOf('?');
    if (!mirror.purge(parsed.mirror, parsed.path, mark < 0 ? '' : request.url.slice(mark + 1))) return reply.code(404).send({ error: `nothing cached for ${asked}`, statusCode: 404 });
    request.log.info({ path: asked }, 'mirror file purged');
    return reply.code(204).send();
  });
}
