/**
 * Last good versions of data files, kept on disk beside the device state, so that a file saved
 * broken keeps its machines on the version that worked across a restart too, not only across a
 * reload. `serve` writes them after every load; `check` and `render` only read them, so they
 * say what the server would serve.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Catalogue } from './catalogue.ts';
import { DATA_FOLDERS } from './data-folders.ts';

/** The default place: `bootdepot-last-good/` beside the SQLite file (the data directory unless configured). */
export function lastGoodDir(sqlitePath: string): string {
  return path.join(path.dirname(sqlitePath), 'bootdepot-last-good');
}

/**
 * Brings the saved copies in line with the catalogue in service: files that loaded from the data
 * directory are saved (atomically, when changed); copies of files that are neither loaded nor
 * served from their copy any more (deleted) are removed. Copies of broken files stay.
 */
export async function saveLastGood(dir: string, catalogue: Pick<Catalogue, 'sources' | 'byFile'>): Promise<void> {
  for (const [rel, text] of catalogue.sources) {
    const target = path.join(dir, rel);
    const saved = await readFile(target, 'utf8').catch(() => undefined);
    if (saved === text) continue;
    await mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    await writeFile(temp, text);
    await rename(temp, target);
  }
  for (const sub of DATA_FOLDERS) {
    const names = await readdir(path.join(dir, sub)).catch(() => [] as string[]);
    for (const name of names) {
      const rel = `${sub}/${name}`;
      if (!catalogue.sources.has(rel) && !catalogue.byFile.has(rel)) await rm(path.join(dir, rel), { force: true });
    }
  }
}
