/**
 * The dashboard across replicas on one PostgreSQL: a boot served by replica B, with a download
 * still running there, is on replica A's fleet page live (its event stream, the progress bar,
 * the boots chart), without A serving any of it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { makeTree, startTestServer, waitFor } from '../helpers.ts';
import { bodyOf, startUpstream } from '../mirror/support.ts';
import { findPostgresBin, postgresOrSkip, startPostgres, type PostgresCluster } from '../support/postgres.ts';

const TOKEN = 'dashboard-replica-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAC = '52:54:00:12:34:58';

let cluster: PostgresCluster | undefined;
before(async () => {
  const bin = findPostgresBin();
  if (bin) cluster = await startPostgres(bin);
});
after(() => cluster?.stop());

describe('the dashboard across replicas', () => {
  it('shows on one replica a boot and its download progress served by another', async (t) => {
    if (!postgresOrSkip(t) || !cluster) return;
    const databaseUrl = await cluster.createDatabase('dashboard_replicas');
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    t.after(() => open());
    const upstream = await startUpstream(t, { 'vmlinuz': { body: bodyOf(100_000), fault: { kind: 'gate', after: 25_000, gate } } });
    const dataDir = await makeTree(t, { 'profiles/p.yaml': 'boot: {kernel: /mirror/up/vmlinuz}\n', 'groups/g.yaml': 'profile: p\n' });
    const settings = { dataDir, assetsDir: dataDir, databaseUrl, adminToken: TOKEN };
    const a = await startTestServer(t, { ...settings, cacheDir: await makeTree(t, {}) }, [`up=${upstream.url}`]);
    const b = await startTestServer(t, { ...settings, cacheDir: await makeTree(t, {}) }, [`up=${upstream.url}`]);

    // A's live stream for its pages.
    const controller = new AbortController();
    t.after(() => controller.abort());
    const stream = await request(`${a.url}/ui/events`, { headers: AUTH, signal: controller.signal });
    let streamed = '';
    stream.body.on('data', (chunk: Buffer) => (streamed += chunk.toString()));
    stream.body.on('error', () => undefined);
    await waitFor(() => streamed.includes('bootdepot dashboard events'), 5000, 'the stream to open');

    const script = await (await request(`${b.url}/ipxe?mac=${MAC}`)).body.text();
    const kernel = /^kernel (\S+)/m.exec(script)?.[1] ?? '';
    assert.match(kernel, /^http:\/\/127\.0\.0\.1:\d+\/b\/[0-9a-f]{32}\/mirror\/up\/vmlinuz/, script);
    const download = request(kernel.replace(/^http:\/\/[^/]+/, b.url)).then(async (res) => (await res.body.arrayBuffer()).byteLength);

    await waitFor(() => streamed.includes('event: changed'), 10_000, 'A to hear of B\'s boot');
    const fleet = async () => (await (await request(`${a.url}/ui/fleet`, { headers: AUTH })).body.text());
    await waitFor(async () => (await fleet()).includes('<progress value="25000" max="100000">'), 15_000, 'B\'s download progress on A');
    const during = await fleet();
    assert.match(during, new RegExp(`<tr class="stage-booting" data-device="${MAC}">`));
    assert.match(during, /<span class="name">kernel \/mirror\/up\/vmlinuz<\/span> <span class="bar" data-phase="progress"><progress value="25000" max="100000">/);
    assert.match(during, /<li class="boots"><b>1<\/b> boots/);

    open();
    assert.equal(await download, 100_000);
    await waitFor(async () => (await fleet()).includes('97.7 KiB, done'), 10_000, 'the download\'s end on A');
    const device = await (await request(`${a.url}/ui/devices/${MAC}/live`, { headers: AUTH })).body.text();
    assert.match(device, /kernel \/mirror\/up\/vmlinuz: 97\.7 KiB in [\d.]+ m?s \([\d.]+ [KMG]?i?B\/s\)/);
  });
});
