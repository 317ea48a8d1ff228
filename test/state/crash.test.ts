/**
 * Crash safety: bootdepot is killed with SIGKILL while it records events under load; after
 * that, every event it had answered with a 2xx must be in the store.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { PostgresDeviceStore } from '../../src/state/postgres-store.ts';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import type { DeviceStore } from '../../src/state/store.ts';
import { makeTree } from '../helpers.ts';
import { findPostgresBin, postgresOrSkip, startPostgres, type PostgresCluster } from '../support/postgres.ts';

const ROOT = path.join(import.meta.dirname, '../..');

async function startBootdepot(dataDir: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/bootdepot.js'), 'serve', '--data-dir', dataDir, '--assets-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bootdepot did not start:\n${log}`)), 20_000);
    const check = setInterval(() => {
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
      if (m?.[1]) {
        clearInterval(check);
        clearTimeout(timer);
        resolve(m[1]);
      }
    }, 20);
    child.once('exit', () => reject(new Error(`bootdepot exited:\n${log}`)));
  });
  return { child, url };
}

interface Acknowledged {
  reports: { id: number; mac: string; message: string }[];
  scripts: string[];
}

/** Boots and reports from many devices at once until the server dies; returns what got a 2xx. */
async function loadUntilKilled(url: string, child: ChildProcess): Promise<Acknowledged> {
  const acknowledged: Acknowledged = { reports: [], scripts: [] };
  let alive = true;
  const worker = async (w: number) => {
    // Bounded: at most 400 requests per worker, and the server is killed well before.
    for (let i = 0; i < 400 && alive; i++) {
      const mac = `52:54:00:00:${w.toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`;
      try {
        const script = await request(`${url}/ipxe?mac=${mac}`);
        await script.body.dump();
        if (script.statusCode === 200) acknowledged.scripts.push(mac);
        const message = `w${w}-r${i}`;
        const report = await request(`${url}/events?mac=${mac}`, { method: 'POST', body: JSON.stringify({ state: 'running', code: 1000, message }), headers: { 'content-type': 'application/json' } });
        const body = await report.body.text();
        if (report.statusCode === 200) acknowledged.reports.push({ id: (JSON.parse(body) as { event: number }).event, mac, message });
      } catch {
        return; // the server is gone
      }
    }
  };
  const killer = setTimeout(() => {
    alive = false;
    child.kill('SIGKILL');
  }, 1500);
  await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
  clearTimeout(killer);
  child.kill('SIGKILL');
  return acknowledged;
}

async function assertAllThere(store: DeviceStore, acknowledged: Acknowledged): Promise<void> {
  assert.ok(acknowledged.reports.length > 50, `enough load before the kill (${acknowledged.reports.length} reports)`);
  for (const mac of new Set(acknowledged.scripts)) assert.ok(await store.getDevice(mac), `device ${mac} whose script was answered`);
  const byDevice = new Map<string, Set<number>>();
  for (const report of acknowledged.reports) {
    if (!byDevice.has(report.mac)) byDevice.set(report.mac, new Set((await store.listEvents(report.mac, 10_000)).map((e) => e.id)));
    assert.ok(byDevice.get(report.mac)?.has(report.id), `report ${report.message} (event ${report.id}) survived`);
  }
}

describe('kill -9 under load', () => {
  it('keeps every acknowledged event (SQLite)', async (t) => {
    const dataDir = await makeTree(t, { 'groups/d.yaml': 'profile: p\n', 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n' });
    const { child, url } = await startBootdepot(dataDir, {});
    const acknowledged = await loadUntilKilled(url, child);
    const store = new SqliteDeviceStore(path.join(dataDir, 'bootdepot.db'));
    await store.migrate();
    t.after(() => store.close());
    await assertAllThere(store, acknowledged);
    // And the server starts again on the same data.
    const restarted = await startBootdepot(dataDir, {});
    const exited = new Promise((resolve) => restarted.child.once('exit', resolve));
    restarted.child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  describe('PostgreSQL', () => {
    let cluster: PostgresCluster | undefined;
    before(async () => {
      const bin = findPostgresBin();
      if (bin) cluster = await startPostgres(bin);
    });
    after(() => cluster?.stop());

    it('keeps every acknowledged event (PostgreSQL)', async (t: TestContext) => {
      if (!postgresOrSkip(t) || !cluster) return;
      const databaseUrl = await cluster.createDatabase('crash');
      const dataDir = await makeTree(t, { 'groups/d.yaml': 'profile: p\n', 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n' });
      const { child, url } = await startBootdepot(dataDir, { BOOTDEPOT_DATABASE_URL: databaseUrl });
      const acknowledged = await loadUntilKilled(url, child);
      const store = new PostgresDeviceStore({ url: databaseUrl });
      await store.migrate();
      t.after(() => store.close());
      await assertAllThere(store, acknowledged);
    });
  });
});
