/**
 * A Flatcar profile boots through the mirror, end to end over HTTP: `current` resolved once,
 * the script's kernel and initrd URLs under /b/<boot>/mirror/, three machines at once fetching
 * them cold with one upstream request per file, and the downloads in each device's history.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { makeTree, startTestServer } from '../helpers.ts';
import { bodyOf, sha256, sha512, startUpstream } from './support.ts';

const TOKEN = 'flatcar-boot-token-0123456789';
const DIR = 'amd64-usr/4152.2.0';

function digests(name: string, body: Buffer): Buffer {
  return Buffer.from(`# SHA512 HASH\n${sha512(body)}  ${name}\n`);
}

describe('Flatcar through the mirror', () => {
  it('boots three machines from one upstream transfer per file, each download on its boot', async (t) => {
    const kernel = bodyOf(3 * 1024 * 1024);
    const initrd = bodyOf(7 * 1024 * 1024);
    const upstream = await startUpstream(t, {
      'amd64-usr/current/version.txt': { body: Buffer.from('FLATCAR_VERSION=4152.2.0\nFLATCAR_BUILD=4152\n') },
      [`${DIR}/flatcar_production_pxe.vmlinuz`]: { body: kernel },
      [`${DIR}/flatcar_production_pxe.vmlinuz.DIGESTS`]: { body: digests('flatcar_production_pxe.vmlinuz', kernel) },
      [`${DIR}/flatcar_production_pxe_image.cpio.gz`]: { body: initrd },
      [`${DIR}/flatcar_production_pxe_image.cpio.gz.DIGESTS`]: { body: digests('flatcar_production_pxe_image.cpio.gz', initrd) },
    });
    const dataDir = await makeTree(t, { 'profiles/fc.yaml': 'flatcar: {channel: stable, version: current}\n', 'groups/d.yaml': 'profile: fc\n' });
    const cacheDir = await makeTree(t, {});
    const server = await startTestServer(t, { dataDir, assetsDir: dataDir, cacheDir, adminToken: TOKEN }, [`flatcar-stable=${upstream.url}`]);

    const macs = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];
    const boots = await Promise.all(
      macs.map(async (mac) => {
        const script = await (await request(`${server.url}/ipxe?mac=${mac}`)).body.text();
        const urls = [...script.matchAll(/^(?:kernel|initrd) (\S+)/gm)].map((m) => m[1] ?? '');
        assert.equal(urls.length, 2, script);
        for (const url of urls) assert.match(url, new RegExp(`/b/[0-9a-f]{32}/mirror/flatcar-stable/${DIR}/flatcar_production_pxe`));
        // Each machine downloads kernel and initrd at the same time as the others.
        const bodies = await Promise.all(urls.map(async (url) => Buffer.from(await (await request(url)).body.arrayBuffer())));
        return { mac, bodies };
      }),
    );
    for (const { bodies } of boots) {
      assert.equal(sha256(bodies[0] ?? Buffer.alloc(0)), sha256(kernel));
      assert.equal(sha256(bodies[1] ?? Buffer.alloc(0)), sha256(initrd));
    }
    const gets = (path: string) => upstream.requestsFor(path).filter((r) => r.method === 'GET').length;
    assert.equal(gets(`${DIR}/flatcar_production_pxe.vmlinuz`), 1);
    assert.equal(gets(`${DIR}/flatcar_production_pxe_image.cpio.gz`), 1);
    assert.equal(gets('amd64-usr/current/version.txt'), 1, 'current resolved once, then from the cache');

    for (const mac of macs) {
      const res = await request(`${server.url}/api/v1/devices/${mac}?events=20`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const { device, events } = (await res.body.json()) as { device: { stage: string }; events: { detail: { type: string; role?: string; phase?: string; bytes?: number } }[] };
      assert.equal(device.stage, 'initrd');
      const done = events.filter((e) => e.detail.type === 'download' && e.detail.phase === 'completed');
      assert.deepEqual(done.map((e) => e.detail.role).sort(), ['initrd', 'kernel'], mac);
      assert.equal(done.find((e) => e.detail.role === 'initrd')?.detail.bytes, initrd.length);
    }
  });
});
