import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTree, startTestServer, testApp } from '../helpers.ts';

describe('GET /readyz', () => {
  it('is 200 {"status":"ready"} when the device store is open, beside /healthz', async (t) => {
    const dataDir = await makeTree(t, {});
    const server = await startTestServer(t, { dataDir, assetsDir: await makeTree(t, {}), cacheDir: await makeTree(t, {}) });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(ready.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await ready.json(), { status: 'ready' });
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
  });

  it('is ready when boot state is off: there is no store to wait for', async (t) => {
    const { app } = await testApp(t, { data: {}, store: false });
    const ready = await app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready' });
  });
});
