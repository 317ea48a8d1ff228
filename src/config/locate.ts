/**
 * Which config file a command reads. Every command looks in the same order, so `npx bootdepot
 * check` from a checkout reads the same file as `npm start`:
 *   1. `--config FILE`
 *   2. `BOOTDEPOT_CONFIG`
 *   3. `./bootdepot.yaml`
 *   4. `./config/bootdepot.yaml`
 *   5. none: the embedded defaults (relative paths resolve against the working directory).
 * A file named by the flag or the variable must exist; the two in the working directory are
 * used only when they do.
 */
import { statSync } from 'node:fs';
import path from 'node:path';

export const CONFIG_ENV = 'BOOTDEPOT_CONFIG';
/** Looked for in the working directory, in this order, when neither flag nor variable names a file. */
export const CONFIG_CANDIDATES = ['bootdepot.yaml', path.join('config', 'bootdepot.yaml')] as const;

export interface ConfigLocation {
  /** The file to read; undefined for the embedded defaults. */
  file: string | undefined;
  /** How it was chosen, for the operator: e.g. `config/bootdepot.yaml (found in the working directory)`. */
  description: string;
}

export interface LocateInput {
  /** `--config`, when given on the command line. */
  flag?: string | undefined;
  /** `BOOTDEPOT_CONFIG`, when set. */
  env?: string | undefined;
  cwd: string;
  /** Whether a regular file exists; swapped in tests. */
  isFile?: (file: string) => boolean;
}

function regularFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export function locateConfig(input: LocateInput): ConfigLocation {
  if (input.flag !== undefined && input.flag !== '') return { file: input.flag, description: `${input.flag} (--config)` };
  if (input.env !== undefined && input.env !== '') return { file: input.env, description: `${input.env} (${CONFIG_ENV})` };
  const isFile = input.isFile ?? regularFile;
  for (const candidate of CONFIG_CANDIDATES) {
    if (isFile(path.join(input.cwd, candidate))) return { file: candidate, description: `${candidate} (found in the working directory)` };
  }
  return {
    file: undefined,
    description: `the embedded defaults (no --config, no ${CONFIG_ENV}, no ${CONFIG_CANDIDATES.map((c) => `./${c}`).join(' or ')})`,
  };
}
