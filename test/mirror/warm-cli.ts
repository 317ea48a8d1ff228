/** Runs `bootdepot warm` on its own, as src/cli/main.ts will once it registers the command. */
import { warmCommand } from '../../src/mirror/warm-command.ts';

await warmCommand().parseAsync(process.argv);
