/**
 * What a request is, for the limits: a probe, an admin request carrying the token, a script or
 * report (small answers machines ask for a few times per boot), or a download. Decided from the
 * route's pattern, so a route added later without a class here counts as a script (fail closed).
 */
import type { FastifyRequest } from 'fastify';
import { tokenMatches } from './auth.ts';

export type RequestClass = 'probe' | 'admin' | 'script' | 'download';

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
const DOWNLOADS = new Set(['/assets/*', '/mirror/:name/*', '/b/:bootId/assets/*', '/b/:bootId/mirror/:name/*']);
/** The answers that are iPXE scripts: a refusal there must be a script too, or iPXE stops. */
const IPXE_SCRIPTS = new Set(['/boot.ipxe', '/boot.ipxe.0', '/ipxe', '/linuxkit/:file']);
/** Under /api/v1/ but public: booted systems report without a token. */
const PUBLIC_API = new Set(['/api/v1/devices/:id/state']);

export function carriesToken(request: FastifyRequest, token: string | undefined): boolean {
  if (token === undefined) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return match?.[1] !== undefined && tokenMatches(token, match[1]);
}

export function classify(request: FastifyRequest, adminToken: string | undefined): RequestClass {
  const route = request.routeOptions.url ?? '';
  if (PROBES.has(route)) return 'probe';
  if (DOWNLOADS.has(route) && (request.method === 'GET' || request.method === 'HEAD')) return 'download';
  // An admin request without a valid token is as cheap to send as a script request: counted as one.
  if (route.startsWith('/api/v1/') && !PUBLIC_API.has(route) && carriesToken(request, adminToken)) return 'admin';
  return 'script';
}

export function isIpxeScriptRoute(request: FastifyRequest): boolean {
  return IPXE_SCRIPTS.has(request.routeOptions.url ?? '');
}
