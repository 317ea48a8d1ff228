/** `bootdepot serve`: run the HTTP service until SIGTERM/SIGINT; SIGHUP reloads the data. */
import { Command } from 'commander';
import { createLogger } from '../logger.ts';
import { startServer } from '../server.ts';
import { addFlags, addMirrorFlag, CONFIG_FLAG, configFromCommand, PATH_FLAGS, printProblems, SERVER_FLAGS } from './options.ts';

const FLAGS = [CONFIG_FLAG, ...PATH_FLAGS, ...SERVER_FLAGS];

export function serveCommand(): Command {
  const command = new Command('serve').description('serve scripts and images to booting machines');
  addFlags(command, FLAGS);
  addMirrorFlag(command);
  command.action(async () => {
    const { config, problems } = await configFromCommand(command, FLAGS);
    if (!config) {
      printProblems('bootdepot: the configuration has problems; not starting:', problems);
      process.exitCode = 2;
      return;
    }
    const logger = createLogger(config.log.level);
    let server;
    try {
      server = await startServer(config, logger);
    } catch (error) {
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
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      running.catalogue.reload().catch((error: unknown) => logger.error({ err: error }, 'data reload failed'));
    });
  });
  return command;
}
