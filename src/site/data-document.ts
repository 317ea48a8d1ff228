/**
 * The origin's data directory as one document, and a site's copies of it (docs/sites.md).
 *
 * The document is JSON: `{ format, files: { "groups/rack.yaml": "...text..." }, skipped }`, with
 * the files the catalogue reads (one level inside profiles/, groups/, ignition/, templates/,
 * generic/, cloud/; no dotfiles) in path order, so the same directory always gives the same
 * bytes and the same strong ETag (a SHA-256 of them). Paths are checked when the origin writes
 * the document and again when a site reads it: one known folder, one plain file name, nothing
 * that could name a place outside the data root.
 *
 * A site writes each copy complete into a new directory, flushed to disk, then renames it into
 * place and swings the `current` link to it in one rename: a crash leaves the old copy or the
 * new one, never half a tree.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DATA_FOLDERS } from '../boot/data-folders.ts';

export const DATA_FORMAT = 'bootdepot-data/1';
export interface DataLimits {
  /** Files in one document at most. */
  maxFiles: number;
  /** Bytes of one document at most (the JSON text), checked by the origin and by the site. */
  maxBytes: number;
}

/** Generous for data directories (a few hundred small YAML files), small enough to hold in memory. */
export const DEFAULT_DATA_LIMITS: DataLimits = { maxFiles: 10_000, maxBytes: 32 * 1024 * 1024 };

export interface DataDocument {
  format: typeof DATA_FORMAT;
  /** Relative path -> UTF-8 text. */
  files: Record<string, string>;
  /** Files left out, and why (not UTF-8, a link leading out of the data directory). */
  skipped: { path: string; reason: string }[];
}

export interface ExportedData {
  body: Buffer;
  /** Strong: `"sha256-<base64url>"` of the body. */
  etag: string;
  files: number;
}

export class DataDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDocumentError';
  }
}

const FOLDER_PATTERN = new RegExp(`^(${DATA_FOLDERS.join('|')})/([^/]+)$`);

/**
 * Why a relative path may not stand in a document, or undefined when it may: one of
 * {@link DATA_FOLDERS}, then one file name of printable characters that does not start with a
 * dot, no backslash, at most 255 bytes.
 */
export function dataPathProblem(relative: string): string | undefined {
  const match = FOLDER_PATTERN.exec(relative);
  const name = match?.[2];
  if (!name) return `expected FOLDER/NAME with FOLDER one of ${DATA_FOLDERS.join(', ')}`;
  if (name.startsWith('.')) return 'a file name may not start with a dot';
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(name)) return 'a file name may not hold a backslash or control characters';
  if (Buffer.byteLength(name) > 255) return 'a file name is at most 255 bytes';
  return undefined;
}

/** `root/relative` after checking the path, and that the result is still inside root. */
function inside(root: string, relative: string): string {
  const problem = dataPathProblem(relative);
  if (problem) throw new DataDocumentError(`${JSON.stringify(relative.slice(0, 300))}: ${problem}`);
  const full = path.resolve(root, relative);
  if (!full.startsWith(path.resolve(root) + path.sep)) throw new DataDocumentError(`${JSON.stringify(relative)} leaves the data directory`);
  return full;
}

