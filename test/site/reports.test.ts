/**
 * A site reporting to its origin over loopback: heartbeats listed on the origin, boot events
 * forwarded exactly once across an outage of the origin and a restart of the site, and the
 * site endpoints refusing requests without the right token, too large or too many.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import originRoutes, { siteHealth } from '../../src/site/origin-routes.ts';
import { siteToken } from '../../src/site/tokens.ts';
import type { SiteHeartbeat, SiteRecord } from '../../src/state/sites.ts';
import { PostgresDeviceStore } from '../../src/state/postgres-store.ts';
import { makeTree, testApp } from '../helpers.ts';
import { findPostgresBin, postgresOrSkip, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { ADMIN, dataFor, ipxe, json, MAC, round, SITE, startOrigin, startSite } from './support.ts';

interface SiteRow {
  name: string;
  health: string;
  reasons: string[];
  version: string;
  cache: { bytesUsed: number; maxBytes: number };
  store: { kind: string; healthy: boolean };
  data: { etag: string; current: boolean; lastSyncError: string | null };
  events: { received: number; lastId: number; latestAtSite: number; behind: number };
}

async function originEvents(url: string): Promise<number[]> {
  const { body } = await json(`${url}/api/v1/sites/${SITE}/events?limit=1000`, ADMIN);
  return (body as { events: { id: number }[] }).events.map((event) => event.id).sort((a, b) => a - b);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('site reports', () => {
  it('lists a site on the origin with its heartbeat, cache use, data and events', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const site = await startSite(t, origin.server.url);
    await round(site.server);
    await ipxe(site.server);
    await round(site.server);
    const { status, body } = await json(`${origin.server.url}/api/v1/sites`, ADMIN);
    assert.equal(status, 200);
    const sites = (body as { sites: SiteRow[] }).sites;
    assert.deepEqual(sites.map((s) => [s.name, s.health]), [[SITE, 'healthy']], JSON.stringify(sites));
    const [row] = sites;
    assert.ok(row);
    assert.match(row.version, /^\d+\.\d+\.\d+/);
    assert.ok(row.cache.maxBytes > 0);
    assert.deepEqual(row.store, { kind: 'sqlite', healthy: true });
    assert.equal(row.data.current, true);
    assert.equal(row.data.lastSyncError, null, 'null stays null');
    assert.ok(row.events.received >= 1);
    assert.equal(row.events.behind, 0);
    assert.equal(row.events.lastId, row.events.latestAtSite);
  });

  it('calls a site stale after three missed heartbeats, degraded when it reports trouble', () => {
    const heartbeat: SiteHeartbeat = {
      version: '0.1.0',
      uptimeSeconds: 1,
      intervalSeconds: 30,
      cache: { bytesUsed: 0, maxBytes: 1, fills: 0, failedFills: 0, staleServed: 0 },
      store: { kind: 'sqlite', healthy: true },
      data: { etag: '"a"', appliedAt: null, lastSyncAt: null, lastSyncError: null },
      events: { latestId: 0, forwardedThrough: 0 },
    };
    const record = (beat: SiteHeartbeat | null, at: string | null): SiteRecord => ({ name: 's', firstSeen: '2026-12-01T10:00:00.000Z', lastHeartbeat: at, heartbeat: beat, eventsReceived: 0, lastEventId: 0 });
    const now = new Date('2026-12-01T10:05:00.000Z');
    assert.equal(siteHealth(record(null, null), now).health, 'unknown');
    assert.equal(siteHealth(record(heartbeat, '2026-12-01T10:04:00.000Z'), now).health, 'healthy');
    assert.deepEqual(siteHealth(record(heartbeat, '2026-12-01T10:03:00.000Z'), now), { health: 'stale', reasons: ['no heartbeat for 120 s (one expected every 30 s)'] });
    const down = { ...heartbeat, data: { ...heartbeat.data, lastSyncError: 'cannot reach the origin' } };
    assert.deepEqual(siteHealth(record(down, '2026-12-01T10:04:50.000Z'), now), { health: 'degraded', reasons: ['data: cannot reach the origin'] });
  });

  it('forwards every boot event exactly once across an origin outage and a site restart', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const site = await startSite(t, origin.server.url);
    await round(site.server);
    await ipxe(site.server);
    await round(site.server);
    const before = site.server.site?.reporter?.status().latestId ?? 0;
    assert.ok(before >= 1);
    assert.deepEqual(await originEvents(origin.server.url), range(before));

    // The origin goes away; machines keep booting at the site.
    await origin.server.close();
    await ipxe(site.server, '52:54:00:00:00:02');
    await ipxe(site.server, '52:54:00:00:00:03');
    await round(site.server);
    const reporter = site.server.site?.reporter;
    assert.ok(reporter);
    assert.ok(reporter.behind >= 2, `behind ${reporter.behind}`);
    assert.match(reporter.status().lastError ?? '', /cannot reach the origin/);
    const text = await (await fetch(`${site.server.url}/metrics`)).text();
    assert.match(text, /^bootdepot_site_events_behind [1-9]/m);

    // The site restarts during the outage: the outbox cursor is in its store.
    await site.server.close();
    const again = await startSite(t, origin.server.url, { dir: site.dir });
    await round(again.server);
    await ipxe(again.server, '52:54:00:00:00:04');

    // The origin comes back where it was, with its store.
    const back = await startOrigin(t, {}, { dir: origin.dir, port: origin.port });
    await round(again.server);
    const latest = again.server.site?.reporter?.status().latestId ?? 0;
    assert.ok(latest > before);
    assert.deepEqual(await originEvents(back.server.url), range(latest), 'every event once, none missing');
    assert.equal(again.server.site?.reporter?.behind, 0);
    assert.equal(again.server.site?.reporter?.status().forwarded, latest - before, 'after the restart only what the origin had not acknowledged was sent');

    // A batch sent again (its answer lost, say) is recognised, not kept twice.
    const resend = { events: [{ id: 1, deviceId: MAC, at: new Date().toISOString(), type: 'beacon', detail: { type: 'beacon', ip: '10.0.0.1' } }] };
    const answer = await json(`${back.server.url}/api/v1/sites/${SITE}/events`, siteToken(ADMIN, SITE), { method: 'POST', body: JSON.stringify(resend), headers: { 'content-type': 'application/json' } });
    assert.deepEqual(answer.body, { added: 0, duplicates: 1, through: 1 });
    const { body } = await json(`${back.server.url}/api/v1/sites`, ADMIN);
    assert.equal((body as { sites: SiteRow[] }).sites[0]?.events.received, latest);
  });

  it('refuses the site endpoints without the right token', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const base = `${origin.server.url}/api/v1`;
    const heartbeat = JSON.stringify({});
    const post = { method: 'POST', body: heartbeat, headers: { 'content-type': 'application/json' } };
    for (const [url, init] of [[`${base}/sites/${SITE}/data`, {}], [`${base}/sites/${SITE}/heartbeat`, post], [`${base}/sites/${SITE}/events`, post], [`${base}/sites`, {}]] as const) {
      const none = await fetch(url, init);
      assert.equal(none.status, 401, url);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="bootdepot"');
      assert.equal((await json(url, siteToken(ADMIN, 'rack-8'), init)).status, 401, `another site's token: ${url}`);
      assert.equal((await json(url, 'x'.repeat(40), init)).status, 401, url);
    }
    const token = siteToken(ADMIN, SITE);
    assert.equal((await json(`${base}/sites/${SITE}/data`, token)).status, 200);
    assert.equal((await json(`${base}/sites/${SITE}/data`, ADMIN)).status, 200, 'the admin token opens them too');
    // A site's token opens only its own endpoints, not the admin API.
    assert.equal((await json(`${base}/sites`, token)).status, 401);
    assert.equal((await json(`${base}/devices`, token)).status, 401);
    assert.equal((await json(`${base}/sites/${SITE}/events`, token)).status, 401, 'reading events back is for the admin');

    // A site with a wrong token syncs nothing, and says so; its own state needs its own admin token.
    const site = await startSite(t, origin.server.url, { token: 'not-the-site-token-0123456789' });
    await round(site.server);
    assert.match(site.server.site?.sync.status().lastSyncError ?? '', /answered the data request with 401: invalid token for site rack-7/);
    assert.equal((await fetch(`${site.server.url}/api/v1/site`)).status, 401);
    assert.equal((await json(`${site.server.url}/api/v1/site`, token)).status, 401);
  });

  it('are off on an origin without an admin token', async (t) => {
    const { app } = await testApp(t, { data: dataFor('v1') });
    const res = await app.inject({ url: `/api/v1/sites/${SITE}/data`, headers: { authorization: `Bearer ${siteToken(ADMIN, SITE)}` } });
    assert.equal(res.statusCode, 403);
    assert.match(res.json<{ error: string }>().error, /site endpoints are off/);
  });

  it('bound bodies, batches and requests per site and minute', async (t) => {
    const dir = await makeTree(t, dataFor('v1'));
    const app = Fastify();
    await app.register(originRoutes, { prefix: '/api/v1', dataDir: () => dir, adminToken: ADMIN, perMinute: { data: 2, heartbeat: 30, events: 30 } });
    t.after(() => app.close());
    const headers = { authorization: `Bearer ${siteToken(ADMIN, SITE)}`, 'content-type': 'application/json' };
    const big = await app.inject({ method: 'POST', url: `/api/v1/sites/${SITE}/heartbeat`, headers, payload: JSON.stringify({ version: 'x'.repeat(20_000) }) });
    assert.equal(big.statusCode, 413);
    const event = (id: number) => ({ id, deviceId: MAC, at: '2026-12-01T10:00:00.000Z', type: 'beacon', detail: { type: 'beacon', ip: '10.0.0.1' } });
    const many = await app.inject({ method: 'POST', url: `/api/v1/sites/${SITE}/events`, headers, payload: { events: Array.from({ length: 501 }, (_, i) => event(i + 1)) } });
    assert.equal(many.statusCode, 400);
    const odd = await app.inject({ method: 'POST', url: `/api/v1/sites/${SITE}/events`, headers, payload: { events: [{ ...event(1), deviceId: 'a b' }] } });
    assert.equal(odd.statusCode, 400);
    const storeless = await app.inject({ method: 'POST', url: `/api/v1/sites/${SITE}/events`, headers, payload: { events: [event(1)] } });
    assert.equal(storeless.statusCode, 503);
    const data = () => app.inject({ url: `/api/v1/sites/${SITE}/data`, headers });
    assert.equal((await data()).statusCode, 200);
    assert.equal((await data()).statusCode, 200);
    const third = await data();
    assert.equal(third.statusCode, 429);
    assert.match(String(third.headers['retry-after']), /^\d+$/);
  });

  describe('with PostgreSQL on the origin', () => {
    let cluster: PostgresCluster | undefined;
    before(async () => {
      const bin = findPostgresBin();
      if (bin) cluster = await startPostgres(bin);
    });
    after(() => cluster?.stop());

    it("keeps the site's heartbeat and events in the origin's database, tagged with the site", async (t) => {
      if (!postgresOrSkip(t) || !cluster) return;
      const databaseUrl = await cluster.createDatabase('origin_sites');
      const origin = await startOrigin(t, dataFor('v1'), { databaseUrl });
      const site = await startSite(t, origin.server.url);
      await round(site.server);
      await ipxe(site.server);
      await ipxe(site.server, '52:54:00:00:00:02');
      await round(site.server);
      const latest = site.server.site?.reporter?.status().latestId ?? 0;
      assert.ok(latest >= 2);
      const store = new PostgresDeviceStore({ url: databaseUrl });
      t.after(() => store.close());
      const [record] = await store.listSites();
      assert.equal(record?.name, SITE);
      assert.equal(record.eventsReceived, latest);
      assert.equal(record.heartbeat?.store.kind, 'sqlite');
      const events = await store.listSiteEvents(SITE, 100);
      assert.deepEqual(events.map((e) => e.id).sort((a, b) => a - b), range(latest));
      assert.ok(events.every((e) => e.site === SITE));
      assert.deepEqual(new Set(events.map((e) => e.deviceId)), new Set([MAC, '52:54:00:00:00:02']));
    });
  });
});
