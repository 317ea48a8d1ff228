/** Runs `bootdepot warm` on its own, as src/cli/main.ts will once it registers the command. */
import { warmCommand } from '../../src/cli/warm.ts';

await warmCommand().parseAsync(process.argv);
