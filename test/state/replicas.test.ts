/**
 * Two bootdepot replicas on one PostgreSQL act as one service: a boot that starts on A and
 * continues on B is one history, a next boot set through A is honoured by B, and B's event
 * stream shows what happened on A.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import type { RunningServer } from '../../src/server.ts';
import { makeTree, startTestServer, waitFor } from '../helpers.ts';
import { findPostgresBin, postgresOrSkip, startPostgres, type PostgresCluster } from '../support/postgres.ts';

const TOKEN = 'replica-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAC = '52:54:00:12:34:56';

let cluster: PostgresCluster | undefined;
before(async () => {
  const bin = findPostgresBin();
  if (bin) cluster = await startPostgres(bin);
});
after(() => cluster?.stop());

function replica(t: TestContext, dataDir: string, assetsDir: string, databaseUrl: string): Promise<RunningServer> {
  return startTestServer(t, { dataDir, assetsDir, databaseUrl, adminToken: TOKEN });
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('two replicas on one PostgreSQL', () => {
  it('act as one service', async (t) => {
    if (!postgresOrSkip(t) || !cluster) return;
    const databaseUrl = await cluster.createDatabase('replicas');
    const dataDir = await makeTree(t, {
      'profiles/lk.yaml': 'linuxkit: {name: demo}\ninstallOnce: true\n',
      'profiles/rescue.yaml': 'linuxkit: {name: rescue}\n',
      'groups/d.yaml': 'profile: lk\n',
    });
    const assetsDir = await makeTree(t, { 'linuxkit/demo-kernel': 'K', 'linuxkit/demo-initrd.img': 'I', 'linuxkit/rescue-kernel': 'k', 'linuxkit/rescue-initrd.img': 'i' });
    // Started one after the other: the second finds the schema already migrated.
    const a = await replica(t, dataDir, assetsDir, databaseUrl);
    const b = await replica(t, dataDir, assetsDir, databaseUrl);

    // B's live stream, to see events that happen on A.
    const controller = new AbortController();
    t.after(() => controller.abort());
    const stream = await request(`${b.url}/api/v1/events/stream`, { headers: AUTH, signal: controller.signal });
    let streamed = '';
    stream.body.on('data', (chunk: Buffer) => (streamed += chunk.toString()));
    stream.body.on('error', () => undefined);

    // The script comes from A; the downloads and the beacon go to B.
    const script = await get(`${a.url}/ipxe?mac=${MAC}`);
    assert.equal(script.status, 200);
    const base = /set base-url (\S+)/.exec(script.text)?.[1] ?? '';
    const bootPath = new URL(base).pathname;
    assert.match(bootPath, /^\/b\/[0-9a-f]{32}\/assets\/linuxkit$/);
    assert.equal((await get(`${b.url}${bootPath}/demo-kernel`)).status, 200);
    assert.equal((await get(`${b.url}${bootPath}/demo-initrd.img`)).status, 200);
    const beacon = new URL(/imgfetch --name bootdepot-beacon (\S+)/.exec(script.text)?.[1] ?? '').pathname;
    assert.equal((await get(`${b.url}${beacon}`)).status, 200);
    // The OS reports to A.
    const report = await request(`${a.url}/events?mac=${MAC}`, { method: 'POST', body: '{"state":"succeeded","code":1000}', headers: { 'content-type': 'application/json' } });
    assert.equal(report.statusCode, 200);
    await report.body.dump();

    // One history, seen from B.
    const shown = JSON.parse((await get(`${b.url}/api/v1/devices/${MAC}?events=20`, AUTH)).text) as { device: { stage: string; bootCount: number; nextBoot: { action: string } | null }; events: { detail: { type: string; role?: string; phase?: string } }[] };
    assert.equal(shown.device.stage, 'succeeded');
    assert.equal(shown.device.bootCount, 1);
    assert.equal(shown.device.nextBoot?.action, 'local', 'installOnce applied by A, visible on B');
    assert.deepEqual(
      shown.events.map((e) => (e.detail.type === 'download' ? `${e.detail.role}:${e.detail.phase}` : e.detail.type)).reverse(),
      ['script', 'kernel:started', 'kernel:completed', 'initrd:started', 'initrd:completed', 'beacon', 'report', 'next-boot'],
    );
    assert.match((await get(`${b.url}/ipxe?mac=${MAC}`)).text, /local disk/);

    // A next boot set through A is honoured by B.
    const put = await request(`${a.url}/api/v1/devices/${MAC}/next-boot`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'once', profile: 'rescue' }) });
    assert.equal(put.statusCode, 200);
    await put.body.dump();
    assert.match((await get(`${b.url}/ipxe?mac=${MAC}`)).text, /LinuxKit rescue/);

    // B streamed what A recorded.
    await waitFor(() => streamed.includes('event: next-boot') && streamed.includes('event: report'), 5000, 'events from A on B\'s stream');
  });
});
