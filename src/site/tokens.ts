/**
 * Site tokens (docs/sites.md). A site presents a token of its own, not the origin's admin token:
 * an HMAC of its name under the admin token, so the origin keeps no list of tokens, and
 * `bootdepot site-token NAME` on the origin prints it. It opens only that site's endpoints
 * (its data export, its heartbeat, its events), never the rest of the admin API; the admin
 * token opens them too. Changing the admin token changes every site's token.
 */
import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tokenMatches } from '../http/auth.ts';

/** A site name: what the config allows (`site.name`). */
export const SITE_NAME = /^[a-z0-9-]{1,63}$/;

export function siteToken(adminToken: string, site: string): string {
  return `bdsite-${createHmac('sha256', adminToken).update(`bootdepot site token v1\n${site}`).digest('hex')}`;
}

function bearer(request: FastifyRequest): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
}

/**
 * An onRequest hook for `/api/v1/sites/:name/...`: the admin token, or that site's token.
 * With no admin token the site endpoints are off, as the admin API is.
 */
export function requireSiteToken(adminToken: string | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (adminToken === undefined) {
      await reply.code(403).send({ error: 'the site endpoints are off: start the origin with --admin-token or BOOTDEPOT_ADMIN_TOKEN', statusCode: 403 });
      return;
    }
    const given = bearer(request);
    const site = (request.params as { name?: string }).name ?? '';
    const ok = given !== undefined && (tokenMatches(adminToken, given) || (SITE_NAME.test(site) && tokenMatches(siteToken(adminToken, site), given)));
    if (!ok) {
      reply.header('WWW-Authenticate', 'Bearer realm="bootdepot"');
      await reply.code(401).send({ error: given === undefined ? 'missing bearer token (Authorization: Bearer <site token>)' : `invalid token for site ${SITE_NAME.test(site) ? site : '(invalid name)'}`, statusCode: 401 });
    }
  };
}
