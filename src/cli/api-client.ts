/**
 * Talking to a running bootdepot's admin API from the command line: where it is (--server /
 * BOOTDEPOT_SERVER), the token (--token / BOOTDEPOT_ADMIN_TOKEN), and errors that say what to do.
 */
import { Option, type Command } from 'commander';
import { request } from 'undici';
import { envName } from './options.ts';

/** A failure to report to the operator in one line, with exit status 1. */
export class CliError extends Error {}

export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(new Option('--server <url>', 'bootdepot URL, e.g. http://10.0.0.5:8080').env(envName('server')))
    .addOption(new Option('--token <token>', 'admin token').env(envName('admin-token')));
}

export interface Connection {
  server: string;
  token: string;
}

export function connection(command: Command): Connection {
  const opts = command.optsWithGlobals<{ server?: string; token?: string }>();
  if (!opts.server) throw new CliError(`--server (or ${envName('server')}) is required, e.g. http://10.0.0.5:8080`);
  if (!opts.token) throw new CliError(`--token (or ${envName('admin-token')}) is required`);
  return { server: opts.server.replace(/\/+$/, ''), token: opts.token };
}

/** The server's own words for a failed answer: its JSON `error`, or the body as it is. */
export function serverMessage(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: string };
    if (parsed.error) return `${status} ${parsed.error}`;
  } catch {
    // not JSON
  }
  return `${status} ${text.trim().slice(0, 300)}`;
}

export async function apiJson<T>(conn: Connection, method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await request(`${conn.server}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${conn.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }).catch((error: unknown) => {
    throw new CliError(`cannot reach ${conn.server}: ${(error as Error).message}`);
  });
  const text = await res.body.text();
  if (res.statusCode === 401) throw new CliError(`${conn.server} rejected the token (401)`);
  if (res.statusCode >= 300) throw new CliError(serverMessage(res.statusCode, text));
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Runs a command body, turning CliError into a message and exit status 1. */
export async function runCli(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    process.stderr.write(`bootdepot: ${error.message}\n`);
    process.exitCode = 1;
  }
}
