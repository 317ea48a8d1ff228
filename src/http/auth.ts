/**
 * Bearer-token guard for the admin API. The token is compared in constant time (both sides are
 * hashed first, so even their lengths do not leak). With no token configured the admin API is
 * off and every route says so.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/** An onRequest hook for a route scope. */
export function requireAdminToken(token: string | undefined) {
  const expected = token;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (expected === undefined) {
      await reply.code(403).send({ error: 'the admin API is off: start bootdepot with --admin-token or BOOTDEPOT_ADMIN_TOKEN', statusCode: 403 });
      return;
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1] || !tokenMatches(expected, match[1])) {
      reply.header('WWW-Authenticate', 'Bearer realm="bootdepot"');
      await reply.code(401).send({ error: match ? 'invalid token' : 'missing bearer token (Authorization: Bearer <token>)', statusCode: 401 });
    }
  };
}
