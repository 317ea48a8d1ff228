/**
 * Options shared by commands, each also settable as BOOTDEPOT_<FLAG> in the environment, and
 * the step that turns them into a Config (or every problem with it).
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { loadConfig, type Override, type OverrideKey } from '../config/loader.ts';
import { locateConfig, type ConfigLocation } from '../config/locate.ts';
import type { Config } from '../config/schema.ts';
import { formatProblem, type Problem } from '../common/problems.ts';

interface FlagSpec {
  flag: string;
  key: OverrideKey | 'config';
  description: string;
}

export const CONFIG_FLAG: FlagSpec = {
  flag: 'config',
  key: 'config',
  description: 'config file (YAML); default: ./bootdepot.yaml, else ./config/bootdepot.yaml, else built-in defaults',
};
export const PATH_FLAGS: FlagSpec[] = [
  { flag: 'data-dir', key: 'dataDir', description: 'data directory: profiles/, groups/, ignition/, templates/' },
  { flag: 'assets-dir', key: 'assetsDir', description: 'assets directory served at /assets/' },
  { flag: 'cache-dir', key: 'cacheDir', description: 'mirror cache directory' },
];
export const SERVER_FLAGS: FlagSpec[] = [
  { flag: 'host', key: 'host', description: 'address to listen on' },
  { flag: 'port', key: 'port', description: 'port to listen on (0: any free port)' },
  { flag: 'log-level', key: 'logLevel', description: 'fatal, error, warn, info, debug, trace or silent' },
  { flag: 'base-url', key: 'baseUrl', description: 'public URL used in scripts (default: from each request)' },
  { flag: 'admin-token', key: 'adminToken', description: 'bearer token for /api/v1 (uploads); unset: admin API off' },
  { flag: 'database-url', key: 'databaseUrl', description: 'PostgreSQL URL for shared boot state (default: SQLite in the data dir)' },
];

export function envName(flag: string): string {
  return `BOOTDEPOT_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export function addFlags(command: Command, specs: FlagSpec[]): Command {
  for (const spec of specs) {
    command.addOption(new Option(`--${spec.flag} <value>`, spec.description).env(envName(spec.flag)));
  }
  return command;
}

/** `--mirror NAME=URL`, repeatable; BOOTDEPOT_MIRROR holds several, separated by commas or spaces. */
export function addMirrorFlag(command: Command): Command {
  return command.addOption(
    new Option('--mirror <name=url>', 'serve an upstream release server at /mirror/NAME/ (repeatable)')
      .env(envName('mirror'))
      .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
  );
}

export interface CommandConfig {
  config?: Config;
  problems: Problem[];
  /** Which file was read (or that none was), for the operator. */
  location: ConfigLocation;
}

/**
 * Finds the config file (--config, BOOTDEPOT_CONFIG, ./bootdepot.yaml, ./config/bootdepot.yaml,
 * else the embedded defaults; see config/locate.ts), reads it and applies flag overrides.
 */
export async function configFromCommand(command: Command, specs: FlagSpec[]): Promise<CommandConfig> {
  const opts = command.opts<Record<string, string | undefined>>();
  const overrides: Override[] = [];
  for (const spec of specs) {
    if (spec.key === 'config') continue;
    const name = spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = opts[name];
    if (value === undefined) continue;
    const source = command.getOptionValueSource(name) === 'env' ? envName(spec.flag) : `--${spec.flag}`;
    overrides.push({ key: spec.key, value, source });
  }
  const fromEnv = command.getOptionValueSource('config') === 'env';
  const location = locateConfig({ flag: fromEnv ? undefined : opts.config, env: fromEnv ? opts.config : undefined, cwd: process.cwd() });
  let file: { path: string; text: string } | undefined;
  if (location.file !== undefined) {
    try {
      file = { path: location.file, text: await readFile(location.file, 'utf8') };
    } catch (error) {
      return { problems: [{ source: location.file, message: `cannot read config file: ${(error as Error).message}` }], location };
    }
  }
  const mirrorValues = command.opts<{ mirror?: string[] }>().mirror ?? [];
  const mirrorSource = command.getOptionValueSource('mirror') === 'env' ? envName('mirror') : '--mirror';
  const result = loadConfig({ file, overrides, mirrorFlags: mirrorValues.map((value) => ({ value, source: mirrorSource })), cwd: process.cwd() });
  return result.config ? { config: result.config, problems: [], location } : { problems: result.problems, location };
}

export function printProblems(heading: string, problems: readonly Problem[]): void {
  process.stderr.write(`${heading}\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
}

/** The line `render` and `check` print on stderr, and `serve` logs, saying which config is in use. */
export function configLine(location: ConfigLocation): string {
  return `config: ${location.description}`;
}
