/** An origin and a site bootdepot on loopback, each a whole server over its own temp directories. */
import path from 'node:path';
import type { TestContext } from 'node:test';
import { writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadConfig, type Override } from '../../src/config/loader.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { siteToken } from '../../src/site/tokens.ts';
import { makeTree, silentLogger } from '../helpers.ts';

export const ADMIN = 'origin-admin-token-0123456789';
export const SITE_ADMIN = 'site-admin-token-0123456789ab';
export const SITE = 'rack-7';
export const MAC = '52:54:00:00:00:01';

/** A profile that boots kernels from an absolute URL (nothing to check in /assets) and a group for every machine. */
export function dataFor(version: string): Record<string, string> {
  return {
    [`profiles/${version}.json`]: JSON.stringify({ boot: { kernel: `http://images.example.invalid/${version}/vmlinuz`, initrd: [`http://images.example.invalid/${version}/initrd.img`], args: ['console=ttyS0'] } }),
    'groups/all.yaml': `profile: ${version}\n`,
  };
}

export interface Started {
  server: RunningServer;
  dir: string;
  port: number;
}

function portOf(server: RunningServer): number {
  return Number(new URL(server.url).port);
}

async function start(t: TestContext, dir: string, yaml: string, overrides: Override[], logger: Logger): Promise<RunningServer> {
  const file = path.join(dir, 'bootdepot.yaml');
  await writeFile(file, yaml);
  const { config, problems } = loadConfig({ file: { path: file, text: yaml }, overrides, cwd: dir });
  if (!config) throw new Error(`bad test config: ${JSON.stringify(problems)}`);
  const server = await startServer(config, logger);
  let closed = false;
  t.after(async () => {
    if (!closed) await server.close();
  });
  const close = server.close.bind(server);
  server.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  return server;
}

/** The origin: data in `data/`, an admin token, SQLite boot state. `port` to start it again where it was. */
export async function startOrigin(t: TestContext, data: Record<string, string>, options: { dir?: string; port?: number; logger?: Logger; databaseUrl?: string } = {}): Promise<Started> {
  const dir = options.dir ?? (await makeTree(t, { ...Object.fromEntries(Object.entries(data).map(([k, v]) => [`data/${k}`, v])), 'assets/.keep': '' }));
  const state = options.databaseUrl ? `state: {databaseUrl: "${options.databaseUrl}"}\n` : '';
  const yaml = `server: {host: 127.0.0.1, port: ${options.port ?? 0}}\npaths: {data: data, assets: assets}\nadmin: {token: ${ADMIN}}\n${state}`;
  const server = await start(t, dir, yaml, [], options.logger ?? silentLogger);
  return { server, dir, port: portOf(server) };
}

/** A site of `origin`: its own data directory (store, copies), the site token in a file. */
export async function startSite(t: TestContext, originUrl: string, options: { dir?: string; token?: string; logger?: Logger; forwardEvents?: boolean } = {}): Promise<Started> {
  const dir = options.dir ?? (await makeTree(t, { 'data/.keep': '', 'assets/.keep': '', 'site-token': `${options.token ?? siteToken(ADMIN, SITE)}\n` }));
  const yaml = [
    'server: {host: 127.0.0.1, port: 0}',
    'paths: {data: data, assets: assets}',
    `admin: {token: ${SITE_ADMIN}}`,
    // Rounds run when the test says (and once at start): the interval never comes.
    `site: {name: ${SITE}, origin: "${originUrl}", tokenFile: site-token, syncIntervalSeconds: 86400, forwardEvents: ${options.forwardEvents ?? true}}`,
    '',
  ].join('\n');
  const server = await start(t, dir, yaml, [], options.logger ?? silentLogger);
  return { server, dir, port: portOf(server) };
}

/** One site round (sync, forward, heartbeat), after the one running (the first starts with the server). */
export async function round(site: RunningServer): Promise<void> {
  const agent = site.site;
  if (!agent) throw new Error('not a site');
  await agent.round();
  await agent.round();
}

export async function json(url: string, token: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined, headers: response.headers };
}

export async function ipxe(server: RunningServer, mac = MAC): Promise<string> {
  const response = await fetch(`${server.url}/ipxe?mac=${mac}`);
  return response.text();
}
