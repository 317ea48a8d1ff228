/**
 * One download path for /assets and /mirror: a mirrored file is counted and recorded exactly as
 * an asset is, a 304 or a HEAD is no download, and the mirror's errors are ordinary answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { makeTree, startTestServer } from '../helpers.ts';
import { bodyOf, startUpstream } from './support.ts';

const TOKEN = 'download-path-token-0123456789';
const MAC = '52:54:00:00:00:31';

function metric(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return Number(found?.split(' ').at(-1) ?? 0);
}

describe('the mirror on the one download path', () => {
  it('counts a mirrored download in /metrics and records a 304 as no download', async (t) => {
    const kernel = bodyOf(256 * 1024);
    const upstream = await startUpstream(t, { 'os/vmlinuz': { body: kernel } });
    const dataDir = await makeTree(t, {
      'profiles/m.json': JSON.stringify({ id: 'm', boot: { kernel: '/mirror/os/os/vmlinuz', initrd: [], args: [] } }),
      'groups/d.yaml': 'profile: m\n',
    });
    const server = await startTestServer(t, { dataDir, assetsDir: dataDir, cacheDir: await makeTree(t, {}), adminToken: TOKEN }, [`os=${upstream.url}`]);
    const script = await (await request(`${server.url}/ipxe?mac=${MAC}`)).body.text();
    const kernelUrl = /^kernel (\S+)/m.exec(script)?.[1];
    assert.ok(kernelUrl, script);

    const first = await request(kernelUrl);
    const etag = String(first.headers.etag);
    assert.equal((await first.body.arrayBuffer()).byteLength, kernel.length);
    const again = await request(kernelUrl, { headers: { 'if-none-match': etag } });
    await again.body.dump();
    assert.equal(again.statusCode, 304);
    const head = await request(kernelUrl, { method: 'HEAD' });
    await head.body.dump();
    const missing = await request(kernelUrl.replace('vmlinuz', 'absent'));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers['content-type'], 'text/plain; charset=utf-8');
    await missing.body.dump();

    const metrics = await (await request(`${server.url}/metrics`)).body.text();
    assert.equal(metric(metrics, 'bootdepot_downloads_total{outcome="complete"}'), 1);
    assert.equal(metric(metrics, 'bootdepot_download_bytes_total'), kernel.length);

    const res = await request(`${server.url}/api/v1/devices/${MAC}?events=50`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const { events } = (await res.body.json()) as { events: { detail: { type: string; path?: string; phase?: string; status?: number } }[] };
    const downloads = events.filter((e) => e.detail.type === 'download').map((e) => [e.detail.path, e.detail.phase, e.detail.status]).reverse();
    assert.deepEqual(downloads, [
      ['/mirror/os/os/vmlinuz', 'started', 200],
      ['/mirror/os/os/vmlinuz', 'completed', 200],
      ['/mirror/os/os/absent', 'started', 200],
      ['/mirror/os/os/absent', 'failed', 404],
    ], 'the 304 and the HEAD are not downloads');
  });
});
