/**
 * The `bootdepot` command line: one file per command. Only the command being run is loaded, so
 * `serve` does not carry the client libraries of `push` or `devices` in its memory.
 */
import { Command } from 'commander';

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand(),
  render: async () => (await import('./render.ts')).renderCommand(),
  check: async () => (await import('./check.ts')).checkCommand(),
  push: async () => (await import('./push.ts')).pushCommand(),
  devices: async () => (await import('./devices.ts')).devicesCommand(),
  warm: async () => (await import('../mirror/warm-command.ts')).warmCommand(),
};

const program = new Command('bootdepot')
  .description('HTTP boot server for iPXE: per-device scripts, LinuxKit and Flatcar images, boot state')
  .showHelpAfterError();

const requested = process.argv[2];
const load = requested !== undefined ? COMMANDS[requested] : undefined;
for (const command of load ? [await load()] : await Promise.all(Object.values(COMMANDS).map((loader) => loader()))) {
  program.addCommand(command);
}

await program.parseAsync(process.argv);
