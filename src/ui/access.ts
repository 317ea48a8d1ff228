/**
 * Who may use the dashboard: a login session (cookie) or the admin token as a bearer header
 * (for reverse proxies and scripts), and the cross-site checks for changing requests. Pure
 * functions over headers, so the rules are tested without a server.
 */
import { parseCookie, stringifySetCookie } from 'cookie';
import { tokenMatches } from '../http/auth.ts';
import { sameSecret, type Session, type SessionTable } from './sessions.ts';

export const SESSION_COOKIE = 'bootdepot_session';
export const COOKIE_PATH = '/ui';

export type Access = { kind: 'bearer' } | { kind: 'session'; session: Session };

export type AccessResult = { ok: true; access: Access } | { ok: false; reason: string };

interface Headers {
  authorization?: string | undefined;
  cookie?: string | undefined;
}

/**
 * A bearer header is judged alone (a wrong token is refused even with a good cookie); without
 * one, the session cookie counts.
 */
export function checkAccess(headers: Headers, token: string, sessions: SessionTable): AccessResult {
  if (headers.authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization);
    if (!match?.[1]) return { ok: false, reason: 'expected Authorization: Bearer <token>' };
    return tokenMatches(token, match[1]) ? { ok: true, access: { kind: 'bearer' } } : { ok: false, reason: 'invalid token' };
  }
  const id = headers.cookie ? parseCookie(headers.cookie)[SESSION_COOKIE] : undefined;
  const session = sessions.get(id);
  if (session) return { ok: true, access: { kind: 'session', session } };
  return { ok: false, reason: id ? 'the session has expired: log in again' : 'not logged in' };
}

export function sessionCookie(session: Session, ttlMs: number, secure: boolean): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: session.id, path: COOKIE_PATH, httpOnly: true, sameSite: 'strict', secure, maxAge: Math.floor(ttlMs / 1000) });
}

export function clearedCookie(secure: boolean): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: '', path: COOKIE_PATH, httpOnly: true, sameSite: 'strict', secure, maxAge: 0 });
}

export interface CrossSiteInput {
  method: string;
  origin?: string | undefined;
  secFetchSite?: string | undefined;
  /** The origins this server is reached at: the request's own, and server.baseUrl's. */
  ownOrigins: readonly string[];
  access: Access | undefined;
  /** The CSRF token the request sent (form field or X-CSRF-Token header). */
  csrf?: string | undefined;
}

/**
 * Why a changing request is refused as cross-site, or undefined when it may go on. A browser
 * sends Origin with every POST; one from another site is refused whatever else it carries. A
 * session must also send its CSRF token (the cookie alone proves nothing about the page that
 * sent the request). A bearer header is never sent by a browser on its own, so it needs neither.
 */
export function crossSiteRefusal(input: CrossSiteInput): string | undefined {
  if (input.method === 'GET' || input.method === 'HEAD') return undefined;
  if (input.origin !== undefined && !input.ownOrigins.includes(input.origin)) return `cross-site request refused (Origin ${input.origin})`;
  if (input.secFetchSite === 'cross-site') return 'cross-site request refused (Sec-Fetch-Site: cross-site)';
  if (input.access?.kind === 'session' && !(input.csrf && sameSecret(input.csrf, input.access.session.csrf))) return 'missing or wrong CSRF token: reload the page';
  return undefined;
}

/** Where a login may send the browser: a dashboard path, never another site. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/ui\/[A-Za-z0-9\-._~%:/?=&+,;@]*$/.test(next) && !next.startsWith('/ui//') ? next : '/ui/';
}
