/**
 * Connections a hostile client opens and holds: slow bodies are closed, the server keeps
 * answering others meanwhile, a shutdown is not held up, and beyond the soft connection limit
 * only probes and the admin API are served. Over real loopback sockets (counts bounded).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { captureLogger, testApp, waitFor } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const TOKEN = 'admin-token-0123456789abcdef';
const DATA = { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'groups/default.yaml': 'profile: p\n' };

async function listening(t: TestContext, yaml: string, extra: Partial<Parameters<typeof testApp>[1]> = {}) {
  const built = await testApp(t, { data: DATA, assets: { k: 'kernel' }, yaml, ...extra });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = built.app.server.address() as net.AddressInfo;
  return { ...built, port };
}

interface HeldConnections {
  sockets: net.Socket[];
  /** Sockets the server closed (end or close seen). */
  closed: () => number;
}

/** Opens `count` connections that each send `text` (or nothing) and then stay silent. */
async function hold(port: number, count: number, text: string): Promise<HeldConnections> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let start = 0; start < count; start += 200) {
    const batch = Array.from({ length: Math.min(200, count - start) }, () =>
      new Promise<void>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          if (text) socket.write(text);
          resolve();
        });
        let counted = false;
        const gone = () => {
          if (!counted) closed++;
          counted = true;
          resolve();
        };
        socket.on('end', gone);
        socket.on('close', gone);
        socket.on('error', () => {});
        // Whatever the server answers (408, 503) is read and dropped, so its close is seen.
        socket.resume();
        sockets.push(socket);
      }),
    );
    await Promise.all(batch);
  }
  return { sockets, closed: () => closed };
}

function slowPost(path: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
}