export function etagOf(body: Buffer): string {
  return `"sha256-${createHash('sha256').update(body).digest('base64url')}"`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads the data directory into one document; throws a DataDocumentError when it is over the limits. */
export async function exportDataDirectory(dataDir: string, limits: DataLimits = DEFAULT_DATA_LIMITS): Promise<ExportedData> {
  const root = await realpath(dataDir);
  const files: Record<string, string> = {};
  const skipped: DataDocument['skipped'] = [];
  let count = 0;
  let bytes = 0;
  for (const folder of DATA_FOLDERS) {
    let entries;
    try {
      entries = await readdir(path.join(root, folder), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw error;
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (!(entry.isFile() || entry.isSymbolicLink()) || entry.name.startsWith('.')) continue;
      const relative = `${folder}/${entry.name}`;
      const problem = dataPathProblem(relative);
      if (problem) {
        skipped.push({ path: relative, reason: problem });
        continue;
      }
      // A link is followed only to a file inside the data directory.
      const target = await realpath(path.join(root, relative)).catch(() => undefined);
      if (!target?.startsWith(root + path.sep)) {
        skipped.push({ path: relative, reason: 'a link that does not lead to a file inside the data directory' });
        continue;
      }
      if (!(await stat(target)).isFile()) continue;
      if (++count > limits.maxFiles) throw new DataDocumentError(`the data directory has more than ${limits.maxFiles} files`);
      const raw = await readFile(target);
      bytes += raw.length;
      if (bytes > limits.maxBytes) throw new DataDocumentError(`the data directory's files are more than ${limits.maxBytes} bytes`);
      try {
        files[relative] = utf8.decode(raw);
      } catch {
        skipped.push({ path: relative, reason: 'not UTF-8 text' });
      }
    }
  }
  const document: DataDocument = { format: DATA_FORMAT, files, skipped };
  const body = Buffer.from(JSON.stringify(document));
  if (body.length > limits.maxBytes) throw new DataDocumentError(`the data document is more than ${limits.maxBytes} bytes`);
  return { body, etag: etagOf(body), files: Object.keys(files).length };
}

/** Parses and checks a document as a site receives it: the format, every path, the limits. */
export function parseDataDocument(body: Buffer, limits: DataLimits = DEFAULT_DATA_LIMITS): DataDocument {
  if (body.length > limits.maxBytes) throw new DataDocumentError(`the data document is more than ${limits.maxBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new DataDocumentError(`the data document is not JSON: ${(error as Error).message}`);
  }
  const document = value as Partial<DataDocument> | null;
  if (!document || typeof document !== 'object' || document.format !== DATA_FORMAT) throw new DataDocumentError(`not a ${DATA_FORMAT} document`);
  const { files } = document;
  if (!files || typeof files !== 'object' || Array.isArray(files)) throw new DataDocumentError('the data document has no files object');
  const entries = Object.entries(files);
  if (entries.length > limits.maxFiles) throw new DataDocumentError(`the data document has more than ${limits.maxFiles} files`);
  for (const [relative, text] of entries) {
    const problem = dataPathProblem(relative);
    if (problem) throw new DataDocumentError(`the data document names ${JSON.stringify(relative.slice(0, 300))}: ${problem}`);
    if (typeof text !== 'string') throw new DataDocumentError(`the data document's ${relative} is not text`);
  }
  const skipped = Array.isArray(document.skipped)
    ? document.skipped.filter((s): s is { path: string; reason: string } => typeof s?.path === 'string' && typeof s.reason === 'string').slice(0, 100)
    : [];
  return { format: DATA_FORMAT, files: files, skipped };
}

/** What a copy on a site came from; kept beside it as `.copy.json` (a dotfile: the catalogue never reads it). */
export interface CopyInfo {
  etag: string;
  origin: string;
  fetchedAt: string;
  files: number;
}

const CURRENT = 'current';
const INFO = '.copy.json';

async function syncPath(file: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(file, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A site's copies of the origin's data directory, under one directory of its own:
 * `copy-<time>-<random>/` each, `current` a link to the one in service, `.incoming-*` while one
 * is written.
 */
export class DataCopies {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** The copy in service and what it came from, or undefined before the first. */
  async current(): Promise<{ dir: string; info: CopyInfo | undefined } | undefined> {
    let name: string;
    try {
      name = await readlink(path.join(this.root, CURRENT));
    } catch {
      return undefined;
    }
    // Written by this class as a plain name; anything else is not followed.
    if (!/^copy-[a-z0-9-]+$/.test(name)) return undefined;
    const dir = path.join(this.root, name);
    if (!(await lstat(dir).catch(() => undefined))?.isDirectory()) return undefined;
    const info = await readFile(path.join(dir, INFO), 'utf8')
      .then((text) => JSON.parse(text) as CopyInfo)
      .catch(() => undefined);
    return { dir, info };
  }

  /** An empty data directory, for a site that has no copy yet (its machines wait: nothing matches). */
  async empty(): Promise<string> {
    const dir = path.join(this.root, 'empty');
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Writes a complete copy into a new directory (flushed) and returns it; not yet in service. */
  async write(document: DataDocument, info: CopyInfo): Promise<string> {
    await mkdir(this.root, { recursive: true });
    const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const incoming = path.join(this.root, `.incoming-${suffix}`);
    await mkdir(incoming);
    try {
      for (const folder of DATA_FOLDERS) await mkdir(path.join(incoming, folder));
      for (const [relative, text] of Object.entries(document.files)) {
        const file = inside(incoming, relative);
        await writeFile(file, text, { flag: 'wx' });
        await syncPath(file, 'r+');
      }
      await writeFile(path.join(incoming, INFO), `${JSON.stringify(info)}\n`);
      for (const folder of DATA_FOLDERS) await syncPath(path.join(incoming, folder), 'r');
      await syncPath(incoming, 'r');
      const dir = path.join(this.root, `copy-${suffix}`);
      await rename(incoming, dir);
      await syncPath(this.root, 'r');
      return dir;
    } catch (error) {
      await rm(incoming, { recursive: true, force: true });
      throw error;
    }
  }

  /** Puts a written copy in service: `current` is replaced by one rename. */
  async apply(dir: string): Promise<void> {
    if (path.dirname(dir) !== this.root) throw new Error(`${dir} is not a copy in ${this.root}`);
    const link = path.join(this.root, `.current-${randomBytes(4).toString('hex')}`);
    await symlink(path.basename(dir), link);
    await rename(link, path.join(this.root, CURRENT));
    await syncPath(this.root, 'r');
  }

  /** Removes copies other than `keep` (the one in service and the one before it), and leftovers. */
  async prune(keep: readonly string[]): Promise<void> {
    const kept = new Set(keep.map((dir) => path.basename(dir)));
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (kept.has(name) || name === CURRENT || name === 'empty') continue;
      if (/^(copy-|\.incoming-|\.current-)/.test(name)) await rm(path.join(this.root, name), { recursive: true, force: true });
    }
  }

  /** Throws away a written copy that was not applied. */
  async discard(dir: string): Promise<void> {
    if (path.dirname(dir) === this.root) await rm(dir, { recursive: true, force: true });
  }
}
