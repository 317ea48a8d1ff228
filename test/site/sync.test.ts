/**
 * A site's copy of its origin's data directory, over loopback: applied and booted from, 304
 * while nothing changed, a copy that fails the check kept out of service, an origin that is
 * down changing nothing (also across a restart of the site).
 */
import assert from 'node:assert/strict';
import { readdir, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { captureLogger, runBootdepotIn, writeFiles } from '../helpers.ts';
import { ADMIN, dataFor, ipxe, json, round, SITE, SITE_ADMIN, startOrigin, startSite } from './support.ts';
import { siteToken } from '../../src/site/tokens.ts';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} on /metrics`);
  return Number(line.split(' ')[1]);
}

describe('site data sync', () => {
  it("applies the origin's data and boots from it; a change on the origin is served after the next sync", async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const site = await startSite(t, origin.server.url);
    await round(site.server);
    assert.match(await ipxe(site.server), /images\.example\.invalid\/v1\/vmlinuz/);

    const exported = await json(`${origin.server.url}/api/v1/sites/${SITE}/data`, siteToken(ADMIN, SITE));
    const etag = exported.headers.get('etag');
    const status = (await json(`${site.server.url}/api/v1/site`, SITE_ADMIN)).body as { data: { etag: string; applied: number } };
    assert.equal(status.data.etag, etag);

    await writeFiles(path.join(origin.dir, 'data'), dataFor('v2'));
    await round(site.server);
    assert.match(await ipxe(site.server), /images\.example\.invalid\/v2\/vmlinuz/);
    // The copy is a complete directory behind one link; the copy before stays until the next one.
    const copies = path.join(site.dir, 'data', 'site-data');
    const current = await readlink(path.join(copies, 'current'));
    assert.match(current, /^copy-/);
    assert.deepEqual((await readdir(copies)).filter((name) => name.startsWith('.incoming-')), []);
    assert.equal(await metric(site.server.url, 'bootdepot_site_data_copies_applied'), 2);
    // `check` on the site reads the copy in service.
    const check = await runBootdepotIn(site.dir, ['check', '--config', 'bootdepot.yaml']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stderr, /site rack-7: checking the origin's copy "sha256-/);
    assert.match(check.stdout, new RegExp(`ok: 2 profile\\(s\\), 1 group\\(s\\).* in ${path.join(copies, current).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('answers 304 to If-None-Match with the current ETag, and the site then applies nothing', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const url = `${origin.server.url}/api/v1/sites/${SITE}/data`;
    const token = siteToken(ADMIN, SITE);
    const first = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const etag = first.headers.get('etag') ?? '';
    assert.match(etag, /^"sha256-[A-Za-z0-9_-]{43}"$/);
    const document = (await first.json()) as { files: Record<string, string> };
    assert.deepEqual(Object.keys(document.files).sort(), ['groups/all.yaml', 'profiles/v1.json']);
    const again = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'if-none-match': `"other", ${etag}` } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    assert.equal(await again.text(), '');

    const site = await startSite(t, origin.server.url);
    await round(site.server);
    const agent = site.server.site;
    assert.ok(agent);
    assert.equal(await agent.sync.syncOnce(), 'unchanged');
    assert.equal(agent.sync.status().applied, 1);
    await writeFile(path.join(origin.dir, 'data/groups/all.yaml'), 'profile: v1\nmetadata: {note: changed}\n');
    assert.equal(await agent.sync.syncOnce(), 'applied');
    assert.notEqual(agent.sync.status().etag, etag);
  });

  it('keeps a copy that fails the check out of service, and says why (log, metrics, problems, API)', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const { logger, lines } = captureLogger();
    const site = await startSite(t, origin.server.url, { logger });
    await round(site.server);
    const good = site.server.site?.sync.status().etag;

    await writeFiles(path.join(origin.dir, 'data'), { ...dataFor('v2'), 'groups/broken.yaml': 'profile: [v2\n' });
    await round(site.server);
    assert.match(await ipxe(site.server), /v1\/vmlinuz/, 'the last good copy still boots machines');
    const status = (await json(`${site.server.url}/api/v1/site`, SITE_ADMIN)).body as { data: { etag: string; rejected: { problems: string[] } | null } };
    assert.equal(status.data.etag, good);
    assert.ok(status.data.rejected);
    assert.ok(status.data.rejected.problems.some((text) => text.startsWith('origin:groups/broken.yaml')), status.data.rejected.problems.join('\n'));
    assert.equal(await metric(site.server.url, 'bootdepot_site_data_copy_rejected'), 1);
    const problems = site.server.catalogue.current().problems.map((p) => p.message);
    assert.ok(problems.some((message) => /fails the check and is not applied/.test(message)), problems.join('\n'));
    assert.ok(lines.some((line) => /fails the check .*not applied/.test(line.msg)));
    // Nothing of the refused copy is left behind.
    const copies = await readdir(path.join(site.dir, 'data', 'site-data'));
    assert.equal(copies.filter((name) => name.startsWith('copy-')).length, 1);

    // Put back as it was: the copy in service is current again, the refusal is history.
    await rm(path.join(origin.dir, 'data/groups/broken.yaml'));
    await rm(path.join(origin.dir, 'data/profiles/v2.json'));
    await writeFiles(path.join(origin.dir, 'data'), dataFor('v1'));
    await round(site.server);
    assert.equal(site.server.site?.sync.status().rejected, null);
    assert.equal(site.server.site?.sync.status().applied, 1);

    // Fixed on the origin: applied at the next sync, and the problem is gone.
    await writeFiles(path.join(origin.dir, 'data'), { ...dataFor('v2'), 'groups/broken.yaml': 'profile: [v2\n' });
    await round(site.server);
    assert.ok(site.server.site?.sync.status().rejected);
    await rm(path.join(origin.dir, 'data/groups/broken.yaml'));
    await round(site.server);
    assert.match(await ipxe(site.server), /v2\/vmlinuz/);
    assert.equal(await metric(site.server.url, 'bootdepot_site_data_copy_rejected'), 0);
    assert.ok(!site.server.catalogue.current().problems.some((p) => /not applied/.test(p.message)));
  });

  it('keeps booting the last good copy while the origin is down, says so, and starts from it again', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    const { logger, lines } = captureLogger();
    const site = await startSite(t, origin.server.url, { logger });
    await round(site.server);
    await origin.server.close();

    await round(site.server);
    assert.match(await ipxe(site.server), /v1\/vmlinuz/);
    const status = (await json(`${site.server.url}/api/v1/site`, SITE_ADMIN)).body as { data: { lastSyncError: string; failures: number } };
    assert.match(status.data.lastSyncError, /cannot reach the origin http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    assert.ok(status.data.failures >= 1);
    assert.equal(await metric(site.server.url, 'bootdepot_site_data_sync_ok'), 0);
    const problems = site.server.catalogue.current().problems.map((p) => p.message);
    assert.ok(problems.some((message) => /sync failing since .*serving the copy "sha256-/.test(message)), problems.join('\n'));
    // Said once per cause, not once per attempt.
    const said = () => lines.filter((line) => /sync failing since|site data sync failed/.test(line.msg)).length;
    const before = said();
    await round(site.server);
    await round(site.server);
    assert.equal(said(), before);

    // A restart while the origin is still down boots from the copy on disk.
    await site.server.close();
    const again = await startSite(t, origin.server.url, { dir: site.dir });
    await round(again.server);
    assert.match(await ipxe(again.server), /v1\/vmlinuz/);
    assert.match(again.server.site?.sync.status().lastSyncError ?? '', /ECONNREFUSED/);
  });

  it('makes machines wait, saying why, when it has no copy yet', async (t) => {
    const origin = await startOrigin(t, dataFor('v1'));
    await origin.server.close();
    const site = await startSite(t, origin.server.url);
    await round(site.server);
    const script = await ipxe(site.server);
    assert.doesNotMatch(script, /vmlinuz/);
    assert.match(script, /sleep/);
    assert.ok(site.server.catalogue.current().problems.some((p) => /no copy of the origin's data yet: cannot reach the origin/.test(p.message)));
  });
});
