/**
 * Writing an uploaded file into the assets directory atomically: the body streams to a temp
 * file in the target's own directory (same filesystem), is hashed and counted on the way,
 * checked against the SHA-256 the client sent, fsynced, and renamed over the target. A reader
 * sees the old file or the new one, never a mix; a failed upload leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../common/http-error.ts';
import { safeSegments } from './asset-root.ts';
import type { FileDigests, FileVersion } from './repr-digest.ts';

export class UploadError extends HttpError {
  constructor(statusCode: number, message: string) {
    super(statusCode, message);
    this.name = 'UploadError';
  }
}

export interface UploadResult {
  path: string;
  size: number;
  sha256: string;
  /** False when an existing file was replaced. */
  created: boolean;
}

/** What an upload wrote, for the server's own records (not part of the API's answer). */
export interface WrittenAsset {
  result: UploadResult;
  /** The new file's version (inode, size, mtime), taken before the rename made it visible. */
  version: FileVersion;
  digests: FileDigests;
}

export interface UploadOptions {
  maxBytes: number;
  /** Lowercase hex SHA-256 the body must have. */
  expectedSha256?: string;
  /** Opens the temp file for writing; tests pass one that fails like a full disk. */
  createWriteStream?: (file: string) => Writable;
}

/** Temp files are dotfiles, so the asset route never serves them. */
export const TEMP_PREFIX = '.upload-';
const TEMP_SUFFIX = '.tmp';

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

function inside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root + path.sep);
}

/** Resolves the target path, creating its directories, and refuses anything outside the root. */
async function prepareTarget(root: string, relativePath: string): Promise<string> {
  const segments = safeSegments(relativePath);
  if (!segments) throw new UploadError(400, `invalid asset path ${JSON.stringify(relativePath)}: no empty, "." or ".." segments, dotfiles, backslashes or NUL`);
  const realRoot = await realpath(root).catch(() => {
    throw new UploadError(500, 'the assets directory does not exist');
  });
  const target = path.join(realRoot, ...segments);
  const parent = path.dirname(target);
  try {
    await mkdir(parent, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new UploadError(409, `a parent of ${relativePath} is a file`);
    throw error;
  }
  // A symlinked directory on the way must not carry the write out of the root.
  if (!inside(realRoot, await realpath(parent))) throw new UploadError(400, `${relativePath} leaves the assets directory`);
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new UploadError(409, `${relativePath} is a directory`);
  if (existing?.isSymbolicLink()) throw new UploadError(409, `${relativePath} is a symbolic link; replace its target instead`);
  return target;
}

export async function writeAssetAtomically(root: string, relativePath: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
  return (await writeAsset(root, relativePath, body, options)).result;
}

/** writeAssetAtomically, also giving the new file's version and both digests (for Repr-Digest). */
export async function writeAsset(root: string, relativePath: string, body: Readable, options: UploadOptions): Promise<WrittenAsset> {
  const target = await prepareTarget(root, relativePath);
  const temp = path.join(path.dirname(target), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`);
  const hash = createHash('sha256');
  const hash512 = createHash('sha512');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > options.maxBytes) {
        callback(new UploadError(413, `upload larger than the limit of ${options.maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      hash512.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    const sink = (options.createWriteStream ?? ((file) => createWriteStream(file, { flags: 'wx', mode: 0o644 })))(temp);
    await pipeline(body, meter, sink);
    const sha256 = hash.digest('hex');
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
      throw new UploadError(422, `SHA-256 mismatch: the body hashes to ${sha256}, the request said ${options.expectedSha256}`);
    }
    // Data on disk before the name points at it; then the rename itself made durable.
    const handle = await open(temp, 'r+');
    let version: FileVersion;
    try {
      await handle.sync();
      // The rename keeps inode, size and mtime: this is the version readers will see.
      version = await handle.stat({ bigint: true });
    } finally {
      await handle.close();
    }
    const created = !(await lstat(target).catch(() => undefined));
    await rename(temp, target);
    const dir = await open(path.dirname(target), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return { result: { path: relativePath, size, sha256, created }, version, digests: { sha256, sha512: hash512.digest('hex') } };
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && DISK_FULL.has(code)) throw new UploadError(507, 'not enough space left on the assets filesystem');
    if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED') {
      throw new UploadError(400, 'the upload was cut off before its end');
    }
    throw error;
  }
}

/** Deletes an asset; false when there was none. */
export async function deleteAsset(root: string, relativePath: string): Promise<boolean> {
  const segments = safeSegments(relativePath);
  if (!segments) throw new UploadError(400, `invalid asset path ${JSON.stringify(relativePath)}`);
  const realRoot = await realpath(root);
  const target = path.join(realRoot, ...segments);
  const info = await lstat(target).catch(() => undefined);
  if (!info) return false;
  if (info.isDirectory()) throw new UploadError(409, `${relativePath} is a directory`);
  if (!inside(realRoot, await realpath(path.dirname(target)))) throw new UploadError(400, `${relativePath} leaves the assets directory`);
  await rm(target);
  return true;
}

/**
 * Removes temp files an interrupted upload left (a crash between write and rename). Called at
 * start, before any upload can be running.
 */
export async function removeStaleUploads(root: string): Promise<string[]> {
  const removed: string[] = [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX) && entry.name.endsWith(TEMP_SUFFIX)) {
      const file = path.join(entry.parentPath, entry.name);
      await unlink(file).catch(() => undefined);
      removed.push(file);
    }
  }
  return removed;
}
