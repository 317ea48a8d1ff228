/** `bootdepot serve`: run the HTTP service until SIGTERM/SIGINT; SIGHUP reloads the data. */
import { Command } from 'commander';
import { createLogger } from '../logger.ts';
import { StartError, startServer } from '../server.ts';
import { addFlags, addMirrorFlag, CONFIG_FLAG, configFromCommand, configLine, PATH_FLAGS, printProblems, SERVER_FLAGS } from './options.ts';

const FLAGS = [CONFIG_FLAG, ...PATH_FLAGS, ...SERVER_FLAGS];

/** How often a server started by npm checks that npm is still there. */
const LAUNCHER_CHECK_MS = 1000;

/**
 * Under `npx bootdepot serve` (and any npm script without `exec`), npm runs the server through
 * `sh -c`: a SIGTERM to npm ends npm and the shell but never reaches the server, which would
 * keep running, and holding the port, with nobody left to stop it. So a server that npm
 * started exits when its parent goes away (it is re-parented, so `process.ppid` changes).
 * Only under npm: a server started with `nohup` or from a shell that exits is meant to stay.
 */
function watchLauncher(onGone: () => void): void {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, LAUNCHER_CHECK_MS);
  timer.unref();
}

export function serveCommand(): Command {
  const command = new Command('serve').description('serve scripts and images to booting machines');
  addFlags(command, FLAGS);
  addMirrorFlag(command);
  command.action(async () => {
    const { config, problems, location } = await configFromCommand(command, FLAGS);
    if (!config) {
      printProblems(`bootdepot: the configuration has problems; not starting (${configLine(location)}):`, problems);
      process.exitCode = 2;
      return;
    }
    const logger = createLogger(config.log.level);
    let server;
    try {
      server = await startServer(config, logger, { configLocation: location.description });
    } catch (error) {
      // What the operator can fix (a port in use, a missing directory) is one line each, not a stack trace.
      if (error instanceof StartError) {
        for (const line of error.lines) process.stderr.write(`bootdepot: ${line}\n`);
        process.exitCode = 1;
        return;
      }
      logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
      process.exitCode = 1;
      logger.flush();
      return;
    }
    const running = server;
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) {
        logger.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      closing = true;
      logger.info(`${signal}: closing (in-flight requests finish first)`);
      running
        .close()
        .then(() => logger.info('closed'))
        .catch((error: unknown) => {
          logger.error({ err: error }, 'error while closing');
          process.exitCode = 1;
        });
    };
    watchLauncher(() => shutdown('launcher (npm) exited'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      running.catalogue.reload().catch((error: unknown) => logger.error({ err: error }, 'data reload failed'));
    });
  });
  return command;
}
