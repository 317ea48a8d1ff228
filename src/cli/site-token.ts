/**
 * `bootdepot site-token NAME`: on the origin, prints the token a site named NAME presents (to
 * write into the site's `site.tokenFile`). It is derived from the origin's admin token, so the
 * origin stores nothing per site; see src/site/tokens.ts and docs/sites.md.
 */
import { Command } from 'commander';
import { siteToken, SITE_NAME } from '../site/tokens.ts';
import { addFlags, CONFIG_FLAG, configFromCommand, printProblems } from './options.ts';

const FLAGS = [CONFIG_FLAG, { flag: 'admin-token', key: 'adminToken' as const, description: "the origin's admin token (default: from the config)" }];

export function siteTokenCommand(): Command {
  const command = new Command('site-token').description("print the token a site presents to this origin (from the origin's admin token)").argument('<name>', 'the site\'s name (its site.name)');
  addFlags(command, FLAGS);
  command.action(async (name: string) => {
    if (!SITE_NAME.test(name)) {
      process.stderr.write(`invalid site name ${JSON.stringify(name.slice(0, 80))}: lowercase letters, digits and -, 1-63 characters\n`);
      process.exitCode = 1;
      return;
    }
    const { config, problems } = await configFromCommand(command, FLAGS);
    if (!config) {
      printProblems('the configuration has problems:', problems);
      process.exitCode = 1;
      return;
    }
    if (config.admin.token === undefined) {
      process.stderr.write('no admin token: set BOOTDEPOT_ADMIN_TOKEN, --admin-token or admin.token to the origin\'s\n');
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`${siteToken(config.admin.token, name)}\n`);
  });
  return command;
}
