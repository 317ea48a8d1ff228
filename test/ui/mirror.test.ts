/**
 * The dashboard's Mirror view over a real server and a local upstream: cached files, a fill in
 * progress, recent failures, the disk budget; device-supplied paths are text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTree, startTestServer, testApp, waitFor } from '../helpers.ts';
import { bodyOf, startUpstream } from '../mirror/support.ts';

const TOKEN = 'mirror-view-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('the Mirror view', () => {
  it('shows cached files, a fill in progress with its bar, recent failures and the budget', async (t) => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const upstream = await startUpstream(t, {
      'cached.img': { body: bodyOf(3000) },
      'slow.img': { body: bodyOf(100_000), fault: { kind: 'gate', after: 25_000, gate } },
      'broken.img': { body: bodyOf(10), fault: { kind: 'status', status: 500 } },
      '<script>x</script>.img': { body: bodyOf(10) },
    });
    const dataDir = await makeTree(t, { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'groups/g.yaml': 'profile: p\n' });
    const server = await startTestServer(t, { dataDir, assetsDir: dataDir, cacheDir: await makeTree(t, {}), adminToken: TOKEN }, [`up=${upstream.url}`]);
    const view = async () => (await fetch(`${server.url}/ui/mirror/live`, { headers: auth })).text();

    assert.equal((await fetch(`${server.url}/mirror/up/cached.img`)).status, 200);
    // A warmed file is pinned: evicted only when nothing else is left.
    const warmed = await fetch(`${server.url}/api/v1/mirror/warm`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['up/cached.img'] }) });
    assert.equal(warmed.status, 200, await warmed.text());
    assert.equal((await fetch(`${server.url}/mirror/up/broken.img`)).status, 502);
    assert.equal((await fetch(`${server.url}/mirror/up/${encodeURIComponent('<script>x</script>.img')}`)).status, 200);
    const slow = fetch(`${server.url}/mirror/up/slow.img`).then(async (res) => (await res.arrayBuffer()).byteLength);
    await waitFor(async () => (await view()).includes('<progress value="25000" max="100000">'), 10_000, 'the fill in the view, as far as the upstream sent it');
    await waitFor(async () => (await view()).includes('data-file="up/&lt;script&gt;x&lt;/script&gt;.img"'), 10_000, 'the small file cached');

    const during = await view();
    assert.match(during, /<tr data-fill="up\/slow.img"><td class="path">up\/slow.img<\/td><td><span class="bar" data-phase="progress"><progress value="25000" max="100000">/);
    assert.match(during, /24.4 KiB of 97.7 KiB \(25 %\)/);
    assert.match(during, /<span class="speed">[\d.]+ [KM]?i?B\/s<\/span>/);
    assert.match(during, /<tr data-file="up\/cached.img"><td class="path"><b>up<\/b>\/cached.img<\/td><td class="num">2.9 KiB<\/td><td class="num">\d+ s<\/td><td class="num">\d+<\/td><td>pinned<\/td>/);
    assert.match(during, /<tr data-file="up\/&lt;script&gt;x&lt;\/script&gt;.img">.*<td><\/td><td>(verified)?<\/td>/, 'not pinned');
    assert.match(during, /<td class="path">up\/broken.img<\/td><td class="error">HTTP 500<\/td>/);
    assert.match(during, /&lt;script&gt;x&lt;\/script&gt;.img/);
    assert.doesNotMatch(during, /<script>x/);
    assert.match(during, /<b>0 %<\/b> of the disk budget <progress value="3010" max="\d+">/);
    assert.match(during, /<b>1<\/b> filling/);

    open();
    assert.equal(await slow, 100_000);
    await waitFor(async () => (await view()).includes('data-file="up/slow.img"'), 10_000, 'the filled file cached');
    const after = await view();
    assert.doesNotMatch(after, /data-fill=/);
    // The throughput chart has this minute's bytes from the upstream (at least the 3 files).
    const chart = /<figure class="chart" data-chart="throughput">[\s\S]*?<\/figure>/.exec(after)?.[0] ?? '';
    assert.match(chart, /last hour: (9[89]\.\d|1\d\d\.\d) KiB/);
    assert.match(chart, /<rect x="[\d.]+" y="2" width="[\d.]+" height="78"><title>\d\d:\d\d UTC: [\d.]+ KiB<\/title><\/rect>/);

    // The page around it, searching; and without a session it is the login page.
    const page = await (await fetch(`${server.url}/ui/mirror?q=cached`, { headers: auth })).text();
    assert.match(page, /hx-trigger="every 2s"/);
    assert.match(page, /data-file="up\/cached.img"/);
    assert.match(page, /<code>\/mirror\/up\/<\/code> from http:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(page, /data-file="up\/slow.img"/);
    assert.equal((await fetch(`${server.url}/ui/mirror/live`)).status, 401);

    // The failing upstream is on the Problems page, and in the fleet's problem box.
    const problems = await (await fetch(`${server.url}/ui/problems`, { headers: auth })).text();
    assert.match(problems, /<tr><td class="path">http:\/\/127\.0\.0\.1:\d+<\/td><td class="num">1<\/td><td class="error path">up\/broken.img: HTTP 500<\/td>/);
    const fleet = await (await fetch(`${server.url}/ui/`, { headers: auth })).text();
    assert.match(fleet, /<li class="error">upstream http:\/\/127\.0\.0\.1:\d+: 1 file failed, latest up\/broken.img: HTTP 500<\/li>/);
  });

  it('says so when the app has no mirror', async (t) => {
    const { app } = await testApp(t, { data: { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n' }, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
    const page = await app.inject({ url: '/ui/mirror', headers: auth });
    assert.match(page.body, /The pull-through mirror is off/);
    assert.equal((await app.inject({ url: '/ui/mirror/live', headers: auth })).body, '');
  });
});
