/**
 * Which data directory a server serves: its own (`paths.data`), or on a site the copy of the
 * origin's data in service, which `check` and `render` then read as well.
 */
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { DataCopies, type CopyInfo } from './data-document.ts';

/** Where a site keeps its copies of the origin's data: inside its own data directory. */
export function siteCopiesDir(config: Pick<Config, 'paths'>): string {
  return path.join(config.paths.data, 'site-data');
}

/** The directory whose files are in service, and on a site which copy it is (none: before the first sync). */
export async function servedDataDir(config: Pick<Config, 'paths' | 'site'>): Promise<{ dir: string; site?: { copy: CopyInfo | undefined; none: boolean } }> {
  if (!config.site) return { dir: config.paths.data };
  const copies = new DataCopies(siteCopiesDir(config));
  const current = await copies.current();
  if (!current) return { dir: path.join(siteCopiesDir(config), 'empty'), site: { copy: undefined, none: true } };
  return { dir: current.dir, site: { copy: current.info, none: false } };
}
