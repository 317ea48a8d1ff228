import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAccess, crossSiteRefusal, safeNext, SESSION_COOKIE, sessionCookie } from '../../src/ui/access.ts';
import { SessionTable } from '../../src/ui/sessions.ts';

const TOKEN = 'ui-token-0123456789abcdef';

describe('dashboard sessions', () => {
  it('expire, and the table keeps at most maxSessions (the oldest go)', () => {
    let now = 1_000_000;
    const table = new SessionTable({ ttlMs: 60_000, maxSessions: 3, now: () => now });
    const first = table.create();
    assert.equal(table.get(first.id), first);
    assert.notEqual(first.id, first.csrf);
    assert.match(first.id, /^[A-Za-z0-9_-]{43}$/);
    const others = [table.create(), table.create(), table.create()];
    assert.equal(table.size, 3);
    assert.equal(table.get(first.id), undefined, 'the oldest was dropped');
    assert.ok(others.every((s) => table.get(s.id)));
    now += 60_000;
    assert.equal(table.get(others[2]?.id), undefined, 'expired');
    table.sweep();
    assert.equal(table.size, 0);
  });

  it('a cookie names a session; a bearer header is judged alone', () => {
    const table = new SessionTable({ ttlMs: 60_000, maxSessions: 10 });
    const session = table.create();
    const cookie = `other=1; ${SESSION_COOKIE}=${session.id}`;
    assert.deepEqual(checkAccess({ cookie }, TOKEN, table), { ok: true, access: { kind: 'session', session } });
    assert.deepEqual(checkAccess({ authorization: `Bearer ${TOKEN}` }, TOKEN, table), { ok: true, access: { kind: 'bearer' } });
    assert.equal(checkAccess({ authorization: 'Bearer wrong', cookie }, TOKEN, table).ok, false);
    assert.equal(checkAccess({ cookie: `${SESSION_COOKIE}=made-up` }, TOKEN, table).ok, false);
    assert.equal(checkAccess({ cookie: `${SESSION_COOKIE}=${TOKEN}` }, TOKEN, table).ok, false, 'the token is no session id');
    assert.equal(checkAccess({}, TOKEN, table).ok, false);
  });

  it('the cookie is HttpOnly, SameSite=Strict, Path=/ui, and holds the session id, not the token', () => {
    const table = new SessionTable({ ttlMs: 3600_000, maxSessions: 10 });
    const session = table.create();
    const header = sessionCookie(session, 3600_000, false);
    assert.match(header, new RegExp(`^${SESSION_COOKIE}=${session.id};`));
    for (const part of ['HttpOnly', 'SameSite=Strict', 'Path=/ui', 'Max-Age=3600']) assert.ok(header.includes(part), `${part} in ${header}`);
    assert.ok(!header.includes('Secure'));
    assert.ok(sessionCookie(session, 3600_000, true).includes('Secure'));
  });
});

describe('cross-site checks', () => {
  const table = new SessionTable({ ttlMs: 60_000, maxSessions: 10 });
  const session = table.create();
  const own = ['http://boot.example:8080'];
  const base = { method: 'POST', ownOrigins: own, access: { kind: 'session' as const, session } };

  it('refuses another origin, a cross-site fetch, and a session without its CSRF token', () => {
    assert.equal(crossSiteRefusal({ ...base, origin: own[0], csrf: session.csrf }), undefined);
    assert.match(crossSiteRefusal({ ...base, origin: 'http://evil.example', csrf: session.csrf }) ?? '', /cross-site request refused \(Origin/);
    assert.match(crossSiteRefusal({ ...base, secFetchSite: 'cross-site', csrf: session.csrf }) ?? '', /Sec-Fetch-Site/);
    assert.match(crossSiteRefusal({ ...base, origin: own[0] }) ?? '', /CSRF/);
    assert.match(crossSiteRefusal({ ...base, origin: own[0], csrf: 'x'.repeat(43) }) ?? '', /CSRF/);
  });

  it('lets reads through, and a bearer header needs no CSRF token', () => {
    assert.equal(crossSiteRefusal({ ...base, method: 'GET', origin: 'http://evil.example' }), undefined);
    assert.equal(crossSiteRefusal({ method: 'POST', ownOrigins: own, access: { kind: 'bearer' } }), undefined);
    assert.ok(crossSiteRefusal({ method: 'POST', ownOrigins: own, access: { kind: 'bearer' }, origin: 'http://evil.example' }));
  });

  it('a login sends the browser only to a dashboard path', () => {
    assert.equal(safeNext('/ui/devices/52:54:00:12:34:56'), '/ui/devices/52:54:00:12:34:56');
    for (const bad of ['//evil.example/', '/ui//evil.example', 'https://evil.example/ui/', '/api/v1/devices', '/ui/\\evil', undefined, 3]) assert.equal(safeNext(bad), '/ui/');
  });
});
