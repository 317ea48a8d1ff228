/** The `bootdepot` command line: one file per command. */
import { Command } from 'commander';
import { checkCommand } from './check.ts';
import { pushCommand } from './push.ts';
import { renderCommand } from './render.ts';
import { serveCommand } from './serve.ts';

const program = new Command('bootdepot')
  .description('HTTP boot server for iPXE: per-device scripts, LinuxKit and Flatcar images, boot state')
  .showHelpAfterError()
  .addCommand(serveCommand())
  .addCommand(renderCommand())
  .addCommand(checkCommand())
  .addCommand(pushCommand());

await program.parseAsync(process.argv);
