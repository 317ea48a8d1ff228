/**
 * `bootdepot check`: validates the config, every data file and template, and renders every
 * group's script and Ignition config for a machine that group would match, so a missing
 * image or a template that fails on a group's metadata is found before a machine finds it.
 * Lists every problem with its file and location; exits 1 if there is any (warnings alone: 0).
 */
import { Command } from 'commander';
import { createAssetReader } from '../assets/asset-root.ts';
import { auditCatalogue } from '../boot/audit.ts';
import { lastGoodDir } from '../boot/last-good.ts';
import { loadCatalogue, type Catalogue } from '../boot/catalogue.ts';
import { formatProblem, isWarning, type Problem } from '../common/problems.ts';
import type { Config } from '../config/schema.ts';
import { checkDirectories, directoriesFor } from '../config/directories.ts';
import { PullThroughMirror } from '../mirror/mirror.ts';
import { createSiteAssetReader } from '../mirror/site-assets.ts';
import { servedDataDir } from '../site/served-data.ts';
import { addFlags, CONFIG_FLAG, configFromCommand, configLine, PATH_FLAGS } from './options.ts';

const FLAGS = [CONFIG_FLAG, ...PATH_FLAGS];

/**
 * Renders what each group's machines would get and reports what would make them wait. On a site,
 * images are the origin's: looked up in the site's cache (read-only), else asked of the origin.
 */
export async function checkRendering(config: Config, catalogue: Catalogue): Promise<Problem[]> {
  if (!config.site) return auditCatalogue({ config, catalogue, assets: createAssetReader(config.paths.assets) });
  const mirror = await PullThroughMirror.open({ settings: config.mirror, readOnly: true });
  try {
    return await auditCatalogue({ config, catalogue, assets: createSiteAssetReader(mirror, { root: config.paths.assets }) });
  } finally {
    await mirror.close();
  }
}

export function checkCommand(): Command {
  const command = new Command('check').description('validate config, data files and templates; exit 1 on any problem');
  addFlags(command, FLAGS);
  command.action(async () => {
    const { config, problems, location } = await configFromCommand(command, FLAGS);
    process.stderr.write(`${configLine(location)}\n`);
    if (!config) {
      for (const problem of problems) process.stdout.write(`${formatProblem(problem)}\n`);
      process.stdout.write(`${problems.length} problem(s) in the configuration\n`);
      process.exitCode = 1;
      return;
    }
    // A data directory that is not there is the one problem worth reporting: nothing else loads.
    const missing = await checkDirectories(directoriesFor(config, 'read'));
    if (missing.length > 0) {
      for (const line of missing) process.stdout.write(`${line}\n`);
      process.exitCode = 1;
      return;
    }
    // On a site: the copy of the origin's data in service.
    const served = await servedDataDir(config);
    if (served.site) process.stderr.write(`site ${config.site?.name ?? ''}: checking ${served.site.none ? "nothing yet (no copy of the origin's data has been applied)" : `the origin's copy ${served.site.copy?.etag ?? '(unknown)'} in service, fetched ${served.site.copy?.fetchedAt ?? '?'}`}\n`);
    const catalogue = await loadCatalogue(served.dir, undefined, { dir: lastGoodDir(config.state.sqlitePath) });
    const all = [...catalogue.problems, ...(await checkRendering(config, catalogue))];
    for (const problem of all) process.stdout.write(`${formatProblem(problem)}\n`);
    const summary = `${catalogue.profiles.size} profile(s), ${catalogue.groups.length} group(s), ${catalogue.ignition.size} Ignition config(s), ${catalogue.templates.size} template(s)${catalogue.generic.size + catalogue.cloud.size > 0 ? `, ${catalogue.generic.size} generic and ${catalogue.cloud.size} cloud config(s)` : ''} in ${served.dir}`;
    const errors = all.filter((problem) => !isWarning(problem)).length;
    const warnings = all.length - errors;
    const warned = warnings > 0 ? `${warnings} warning(s); ` : '';
    process.stdout.write(errors === 0 ? `ok: ${warned}${summary}\n` : `${errors} problem(s); ${warned}loaded ${summary}\n`);
    if (errors > 0) process.exitCode = 1;
  });
  return command;
}
