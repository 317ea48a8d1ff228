/**
 * A site's own view of site mode, under /api/v1 with the site's admin token:
 *   GET /site   the copy of the origin's data in service, the last sync and why it failed, a
 *               refused copy's problems, the event outbox (forwarded, behind) and the heartbeat
 */
import type { FastifyInstance } from 'fastify';
import { requireAdminToken } from '../http/auth.ts';
import type { SiteAgent } from './agent.ts';

export interface SiteRoutesOptions {
  agent: SiteAgent;
  adminToken: string | undefined;
}

export default function siteRoutes(app: FastifyInstance, options: SiteRoutesOptions): void {
  app.get('/site', { onRequest: requireAdminToken(options.adminToken), schema: { tags: ['sites'], summary: "This site's sync, outbox and heartbeat state" } }, (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return options.agent.status();
  });
}
