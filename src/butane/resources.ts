/**
 * File contents as Butane embeds them: a data URL, whichever of three encodings is shortest
 * (percent-escaped, base64, or gzip then base64 with `compression: gzip`), and local files read
 * from the files directory, never from outside it.
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const UNRESERVED = /[A-Za-z0-9\-_.!~*'()]/;

/** RFC 2396 escaping of every byte but the unreserved ones, as Butane's data URL library does. */
export function escapeDataUrl(data: Uint8Array): string {
  let out = '';
  for (const byte of data) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export interface DataUrl {
  source: string;
  /** The compression to record: "" or "gzip"; undefined when the config set one itself (kept as is). */
  compression: string | undefined;
}

/**
 * The shortest data URL for the contents. A config that names a compression already holds
 * compressed data: it is encoded, not compressed again.
 */
export function makeDataUrl(contents: Uint8Array, currentCompression: string | undefined, allowCompression = true): DataUrl {
  const userCompressed = currentCompression !== undefined && currentCompression !== '';
  let opaque = `,${escapeDataUrl(contents)}`;
  const b64 = `;base64,${Buffer.from(contents).toString('base64')}`;
  if (b64.length < opaque.length) opaque = b64;
  let compression: string | undefined = userCompressed ? undefined : '';
  if (!userCompressed && allowCompression) {
    const gz = `;base64,${gzipSync(contents, { level: 9 }).toString('base64')}`;
    // The compression field costs its four letters.
    if (gz.length + 'gzip'.length < opaque.length) {
      opaque = gz;
      compression = 'gzip';
    }
  }
  return { source: `data:${opaque}`, compression };
}

export const ERR_NO_FILES_DIR = 'local file paths are relative to a files directory that must be specified with -d/--files-dir';
export const ERR_FILES_DIR_ESCAPE = 'local file path traverses outside the files directory';

/** A path inside the files directory, or the reason it is not one. */
export function localPath(configPath: string, filesDir: string | undefined): { path: string } | { error: string } {
  if (!filesDir) return { error: ERR_NO_FILES_DIR };
  const joined = path.join(filesDir, configPath);
  if (!isWithin(path.resolve(joined), path.resolve(filesDir))) return { error: ERR_FILES_DIR_ESCAPE };
  return { path: joined };
}

function isWithin(target: string, root: string): boolean {
  return target === root || target.startsWith(root + path.sep);
}

/** Also refuses a symlink inside the files directory that points out of it. */
export async function ensureRealpathWithin(target: string, filesDir: string): Promise<string | undefined> {
  try {
    const [real, root] = await Promise.all([realpath(target), realpath(filesDir)]);
    return isWithin(real, root) ? undefined : ERR_FILES_DIR_ESCAPE;
  } catch {
    return undefined; // the read that follows reports a missing file in its own words
  }
}

/** Reads a local file: its bytes, or an error worded like Butane's (`open PATH: no such file or directory`). */
export async function readLocalFile(configPath: string, filesDir: string | undefined): Promise<{ data: Buffer } | { error: string }> {
  const where = localPath(configPath, filesDir);
  if ('error' in where) return where;
  const escape = await ensureRealpathWithin(where.path, filesDir ?? '');
  if (escape) return { error: escape };
  try {
    return { data: await readFile(where.path) };
  } catch (error) {
    return { error: fileError(error, where.path) };
  }
}

export function fileError(error: unknown, file: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'not a directory',
    ELOOP: 'too many levels of symbolic links',
  };
  const reason = (code && reasons[code]) ?? (error as Error).message;
  return code === 'EISDIR' ? `read ${file}: ${reason}` : `open ${file}: ${reason}`;
}
