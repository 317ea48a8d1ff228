/**
 * `bootdepot warm MIRROR/PATH...`: ask a running bootdepot to fill its mirror cache ahead of
 * boots, e.g. `bootdepot warm flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz`.
 * The server streams progress as JSON lines; a terminal gets a bar per file, anything else a
 * line per result, and every file that could not be had is reported with its reason. The summary
 * (`1 of 2 file(s) warmed; 1 failed`) goes to stdout; the exit code is 1 when any file failed.
 */
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { request } from 'undici';
import { envName } from './options.ts';
import type { WarmEvent, WarmResult, WarmSummary } from '../mirror/mirror.ts';

class WarmError extends Error {}

type WarmLine = WarmEvent | { type: 'summary'; summary: WarmSummary };

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}

function errorText(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: string }).error ?? text);
  } catch {
    return text;
  }
}

/** Calls the warm API and feeds each JSON line to `onLine`; returns the summary. */
export async function warmOverHttp(server: string, token: string, paths: string[], onLine: (line: WarmLine) => void): Promise<WarmSummary> {
  const res = await request(`${server}/api/v1/mirror/warm`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ paths }),
  }).catch((error: unknown) => {
    throw new WarmError(`cannot reach ${server}: ${(error as Error).message}`);
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    if (res.statusCode === 401) throw new WarmError(`${server} rejected the token (401)`);
    throw new WarmError(`warm failed: ${res.statusCode} ${errorText(text)}`);
  }
  let summary: WarmSummary | undefined;
  let pending = '';
  const take = (text: string) => {
    if (text.trim() === '') return;
    const line = JSON.parse(text) as WarmLine;
    if (line.type === 'summary') summary = line.summary;
    onLine(line);
  };
  try {
    for await (const chunk of res.body) {
      pending += (chunk as Buffer).toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) take(line);
    }
  } catch (error) {
    throw new WarmError(`the connection to ${server} broke: ${(error as Error).message}`);
  }
  take(pending);
  if (!summary) throw new WarmError(`${server} ended the answer without a summary`);
  return summary;
}

function describe(result: WarmResult): string {
  switch (result.outcome) {
    case 'filled':
      return `fetched ${result.path} (${formatBytes(result.bytes)})`;
    case 'cached':
      return `already cached ${result.path} (${formatBytes(result.bytes)})`;
    case 'not-found':
      return `failed ${result.path}: ${result.error ?? 'not found'}`;
    case 'failed':
      return `failed ${result.path}: ${result.error ?? 'unknown error'}`;
  }
}

/** `1 of 2 file(s) warmed; 1 failed (1 fetched, 0 already cached, 1 not found; 100.0 KiB in the cache)`. */
export function summaryLine(summary: WarmSummary): string {
  const warmed = summary.filled + summary.cached;
  const failed = summary.failed + summary.notFound;
  return `${warmed} of ${summary.requested} file(s) warmed; ${failed} failed (${summary.filled} fetched, ${summary.cached} already cached, ${summary.notFound} not found; ${formatBytes(summary.bytes)} in the cache)`;
}

async function warm(server: string, token: string, paths: string[]): Promise<WarmSummary> {
  const bars = process.stderr.isTTY
    ? new cliProgress.MultiBar({ format: ' {bar} {percentage}% | {value}/{total} bytes | {name}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  const perPath = new Map<string, cliProgress.SingleBar>();
  const show = (line: WarmLine) => {
    if (line.type === 'progress' && bars) {
      let bar = perPath.get(line.path);
      if (!bar) {
        bar = bars.create(line.total ?? 0, 0, { name: line.path });
        perPath.set(line.path, bar);
      }
      if (line.total !== null) bar.setTotal(line.total);
      bar.update(line.bytes);
    } else if (line.type === 'result') {
      if (bars) bars.log(`${describe(line.result)}\n`);
      else process.stderr.write(`${describe(line.result)}\n`);
    }
  };
  try {
    return await warmOverHttp(server, token, paths, show);
  } finally {
    bars?.stop();
  }
}

export function warmCommand(): Command {
  const command = new Command('warm')
    .description('fill the mirror cache of a running bootdepot ahead of boots')
    .addOption(new Option('--server <url>', 'bootdepot URL').env(envName('server')))
    .addOption(new Option('--token <token>', 'admin token').env(envName('admin-token')))
    .argument('<paths...>', 'MIRROR/PATH of each file, e.g. flatcar-stable/amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz')
    .action(async (paths: string[]) => {
      try {
        const opts = command.optsWithGlobals<{ server?: string; token?: string }>();
        if (!opts.server) throw new WarmError(`--server (or ${envName('server')}) is required, e.g. http://10.0.0.5:8080`);
        if (!opts.token) throw new WarmError(`--token (or ${envName('admin-token')}) is required`);
        const summary = await warm(opts.server.replace(/\/+$/, ''), opts.token, paths);
        process.stdout.write(`${summaryLine(summary)}\n`);
        if (summary.failed > 0 || summary.notFound > 0) process.exitCode = 1;
      } catch (error) {
        if (!(error instanceof WarmError)) throw error;
        process.stderr.write(`bootdepot warm: ${error.message}\n`);
        process.exitCode = 1;
      }
    });
  return command;
}
