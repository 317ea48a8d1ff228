/**
 * A throwaway PostgreSQL cluster for tests: Debian's server binaries, a temp data directory
 * owned by the `postgres` user (the server refuses to run as root), a free loopback port, and
 * a reliable stop. Skips loudly when PostgreSQL is not installed, fails instead under CI=true.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from './net.ts';

const run = promisify(execFile);

export function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

/** The PostgreSQL bin directory, or undefined after skipping the test (failing under CI=true). */
export function postgresOrSkip(t: TestContext): string | undefined {
  const bin = findPostgresBin();
  if (bin) return bin;
  const reason = 'PostgreSQL server not installed (apt-get install postgresql)';
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must run this test`);
  process.stderr.write(`\n*** SKIPPED: ${t.name}: ${reason} ***\n`);
  t.skip(reason);
  return undefined;
}


export interface PostgresCluster {
  url: string;
  /** A fresh, empty database on the cluster. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Runs a command as the postgres user when we are root (the server refuses root). */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

export async function startPostgres(bin: string): Promise<PostgresCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bootdepot-pg-'));
  if (userInfo().uid === 0) {
    const pgUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const pgGroup = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    await chown(dir, Number(pgUser.stdout.trim()), Number(pgGroup.stdout.trim()));
  }
  await chmod(dir, 0o700);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const [initCmd, initArgs] = asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  await run(initCmd, initArgs, { timeout: 60_000 });
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const [startCmd, startArgs] = asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  await run(startCmd, startArgs, { timeout: 90_000 });
  const stop = async () => {
    const [stopCmd, stopArgs] = asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
    await run(stopCmd, stopArgs, { timeout: 60_000 }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  // Last resort: never leave a server behind if the test process dies.
  const onExit = () => {
    const [stopCmd, stopArgs] = asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
    spawnSync(stopCmd, stopArgs, { timeout: 20_000 });
  };
  process.once('exit', onExit);
  const base = `postgres://postgres@127.0.0.1:${port}`;
  return {
    url: `${base}/postgres`,
    async createDatabase(name) {
      const [psqlCmd, psqlArgs] = asPostgres(path.join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', `CREATE DATABASE "${name}"`]);
      await run(psqlCmd, psqlArgs, { timeout: 30_000 });
      return `${base}/${name}`;
    },
    async stop() {
      process.off('exit', onExit);
      await stop();
    },
  };
}
