/**
 * `bootdepot render --mac ...`: prints the script a device would get, and on stderr why
 * (group, profile, reason, dropped values). Records nothing; the service need not be running.
 */
import { Command, Option } from 'commander';
import { createAssetReader } from '../assets/asset-root.ts';
import { loadCatalogue } from '../boot/catalogue.ts';
import { IDENTITY_FIELDS, IdentityError, parseDevice, type QueryInput } from '../boot/identity.ts';
import { renderDeviceScript } from '../boot/render.ts';
import { formatProblem } from '../common/problems.ts';
import { addFlags, CONFIG_FLAG, configFromCommand, PATH_FLAGS, printProblems } from './options.ts';

const FLAGS = [CONFIG_FLAG, ...PATH_FLAGS, { flag: 'base-url', key: 'baseUrl' as const, description: 'public URL used in the script' }];

export function renderCommand(): Command {
  const command = new Command('render').description('print the script a device would get (records nothing)');
  addFlags(command, FLAGS);
  for (const field of IDENTITY_FIELDS) command.addOption(new Option(`--${field} <value>`, `device ${field}`));
  command.addOption(new Option('--label <key=value...>', 'any other label the device sends (repeatable)'));
  command.action(async () => {
    const { config, problems } = await configFromCommand(command, FLAGS);
    if (!config) {
      printProblems('bootdepot: the configuration has problems:', problems);
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
    const catalogue = await loadCatalogue(config.paths.data);
    const baseUrl = config.server.baseUrl ?? `http://localhost:${config.server.port}`;
    const result = await renderDeviceScript({ baseUrl, device, catalogue, assets: createAssetReader(config.paths.assets), boot: config.boot });
    const { decision } = result;
    const say = (line: string) => process.stderr.write(`# ${line}\n`);
    say(`labels: ${Object.entries(device.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const warning of device.warnings) say(`dropped: ${warning}`);
    say(`decision: ${decision.action}${decision.action === 'profile' ? ` ${decision.profile.id}` : ''} (${decision.reason})`);
    if (result.problem) say(`the machine would wait: ${result.problem}`);
    if (!config.server.baseUrl) say(`base URL ${baseUrl} (set --base-url to the address machines use)`);
    for (const problem of catalogue.problems) say(`data problem: ${formatProblem(problem)}`);
    process.stdout.write(result.body);
    if (result.outcome !== 'boot') process.exitCode = 1;
  });
  return command;
}
