/**
 * The `bootdepot` command line: one file per command. Only the command being run is loaded, so
 * `serve` does not carry the client libraries of `push` or `devices` in its memory.
 */
import { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand(),
  render: async () => (await import('./render.ts')).renderCommand(),
  check: async () => (await import('./check.ts')).checkCommand(),
  push: async () => (await import('./push.ts')).pushCommand(),
  devices: async () => (await import('./devices.ts')).devicesCommand(),
  warm: async () => (await import('./warm.ts')).warmCommand(),
  'site-token': async () => (await import('./site-token.ts')).siteTokenCommand(),
};

const program = new Command('bootdepot')
  .description('HTTP boot server for iPXE: per-device scripts, LinuxKit and Flatcar images, boot state')
  .version(packageJson.version, '-V, --version', 'print the version')
  .showHelpAfterError();

const requested = process.argv[2];
const load = requested !== undefined ? COMMANDS[requested] : undefined;
// The version needs no command loaded; help and errors need them all, to list them.
const wantsVersion = requested === '--version' || requested === '-V';
for (const command of load ? [await load()] : wantsVersion ? [] : await Promise.all(Object.values(COMMANDS).map((loader) => loader()))) {
  program.addCommand(command);
}

await program.parseAsync(process.argv);
