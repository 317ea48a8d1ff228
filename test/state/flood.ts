/**
 * A flood of script requests with made-up MACs against the real app on SQLite, while a second
 * client keeps asking for /healthz and its own script over loopback. Shared by the store test
 * (test/state/flood.test.ts) and `npm run bench -- store`.
 *
 * The flood goes through app.inject (no sockets: the client costs nothing, so the server is
 * all that is measured), each request from its own made-up address, as a whole subnet would
 * send them: a per-address rate limit does not bound what the store keeps, the store must.
 * Bounded: `requests` in all, `concurrency` at a time, and the second client stops with it.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { makeTree, testApp } from '../helpers.ts';

export interface FloodResult {
  requests: number;
  seconds: number;
  /** Script answers by status. */
  statuses: Record<number, number>;
  databaseBytes: number;
  walBytes: number;
  /** Largest WAL seen while the flood ran (sampled every 100 ms). */
  maxWalBytes: number;
  devices: number;
  events: number;
  /** The second client's answers: all 200, and how long they took. */
  probe: { asked: number; ok: number; p50Ms: number; p99Ms: number; maxMs: number };
  /** Longest the event loop was held, during the flood. */
  maxEventLoopDelayMs: number;
}

const randomMac = () => `02:${Array.from({ length: 5 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':')}`;
const randomAddress = () => `10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN);
}

async function fileSize(file: string): Promise<number> {
  return (await stat(file).catch(() => ({ size: 0 }))).size;
}

export interface FloodOptions {
  requests: number;
  /** Requests in flight at once (default 32). */
  concurrency?: number;
  /** Spread the requests evenly over this many seconds; default: as fast as they are answered. */
  seconds?: number;
}

/** `t.after` closes what the flood starts (a benchmark passes a context with only `after`). */
export async function floodScripts(t: TestContext, options: FloodOptions): Promise<FloodResult> {
  const dir = await makeTree(t, {});
  const file = path.join(dir, 'bootdepot.db');
  const store = new SqliteDeviceStore(file);
  await store.migrate();
  const { app, bootState } = await testApp(t, {
    data: { 'profiles/main.yaml': 'boot: {kernel: /assets/k}\n', 'groups/default.yaml': 'profile: main\n' },
    assets: { k: 'kernel' },
    store,
  });
  // After testApp's own: the app and recorder close first, then the store.
  t.after(() => store.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  let flooding = true;
  let maxWalBytes = 0;
  const sampler = setInterval(() => {
    void fileSize(`${file}-wal`).then((size) => (maxWalBytes = Math.max(maxWalBytes, size)));
  }, 100);

  const latencies: number[] = [];
  let asked = 0;
  let ok = 0;
  const probe = (async () => {
    // At most one pair of requests every 50 ms, and never more than 10,000.
    while (flooding && asked < 10_000) {
      for (const target of ['/healthz', '/ipxe?mac=52:54:00:aa:bb:cc']) {
        const started = performance.now();
        asked += 1;
        const res = await request(`${url}${target}`, { headersTimeout: 30_000, bodyTimeout: 30_000 }).catch(() => undefined);
        if (res) {
          await res.body.text();
          if (res.statusCode === 200) ok += 1;
        }
        latencies.push(performance.now() - started);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();

  const statuses: Record<number, number> = {};
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = performance.now();
  let sent = 0;
  const spacingMs = options.seconds ? (options.seconds * 1000) / options.requests : 0;
  const worker = async () => {
    while (sent < options.requests) {
      const due = started + sent * spacingMs;
      sent += 1;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const res = await app.inject({ url: `/ipxe?mac=${randomMac()}&arch=x86_64&platform=pcbios`, remoteAddress: randomAddress() });
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  await bootState?.recorder.flush();
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  flooding = false;
  await probe;
  await store.settled();
  clearInterval(sampler);

  const { devices, events } = store.counts();
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: options.requests,
    seconds,
    statuses,
    databaseBytes: await fileSize(file),
    walBytes: await fileSize(`${file}-wal`),
    maxWalBytes: Math.max(maxWalBytes, await fileSize(`${file}-wal`)),
    devices,
    events,
    probe: { asked, ok, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN },
    maxEventLoopDelayMs: delay.max / 1e6,
  };
}
