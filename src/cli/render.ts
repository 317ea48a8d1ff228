/**
 * `bootdepot render --mac ...`: prints the script a device would get, and on stderr why
 * (group, profile, reason, dropped values). Records nothing; the service need not be running.
 */
import { Command, Option } from 'commander';
import { createAssetReader } from '../assets/asset-root.ts';
import { lastGoodDir } from '../boot/last-good.ts';
import { servedDataDir } from '../site/served-data.ts';
import { loadCatalogue } from '../boot/catalogue.ts';
import { IDENTITY_FIELDS, IdentityError, parseDevice, type QueryInput } from '../common/identity.ts';
import { renderDeviceScript } from '../boot/render.ts';
import { formatProblem } from '../common/problems.ts';
import type { Config } from '../config/schema.ts';
import { openDeviceStore } from '../state/create-store.ts';
import type { NextBoot } from '../state/model.ts';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { PullThroughMirror } from '../mirror/mirror.ts';
import { createSiteAssetReader } from '../mirror/site-assets.ts';
import { checkDirectories, directoriesFor } from '../config/directories.ts';
import { addFlags, CONFIG_FLAG, configFromCommand, configLine, PATH_FLAGS, printProblems } from './options.ts';

const FLAGS = [CONFIG_FLAG, ...PATH_FLAGS, { flag: 'base-url', key: 'baseUrl' as const, description: 'public URL used in the script' }];

const silentMirrorLog = pino({ level: 'silent' });

/** The device's recorded next boot, read from the store when there is one; never written. */
async function recordedNextBoot(config: Config, mac: string): Promise<NextBoot | undefined> {
  if (!config.state.enabled) return undefined;
  // No file: nothing recorded, and nothing to create.
  if (!config.state.databaseUrl && !existsSync(config.state.sqlitePath)) return undefined;
  try {
    const store = await openDeviceStore({ databaseUrl: config.state.databaseUrl, sqlitePath: config.state.sqlitePath, readOnly: true });
    try {
      return (await store.getDevice(mac))?.nextBoot ?? undefined;
    } finally {
      await store.close();
    }
  } catch (error) {
    process.stderr.write(`# cannot read the device store (${(error as Error).message}); rendering without recorded state\n`);
    return undefined;
  }
}

export function renderCommand(): Command {
  const command = new Command('render').description('print the script a device would get (records nothing)');
  addFlags(command, FLAGS);
  for (const field of IDENTITY_FIELDS) command.addOption(new Option(`--${field} <value>`, `device ${field}`));
  command.addOption(new Option('--label <key=value...>', 'any other label the device sends (repeatable)'));
  command.action(async () => {
    const { config, problems, location } = await configFromCommand(command, FLAGS);
    process.stderr.write(`# ${configLine(location)}\n`);
    if (!config) {
      printProblems('bootdepot: the configuration has problems:', problems);
      process.exitCode = 2;
      return;
    }
    const missing = await checkDirectories(directoriesFor(config, 'read'));
    if (missing.length > 0) {
      for (const line of missing) process.stderr.write(`bootdepot: ${line}\n`);
      process.exitCode = 2;
      return;
    }
    const opts = command.opts<Record<string, string | string[] | undefined>>();
    const query: QueryInput = {};
    for (const field of IDENTITY_FIELDS) if (typeof opts[field] === 'string') query[field] = opts[field];
    for (const pair of (opts.label as string[] | undefined) ?? []) {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        process.stderr.write(`bootdepot: --label ${pair}: expected key=value\n`);
        process.exitCode = 2;
        return;
      }
      query[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    let device;
    try {
      device = parseDevice(query, { required: ['mac'] });
    } catch (error) {
      if (!(error instanceof IdentityError)) throw error;
      process.stderr.write(`bootdepot: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    const catalogue = await loadCatalogue((await servedDataDir(config)).dir, undefined, { dir: lastGoodDir(config.state.sqlitePath) });
    const baseUrl = config.server.baseUrl ?? `http://localhost:${config.server.port}`;
    const nextBoot = await recordedNextBoot(config, device.identity.mac ?? '');
    // The mirror resolves Flatcar `current` as serve would (from its cache, else the upstream),
    // read-only: render must not create the cache, keep what it fetched, or remove the temp
    // files of a running server's fills.
    const mirror = await PullThroughMirror.open({ settings: config.mirror, log: silentMirrorLog, readOnly: true });
    let result;
    try {
      // On a site, images are the origin's: asked of the site's cache, else of the origin (HEAD).
      const assets = config.site ? createSiteAssetReader(mirror, { root: config.paths.assets }) : createAssetReader(config.paths.assets);
      result = await renderDeviceScript({ baseUrl, device, catalogue, assets, boot: config.boot, nextBoot: nextBoot ?? null, mirror });
    } finally {
      await mirror.close();
    }
    const { decision } = result;
    const say = (line: string) => process.stderr.write(`# ${line}\n`);
    say(`labels: ${Object.entries(device.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const warning of device.warnings) say(`dropped: ${warning}`);
    if (nextBoot) say(`recorded next boot: ${nextBoot.action}${nextBoot.profile ? ` ${nextBoot.profile}` : ''} (${nextBoot.reason})`);
    say(`decision: ${decision.action}${decision.action === 'profile' ? ` ${decision.profile.id}` : ''} (${decision.reason})`);
    if (result.problem) say(`the machine would wait: ${result.problem}`);
    if (!config.server.baseUrl) say(`base URL ${baseUrl} (set --base-url to the address machines use)`);
    for (const problem of catalogue.problems) say(`data problem: ${formatProblem(problem)}`);
    process.stdout.write(result.body);
    // Non-zero when the machine could not boot as intended: it would wait on a problem, or get a 404.
    if (result.outcome === 'wait' || result.outcome === 'notFound') process.exitCode = 1;
  });
  return command;
}
