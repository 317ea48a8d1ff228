/**
 * The process logger: JSON lines, pretty only when stdout is a terminal (never because of an
 * environment name), so logs shipped from a service stay machine-readable.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/schema.ts';

export function createLogger(level: LogLevel, pretty = process.stdout.isTTY === true): Logger {
  if (!pretty) return pino({ level });
  return pino({
    level,
    transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
  });
}
