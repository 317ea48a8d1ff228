/**
 * On a site, `/assets/` are the origin's (mirror/site-assets.ts): files are uploaded to and
 * deleted on the origin, never here. `PUT`/`DELETE /api/v1/assets/<path>` (and the same methods
 * on `/assets/<path>`) answer `307 Temporary Redirect` with `Location` on the origin's upload API
 * and an RFC 9457 problem body that names the origin. 307 keeps the method and body, so a client
 * that follows it uploads to the origin; the body is not read here. No token is needed for the
 * pointer: the origin checks its own.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface SiteRedirectOptions {
  /** This site's name. */
  site: string;
  /** The origin's base URL, without a trailing slash. */
  origin: string;
}

/** A path's segments percent-encoded for a URL. */
function encodePath(relativePath: string): string {
  return relativePath.split('/').map(encodeURIComponent).join('/');
}

export default function siteAssetRedirects(app: FastifyInstance, options: SiteRedirectOptions): void {
  // The body is the origin's to read: never parsed or buffered here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  const answer = (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
    const relativePath = request.params['*'];
    const location = `${options.origin}/api/v1/assets/${encodePath(relativePath)}`;
    const detail = `this bootdepot is site ${options.site}: its /assets/ are the origin's; ${request.method} ${location} instead (bootdepot push --server ${options.origin})`;
    request.log.info({ method: request.method, path: relativePath, origin: options.origin }, 'asset change sent to the origin');
    return reply
      .code(307)
      .header('location', location)
      .header('cache-control', 'no-store')
      .type('application/problem+json')
      .send({ type: 'about:blank', title: 'Temporary Redirect', status: 307, detail, origin: options.origin, site: options.site, location, error: detail, statusCode: 307 });
  };
  app.put<{ Params: { '*': string } }>('/assets/*', answer);
  app.delete<{ Params: { '*': string } }>('/assets/*', answer);
}
