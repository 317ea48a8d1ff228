/**
 * The directories a command depends on, checked before it starts, so a typo in a path is one
 * line naming the directory and the setting that chose it, not a stack trace from deep inside
 * (or, worse, a new empty data directory that makes every machine wait).
 *
 * `serve` needs: the data directory (read), the assets directory (read; written when uploads
 * are on), the directory of the SQLite file (written, when SQLite holds the boot state) and the
 * mirror cache (written; created when missing, since it only ever holds copies). `render` and
 * `check` only read the data directory and must not create anything.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './schema.ts';

export interface DirectoryNeed {
  /** e.g. `data directory` */
  what: string;
  dir: string;
  /** The settings that choose it, e.g. `--data-dir or paths.data`. */
  setBy: string;
  write: boolean;
  /** Created (with its parents) when missing. */
  create: boolean;
}

export type DirectoryUse = 'serve' | 'read';

const DATA = '--data-dir, BOOTDEPOT_DATA_DIR or paths.data';
const ASSETS = '--assets-dir, BOOTDEPOT_ASSETS_DIR or paths.assets';
const CACHE = '--cache-dir, BOOTDEPOT_CACHE_DIR or mirror.cacheDir';
const SQLITE = 'state.sqlitePath, or keep boot state in PostgreSQL with --database-url';

export function directoriesFor(config: Config, use: DirectoryUse): DirectoryNeed[] {
  const data: DirectoryNeed = { what: 'data directory', dir: config.paths.data, setBy: DATA, write: false, create: false };
  if (use === 'read') return [data];
  // A site writes its copies of the origin's data there (site-data/).
  if (config.site) data.write = true;
  // A site serves the origin's /assets/ through its mirror cache: it needs no assets directory.
  const needs: DirectoryNeed[] = config.site ? [data] : [data, { what: 'assets directory', dir: config.paths.assets, setBy: ASSETS, write: config.admin.token !== undefined, create: false }];
  if (config.state.enabled && config.state.databaseUrl === undefined) {
    const sqliteDir = path.dirname(config.state.sqlitePath);
    // The default place: one check of the data directory, which must then be writable.
    if (sqliteDir === config.paths.data) data.write = true;
    else needs.push({ what: 'directory of the SQLite database', dir: sqliteDir, setBy: SQLITE, write: true, create: false });
  }
  needs.push({ what: 'mirror cache directory', dir: config.mirror.cacheDir, setBy: CACHE, write: true, create: true });
  return needs;
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only filesystem';
  if (code === 'ENOTDIR') return 'a parent is not a directory';
  return (error as Error).message;
}

/** One line per directory that is missing, not a directory, or not usable as needed; empty when all are fine. */
export async function checkDirectories(needs: readonly DirectoryNeed[]): Promise<string[]> {
  const problems: string[] = [];
  for (const need of needs) {
    const hint = `(set it with ${need.setBy})`;
    let info;
    try {
      info = await stat(need.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !need.create) {
        problems.push(`${need.what} ${need.dir} ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be used: ${reason(error)}`} ${hint}`);
        continue;
      }
      try {
        await mkdir(need.dir, { recursive: true });
        info = await stat(need.dir);
      } catch (mkdirError) {
        problems.push(`cannot create the ${need.what} ${need.dir}: ${reason(mkdirError)} ${hint}`);
        continue;
      }
    }
    if (!info.isDirectory()) {
      problems.push(`${need.what} ${need.dir} is not a directory ${hint}`);
      continue;
    }
    try {
      await access(need.dir, constants.R_OK | constants.X_OK | (need.write ? constants.W_OK : 0));
    } catch (error) {
      problems.push(`cannot ${need.write ? 'write to' : 'read'} the ${need.what} ${need.dir}: ${reason(error)} ${hint}`);
    }
  }
  return problems;
}
