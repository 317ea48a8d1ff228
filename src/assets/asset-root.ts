/**
 * The assets directory: resolving request paths to files without ever leaving it.
 *
 * A path is refused when any segment is empty, `.`/`..`, a dotfile, or holds a backslash or NUL
 * (after the router's percent-decoding, so `%2e%2e` and `%5c` are caught; a second level of
 * encoding such as `%252e` stays literal and names a file that does not exist). Symlinks are
 * followed only when their target is inside the root.
 */
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';

export interface AssetFile {
  /** Absolute path after resolving symlinks. */
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface AssetReader {
  /** The assets root, absolute. */
  readonly root: string;
  /** The file at a relative path, or undefined when it is missing, not a file, or not allowed. */
  file(relativePath: string): Promise<AssetFile | undefined>;
  /**
   * Opens a file for reading: undefined when it is missing, not a regular file, or not
   * allowed. The caller closes the handle.
   */
  open(relativePath: string): Promise<{ handle: FileHandle; path: string } | undefined>;
  /** A small text file's content (at most `maxBytes`), or undefined when missing. */
  readText(relativePath: string, maxBytes: number): Promise<string | undefined>;
  /** Forgets what is known about a path (after an upload or delete through the API). */
  invalidate(relativePath: string): void;
}

export interface AssetReaderOptions {
  /**
   * How long what `file` and `readText` found stays known. Script rendering checks images and
   * reads cmdline files for every boot; a short memory turns a boot storm's thousands of
   * filesystem calls into a few per second. Uploads through the API invalidate at once.
   */
  metadataTtlMs?: number;
}

/** Splits and checks a relative path; undefined when it is not acceptable. */
export function safeSegments(relativePath: string): string[] | undefined {
  if (relativePath.length === 0 || relativePath.length > 1024) return undefined;
  if (relativePath.includes('\0') || relativePath.includes('\\')) return undefined;
  const segments = relativePath.split('/');
  for (const segment of segments) {
    if (segment === '' || segment.startsWith('.')) return undefined;
  }
  return segments;
}

export function createAssetReader(root: string, options: AssetReaderOptions = {}): AssetReader {
  const absoluteRoot = path.resolve(root);
  let realRoot: string | undefined;
  const ttl = options.metadataTtlMs ?? 1000;
  // Values are promises, so concurrent lookups of one path share a single filesystem call.
  const files = new LRUCache<string, Promise<AssetFile | null>>({ max: 10_000, ttl });
  const texts = new LRUCache<string, Promise<string | null>>({ max: 1_000, ttl });

  async function resolve(relativePath: string): Promise<AssetFile | undefined> {
    const segments = safeSegments(relativePath);
    if (!segments) return undefined;
    const candidate = path.join(absoluteRoot, ...segments);
    if (!candidate.startsWith(absoluteRoot + path.sep)) return undefined;
    try {
      realRoot ??= await realpath(absoluteRoot);
      const real = await realpath(candidate);
      if (!real.startsWith(realRoot + path.sep)) return undefined;
      const info = await stat(real);
      if (!info.isFile()) return undefined;
      return { path: real, size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };
    } catch {
      return undefined;
    }
  }

  const cachedFile = (relativePath: string): Promise<AssetFile | undefined> => {
    if (ttl <= 0) return resolve(relativePath);
    let found = files.get(relativePath);
    if (!found) {
      found = resolve(relativePath).then((file) => file ?? null);
      files.set(relativePath, found);
    }
    return found.then((file) => file ?? undefined);
  };

  return {
    root: absoluteRoot,
    file: cachedFile,
    invalidate(relativePath) {
      files.delete(relativePath);
      for (const key of texts.keys()) if (key.endsWith(`\0${relativePath}`)) texts.delete(key);
    },
    async open(relativePath) {
      const file = await resolve(relativePath);
      if (!file) return undefined;
      let handle: FileHandle | undefined;
      try {
        handle = await open(file.path, 'r');
        // Checked again on the handle: the path may have been replaced since it was resolved.
        if (!(await handle.stat()).isFile()) {
          await handle.close();
          return undefined;
        }
        return { handle, path: file.path };
      } catch {
        await handle?.close();
        return undefined;
      }
    },
    async readText(relativePath, maxBytes) {
      const key = `${maxBytes}\0${relativePath}`;
      let text = ttl > 0 ? texts.get(key) : undefined;
      if (!text) {
        text = (async () => {
          const file = await resolve(relativePath);
          if (!file) return null;
          const handle = await open(file.path, 'r');
          try {
            const buffer = Buffer.alloc(Math.min(maxBytes, file.size));
            const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
            return buffer.subarray(0, bytesRead).toString('utf8');
          } finally {
            await handle.close();
          }
        })();
        if (ttl > 0) texts.set(key, text);
      }
      return (await text) ?? undefined;
    },
  };
}
