/**
 * `storage.trees`: a directory of the files directory copied into the config, each regular file
 * as a file (mode 0644, or 0755 if executable, unless the config sets one) and each symlink as a
 * link. A node the config already has keeps its settings and gets the contents, unless it has
 * contents of its own.
 */
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ButaneObject } from './decode.ts';
import type { IgnObject } from './ignition-schema.ts';
import type { Path, Report } from './messages.ts';
import type { Origins } from './origins.ts';
import { ERR_NO_FILES_DIR, ensureRealpathWithin, fileError, localPath, makeDataUrl } from './resources.ts';
import { text } from './values.ts';

const ERR_NODE_EXISTS = 'matching filesystem node has existing contents or different type';

export async function addTrees(config: IgnObject, trees: ButaneObject[], filesDir: string | undefined, report: Report, origins: Origins): Promise<void> {
  if (trees.length === 0) return;
  const storage = (config['storage'] ??= {}) as IgnObject;
  const files = (storage['files'] ??= []) as IgnObject[];
  const links = (storage['links'] ??= []) as IgnObject[];
  const dirs = (storage['directories'] as IgnObject[] | undefined) ?? [];
  const exists = (p: string): boolean => [files, links, dirs].some((list) => list.some((n) => n['path'] === p));
  for (const [i, tree] of trees.entries()) {
    const at: Path = ['storage', 'trees', i];
    if (!filesDir) {
      report.error(at, ERR_NO_FILES_DIR);
      return;
    }
    const where = localPath(text(tree['local']), filesDir);
    if ('error' in where) {
      report.error(at, where.error);
      continue;
    }
    const escape = await ensureRealpathWithin(where.path, filesDir);
    if (escape) {
      report.error(at, escape);
      continue;
    }
    try {
      if (!(await stat(where.path)).isDirectory()) {
        report.error(at, 'root of tree must be a directory');
        continue;
      }
    } catch (error) {
      report.error(at, fileError(error, where.path).replace(/^open /, 'stat '));
      continue;
    }
    const destBase = typeof tree['path'] === 'string' && tree['path'] !== '' ? tree['path'] : '/';
    await walk(where.path, '', async (rel, full) => {
      const dest = path.posix.join(destBase, rel);
      const info = await lstat(full);
      if (info.isDirectory()) return;
      if (info.isFile()) {
        let file = files.find((f) => f['path'] === dest);
        if (file) {
          const contents = file['contents'] as IgnObject | undefined;
          if (typeof contents?.['source'] === 'string' && contents['source'] !== '') return void report.error(at, ERR_NODE_EXISTS);
        } else {
          if (exists(dest)) return void report.error(at, ERR_NODE_EXISTS);
          file = { path: dest };
          origins.set(file, at);
          files.push(file);
        }
        const contents = ((file['contents'] as IgnObject | undefined) ?? {});
        const url = makeDataUrl(await readFile(full), contents['compression'] as string | undefined);
        contents['source'] = url.source;
        if (url.compression !== undefined) contents['compression'] = url.compression;
        file['contents'] = contents;
        if (file['mode'] === undefined) file['mode'] = info.mode & 0o111 ? 0o755 : 0o644;
      } else if (info.isSymbolicLink()) {
        let link = links.find((l) => l['path'] === dest);
        if (link) {
          if (typeof link['target'] === 'string' && link['target'] !== '') return void report.error(at, ERR_NODE_EXISTS);
        } else {
          if (exists(dest)) return void report.error(at, ERR_NODE_EXISTS);
          link = { path: dest };
          origins.set(link, at);
          links.push(link);
        }
        link['target'] = (await readlink(full)).split(path.sep).join('/');
      } else {
        report.error(at, 'trees may only contain files, directories, and symlinks');
      }
    });
  }
  if (files.length === 0) delete storage['files'];
  if (links.length === 0) delete storage['links'];
}

/** Depth first in byte order of names, as Go's filepath.Walk. */
async function walk(root: string, rel: string, visit: (rel: string, full: string) => Promise<void>): Promise<void> {
  const full = rel === '' ? root : path.join(root, rel);
  const entries = await readdir(full, { withFileTypes: true });
  const names = entries.map((e) => e.name).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  for (const name of names) {
    const childRel = rel === '' ? name : path.join(rel, name);
    const childFull = path.join(root, childRel);
    await visit(childRel, childFull);
    const info = await lstat(childFull);
    if (info.isDirectory()) await walk(root, childRel, visit);
  }
}
