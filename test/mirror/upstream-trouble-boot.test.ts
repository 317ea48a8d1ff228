/**
 * Upstream trouble is fast and visible to a booting machine: with the mirror's upstream down,
 * silent or missing a file, the script is a wait script naming the file, the upstream and the
 * error (not a download loop ending in HTTP 5xx), it comes back within a small budget, and the
 * device's recorded stage says it waits and why. Against a real server over a socket.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { makeTree, startTestServer } from '../helpers.ts';
import { closedPort, startUpstream, type UpstreamFile } from './support.ts';

const TOKEN = 'upstream-trouble-token-0123456789';
const MAC = '52:54:00:00:00:21';
const DIR = 'amd64-usr/4152.2.0';

async function serve(t: TestContext, upstreamUrl: string, version = 'current') {
  const dataDir = await makeTree(t, { 'profiles/fc.yaml': `flatcar: {channel: stable, version: ${version}}\n`, 'groups/d.yaml': 'profile: fc\n' });
  const cacheDir = await makeTree(t, {});
  const server = await startTestServer(t, { dataDir, assetsDir: dataDir, cacheDir, adminToken: TOKEN }, [`flatcar-stable=${upstreamUrl}`]);
  const script = async () => {
    const started = performance.now();
    const body = await (await request(`${server.url}/ipxe?mac=${MAC}`, { headersTimeout: 20_000 })).body.text();
    return { body, ms: performance.now() - started };
  };
  const device = async () => {
    const res = await request(`${server.url}/api/v1/devices/${MAC}?events=50`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return (await res.body.json()) as { device: { stage: string; problem?: string | null }; events: { detail: { type: string; phase?: string; reason?: string; status?: number } }[] };
  };
  return { server, script, device };
}

describe('upstream trouble reaches the machine\'s screen', () => {
  it('makes a machine wait, naming the upstream, when the release cannot be resolved because the upstream is unreachable', async (t) => {
    const { script, device } = await serve(t, `http://127.0.0.1:${await closedPort()}`);
    const { body } = await script();
    assert.doesNotMatch(body, /\nkernel /);
    assert.match(body, /echo bootdepot: profile fc: cannot resolve Flatcar flatcar-stable current/);
    assert.match(body, /\nchain --autofree /);
    const { device: recorded } = await device();
    assert.equal(recorded.stage, 'waiting');
    assert.match(recorded.problem ?? '', /cannot resolve Flatcar flatcar-stable current/);
  });

  it('answers within the budget when the upstream accepts connections and never answers', async (t) => {
    const upstream = await startUpstream(t, { 'amd64-usr/current/version.txt': { body: Buffer.from(''), fault: { kind: 'hang' } } });
    const { script } = await serve(t, upstream.url);
    const first = await script();
    assert.match(first.body, /echo bootdepot: profile fc: cannot resolve Flatcar flatcar-stable current/);
    assert.ok(first.ms < 10_000, `answered in ${Math.round(first.ms)} ms`);
    const second = await script();
    assert.ok(second.ms < 10_000, `asked again, answered in ${Math.round(second.ms)} ms`);
  });

  it('turns a mirrored file the upstream does not have into a wait script naming it, after the first failure', async (t) => {
    const files: Record<string, UpstreamFile> = {};
    const upstream = await startUpstream(t, files);
    const { script, device } = await serve(t, upstream.url, '4152.2.0');
    const first = await script();
    const kernelUrl = /^kernel (\S+)/m.exec(first.body)?.[1];
    assert.ok(kernelUrl, first.body);
    // The machine tries the kernel: the upstream has no such file.
    const res = await request(kernelUrl);
    await res.body.dump();
    assert.equal(res.statusCode, 404);
    const events = (await device()).events.filter((e) => e.detail.type === 'download');
    assert.ok(events.some((e) => e.detail.phase === 'failed' && e.detail.status === 404), JSON.stringify(events));
    // Asked again, the script waits and says what is missing where, instead of looping on the download.
    const again = await script();
    assert.doesNotMatch(again.body, /\nkernel /);
    assert.match(again.body, new RegExp(`echo bootdepot: profile fc: cannot get /mirror/flatcar-stable/${DIR}/flatcar_production_pxe.vmlinuz from http://127\\.0\\.0\\.1:\\d+/${DIR}/flatcar_production_pxe.vmlinuz now: HTTP 404`));
    const { device: recorded } = await device();
    assert.equal(recorded.stage, 'waiting');
  });
});