/** One GET on a connection of its own; resolves with the status and headers. */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${path}: no answer within 10 s`)));
  });
}

function closeAll(t: TestContext, held: HeldConnections): void {
  t.after(() => {
    for (const socket of held.sockets) socket.destroy();
  });
}

async function openConnections(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

describe('clients that hold connections', () => {
  it('2000 POST /events that never send their body are closed after server.bodyTimeout, while /ipxe and /healthz are answered', async (t) => {
    const { port } = await listening(t, 'server:\n  bodyTimeout: 2\n');
    const started = performance.now();
    const held = await hold(port, 2000, slowPost(`/events?mac=${MAC}`));
    closeAll(t, held);
    const openedMs = performance.now() - started;
    // While they are held, a machine still gets its script and the probe its answer.
    const answered: number[] = [];
    for (let i = 0; i < 10; i++) {
      const before = performance.now();
      const script = await get(port, `/ipxe?mac=${MAC}`);
      assert.equal(script.status, 200);
      assert.match(script.body, /^#!ipxe\n/);
      assert.equal((await get(port, '/healthz')).status, 200);
      answered.push(performance.now() - before);
    }
    const stillHeld = 2000 - held.closed();
    await waitFor(() => held.closed() === 2000, 20_000, 'the server to close every slow connection');
    t.diagnostic(`2000 slow POSTs opened in ${Math.round(openedMs)} ms; ${stillHeld} still held while 10 x (/ipxe + /healthz) took ${answered.map((ms) => Math.round(ms)).join(', ')} ms; all closed by the server ${Math.round(performance.now() - started)} ms after the first`);
  });

  it('a connection that sends nothing, or headers only part-way, is closed after server.headersTimeout', async (t) => {
    const { port } = await listening(t, 'server:\n  headersTimeout: 1\n');
    const silent = await hold(port, 50, '');
    const partial = await hold(port, 50, 'GET /ipxe?mac=52:54:00:12:34:56 HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    closeAll(t, silent);
    closeAll(t, partial);
    await waitFor(() => silent.closed() === 50 && partial.closed() === 50, 15_000, 'slow-header connections to be closed');
  });

  it('a download that keeps moving is not cut by idleTimeout, a stalled one is', async (t) => {
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const { app, port } = await listening(t, 'server:\n  idleTimeout: 5\n', { assets: { 'big.img': big } });
    // Reading slowly: about 1 MiB every 0.8 s, so the whole file takes longer than idleTimeout.
    const received = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/assets/big.img', agent: false }, (response) => {
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes % (1024 * 1024) < chunk.length) {
            response.pause();
            setTimeout(() => response.resume(), 800).unref();
          }
        });
        response.on('end', () => resolve(bytes));
        response.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(received, big.length);
    // A client that reads nothing after the headers: once the socket buffers are full the
    // server's writes stop moving, and after idleTimeout the download is cut (seen server-side).
    const stalled = net.connect({ host: '127.0.0.1', port }, () => stalled.write('GET /assets/big.img HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    stalled.pause();
    stalled.on('error', () => {});
    t.after(() => stalled.destroy());
    await waitFor(async () => /^bootdepot_downloads_total\{outcome="aborted"\} 1$/m.test((await app.inject({ url: '/metrics' })).body), 20_000, 'the stalled download to be cut');
    assert.match((await app.inject({ url: '/metrics' })).body, /^bootdepot_downloads_total\{outcome="complete"\} 1$/m);
  });

  it('shutdown finishes after server.shutdownDrain while slow clients hold requests open', async (t) => {
    const { app, port } = await listening(t, 'server:\n  bodyTimeout: 600\n  idleTimeout: 600\n  shutdownDrain: 1\n');
    const held = await hold(port, 300, slowPost(`/events?mac=${MAC}`));
    closeAll(t, held);
    await waitFor(async () => (await openConnections(app)) >= 300, 5000, 'the server to see the connections');
    const started = performance.now();
    let closedInTime = false;
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([
      app.close().then(() => (closedInTime = true)),
      new Promise((resolve) => (deadline = setTimeout(resolve, 15_000))),
    ]);
    clearTimeout(deadline);
    assert.ok(closedInTime, 'app.close() still waiting for slow clients 15 s later');
    await waitFor(() => held.closed() === 300, 5000, 'every held connection to be closed');
    t.diagnostic(`close() with 300 slow POSTs held took ${Math.round(performance.now() - started)} ms (shutdownDrain 1 s)`);
  });

  it('beyond maxConnections - reservedConnections only probes and the admin API are served; beyond maxConnections connections are refused and logged', async (t) => {
    const { logger, lines } = captureLogger();
    const { app, port } = await listening(t, 'server:\n  maxConnections: 60\n  reservedConnections: 20\n', { logger, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
    const idle = await hold(port, 45, '');
    closeAll(t, idle);
    await waitFor(async () => (await openConnections(app)) >= 45, 5000, 'the server to see the connections');
    const refused = await get(port, `/ipxe?mac=${MAC}`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '5');
    assert.match(refused.body, /connection limit/);
    assert.equal((await get(port, '/healthz')).status, 200);
    assert.equal((await get(port, '/readyz')).status, 200);
    assert.equal((await get(port, '/metrics')).status, 200);
    assert.equal((await get(port, '/api/v1/devices', { authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal((await get(port, '/api/v1/devices', { authorization: 'Bearer wrong-token-0123456789' })).status, 503);
    // Fill up to the hard limit: the next connections are closed by the server at once.
    const rest = await hold(port, 15, '');
    closeAll(t, rest);
    await waitFor(async () => (await openConnections(app)) >= 60, 5000, 'the server to reach maxConnections');
    const beyond = await hold(port, 5, '');
    closeAll(t, beyond);
    await waitFor(() => beyond.closed() === 5, 5000, 'connections beyond maxConnections to be refused');
    assert.ok(lines.some((line) => /server\.maxConnections reached/.test(line.msg)), 'refusals are logged');
    assert.ok(lines.some((line) => /kept for probes and the admin API/.test(line.msg)), '503s are logged');
    const metrics = await app.inject({ url: '/metrics' });
    assert.match(metrics.body, /^bootdepot_limited_total\{reason="max-connections"\} [1-9]/m);
    assert.match(metrics.body, /^bootdepot_limited_total\{reason="reserved-connections"\} [1-9]/m);
  });
});
