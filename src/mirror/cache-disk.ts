/**
 * The cache on disk and its index in memory.
 *
 * Layout under the cache directory:
 *   objects/<id>            a complete, verified file
 *   objects/<id>.meta.json  its sidecar: mirror, path, size, upstream validators, digests, use
 *   tmp/<id>.part           a fill in progress (and sidecars being written)
 * Objects are named by a random id, not by their path: a refreshed file gets a new id, so the
 * old one can stay open for its readers while the new one is renamed into place, a deferred
 * delete can never hit a newer file, and a path that is both a file and a directory upstream
 * cannot collide. A file counts only when both halves exist and agree on the size; anything
 * else found at start is removed, as is everything in tmp/.
 *
 * The index is an lru-cache kept within a byte budget. Making room evicts the least recently
 * used entries that are not protected (warmed files, and whatever the server marks as needed
 * by the fleet), and protected ones only when nothing else is left. Evicting (or purging, or
 * replacing) an entry deletes its files, but never under a reader: the delete waits until the
 * last lease is released. A read-only index (for `render` and `check`) never touches the disk.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';

/** What the sidecar holds. Times are ISO strings so an operator can read them. */
export interface EntryMeta {
  version: 1;
  id: string;
  mirror: string;
  path: string;
  /** The URL the bytes came from (the mirror's base when they were fetched, plus the path and query). */
  upstreamUrl: string;
  /** The normalised query the upstream was asked with (absent: none). */
  query?: string;
  size: number;
  contentType: string;
  contentEncoding?: string;
  upstreamEtag?: string;
  upstreamLastModified?: string;
  /**
   * The upstream's end-to-end response headers by lower-case name (Cache-Control, Expires, Date,
   * Age, Vary, Content-Disposition, Link, ...), updated by each 304. Content-Type, -Encoding,
   * ETag and Last-Modified are the fields above; hop-by-hop and framing headers are never kept.
   */
  headers?: Record<string, string>;
  /** The answer's age when it arrived, seconds (RFC 9111 corrected initial age); absent: 0. */
  initialAge?: number;
  fetchedAt: string;
  /** When the upstream's answer that last confirmed the file arrived (the fill's response, or a 304). */
  validatedAt: string;
  lastUsedAt: string;
  hits: number;
  sha256: string;
  sha512: string;
  /** True when the SHA-512 was checked against a published DIGESTS file. */
  digestVerified: boolean;
  /** Filled or confirmed by a warm request: evicted only when nothing unprotected is left. */
  warmed?: boolean;
}

export interface CacheEntry {
  readonly key: string;
  meta: EntryMeta;
  /** Leases open on the file. */
  readers: number;
  /** Out of the index; the files go when the last reader leaves. */
  retired: boolean;
  /** Sidecar rewrites, one at a time, in order. */
  metaWrites: Promise<void>;
  /** When the sidecar last recorded hits and use (ms). */
  persistedUseAt: number;
  /** Hits or use not yet written to the sidecar. */
  useUnsaved: boolean;
}

export interface Lease {
  readonly entry: CacheEntry;
  readonly file: string;
  release(): void;
}

const ID = /^[0-9a-f]{32}$/;
const META_SUFFIX = '.meta.json';

export function newObjectId(): string {
  return randomBytes(16).toString('hex');
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isMeta(value: unknown): value is EntryMeta {
  const meta = value as Partial<EntryMeta> | null;
  return (
    typeof meta === 'object' &&
    meta !== null &&
    meta.version === 1 &&
    typeof meta.id === 'string' &&
    typeof meta.mirror === 'string' &&
    typeof meta.path === 'string' &&
    typeof meta.upstreamUrl === 'string' &&
    typeof meta.size === 'number' &&
    Number.isSafeInteger(meta.size) &&
    meta.size >= 0 &&
    typeof meta.contentType === 'string' &&
    typeof meta.fetchedAt === 'string' &&
    typeof meta.validatedAt === 'string' &&
    typeof meta.lastUsedAt === 'string' &&
    typeof meta.hits === 'number' &&
    typeof meta.sha256 === 'string' &&
    typeof meta.sha512 === 'string' &&
    typeof meta.digestVerified === 'boolean' &&
    (meta.query === undefined || typeof meta.query === 'string') &&
    (meta.initialAge === undefined || (typeof meta.initialAge === 'number' && Number.isFinite(meta.initialAge) && meta.initialAge >= 0)) &&
    (meta.headers === undefined || (typeof meta.headers === 'object' && meta.headers !== null && Object.values(meta.headers).every((value) => typeof value === 'string')))
  );
}

export class CacheDisk {
  readonly root: string;
  readonly objectsDir: string;
  readonly tmpDir: string;

  constructor(cacheDir: string) {
    this.root = cacheDir;
    this.objectsDir = path.join(cacheDir, 'objects');
    this.tmpDir = path.join(cacheDir, 'tmp');
  }

  objectPath(id: string): string {
    return path.join(this.objectsDir, id);
  }

  metaPath(id: string): string {
    return path.join(this.objectsDir, `${id}${META_SUFFIX}`);
  }

  tempPath(id: string): string {
    return path.join(this.tmpDir, `${id}.part`);
  }

  /** Creates the directories and removes what interrupted fills left in tmp/. Returns the removed files. */
  async prepare(): Promise<string[]> {
    await mkdir(this.objectsDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const removed: string[] = [];
    for (const name of await readdir(this.tmpDir)) {
      // Only names this module writes: a mistaken cacheDir must not lose anyone's files.
      if (!/^[0-9a-f]{32}(\.part|\.meta\.json\.[0-9a-f]+\.tmp)$/.test(name)) continue;
      await rm(path.join(this.tmpDir, name), { force: true });
      removed.push(name);
    }
    return removed;
  }

  /**
   * Reads every complete object. Halves without their partner, sidecars that do not parse or
   * whose size disagrees with the file, and entries `keep` refuses are removed.
   */
  async scan(keep: (meta: EntryMeta) => boolean, options: { readOnly?: boolean } = {}): Promise<{ entries: EntryMeta[]; removed: string[] }> {
    let names: string[];
    try {
      names = await readdir(this.objectsDir);
    } catch (error) {
      // A read-only look at a cache that was never created: nothing cached.
      if (options.readOnly && (error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], removed: [] };
      throw error;
    }
    const data = new Set(names.filter((name) => ID.test(name)));
    const metas = new Set(names.filter((name) => name.endsWith(META_SUFFIX) && ID.test(name.slice(0, -META_SUFFIX.length))).map((name) => name.slice(0, -META_SUFFIX.length)));
    const entries: EntryMeta[] = [];
    const removed: string[] = [];
    for (const id of new Set([...data, ...metas])) {
      let meta: EntryMeta | undefined;
      if (data.has(id) && metas.has(id)) {
        try {
          const parsed: unknown = JSON.parse(await readFile(this.metaPath(id), 'utf8'));
          const size = (await stat(this.objectPath(id))).size;
          if (isMeta(parsed) && parsed.id === id && parsed.size === size && keep(parsed)) meta = parsed;
        } catch {
          meta = undefined;
        }
      }
      if (meta) entries.push(meta);
      else if (!options.readOnly) {
        await this.remove(id);
        removed.push(id);
      }
    }
    return { entries, removed };
  }

  /**
   * Makes a finished temp file a cache object: data on disk, then the sidecar, then the name,
   * then the directory entry, so a crash at any point leaves either nothing or a whole object.
   */
  async commit(handle: FileHandle, meta: EntryMeta): Promise<void> {
    await handle.sync();
    await this.writeMeta(meta, true);
    try {
      await rename(this.tempPath(meta.id), this.objectPath(meta.id));
      await syncDirectory(this.objectsDir);
    } catch (error) {
      await this.remove(meta.id).catch(() => undefined);
      throw error;
    }
  }

  /** Replaces the sidecar atomically (temp file and rename); `durable` also fsyncs it. */
  async writeMeta(meta: EntryMeta, durable: boolean): Promise<void> {
    const temp = path.join(this.tmpDir, `${meta.id}${META_SUFFIX}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(meta, null, 2)}\n`);
        if (durable) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.metaPath(meta.id));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  async remove(id: string): Promise<void> {
    // The data first: a sidecar left alone is cleaned at the next start, a lone file too.
    await rm(this.objectPath(id), { force: true });
    await rm(this.metaPath(id), { force: true });
  }
}

export interface IndexEvents {
  /** An entry left the index to make room. */
  evicted(entry: CacheEntry): void;
  /** Deleting an entry's files, or rewriting its sidecar, failed. */
  fileError(entry: CacheEntry, action: 'delete' | 'write sidecar', error: unknown): void;
}

/** How often (at most) a file's hits and last use are written back to its sidecar. */
const USE_PERSIST_INTERVAL_MS = 60_000;

export interface CacheIndexOptions {
  /** Entries evicted last: only when every unprotected one is gone. */
  isProtected?: (entry: CacheEntry) => boolean;
  /** Never delete or write files (the index of a read-only mirror). */
  readOnly?: boolean;
}

const entrySize = (entry: CacheEntry) => Math.max(1, entry.meta.size);

export class CacheIndex {
  private readonly store: CacheDisk;
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly events: IndexEvents;
  private readonly pending = new Set<Promise<void>>();
  private readonly isProtected: (entry: CacheEntry) => boolean;
  private readonly readOnly: boolean;
  readonly maxBytes: number;

  constructor(store: CacheDisk, maxBytes: number, events: IndexEvents, options: CacheIndexOptions = {}) {
    this.store = store;
    this.maxBytes = maxBytes;
    this.events = events;
    this.isProtected = options.isProtected ?? (() => false);
    this.readOnly = options.readOnly ?? false;
    this.lru = new LRUCache<string, CacheEntry>({
      // The budget is applied in insert(), which knows which entries are protected; lru-cache
      // only keeps the order and the sizes.
      maxSize: Number.MAX_SAFE_INTEGER,
      // lru-cache wants a positive integer; an empty file still costs an inode and a sidecar.
      sizeCalculation: entrySize,
      // Every way out of the index (evict, delete, clear, and set over an older version of the
      // same path) retires that entry's object: ids are unique, so the object is never the
      // one that replaced it.
      dispose: (entry) => this.retire(entry),
    });
  }

  get usedBytes(): number {
    return this.lru.calculatedSize;
  }

  get size(): number {
    return this.lru.size;
  }

  /** The entry, marked as recently used. */
  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  peek(key: string): CacheEntry | undefined {
    return this.lru.peek(key);
  }

  /** Whether the entry is evicted last (warmed, or needed by the fleet). */
  protects(entry: CacheEntry): boolean {
    return this.isProtected(entry);
  }

  /** Most recently used first. */
  entries(): CacheEntry[] {
    return [...this.lru.values()];
  }

  /**
   * Adds an object under its key (evicting least recently used ones to make room). False when the file alone
   * is larger than the budget: lru-cache would silently drop it and never dispose it, leaving
   * the file orphaned, so the caller deletes it instead.
   */
  insert(meta: EntryMeta, key: string): boolean {
    if (Math.max(1, meta.size) > this.maxBytes) return false;
    const entry: CacheEntry = { key, meta, readers: 0, retired: false, metaWrites: Promise.resolve(), persistedUseAt: Date.now(), useUnsaved: false };
    const replaced = this.lru.peek(entry.key);
    let used = this.usedBytes - (replaced ? entrySize(replaced) : 0);
    while (used + entrySize(entry) > this.maxBytes) {
      const victim = this.leastValuable(entry.key);
      if (!victim) break;
      used -= entrySize(victim);
      this.events.evicted(victim);
      this.lru.delete(victim.key);
    }
    this.lru.set(entry.key, entry);
    return true;
  }

  /** The least recently used unprotected entry, else the least recently used protected one. */
  private leastValuable(except: string): CacheEntry | undefined {
    let protectedVictim: CacheEntry | undefined;
    for (const entry of this.lru.rvalues()) {
      if (!entry || entry.key === except) continue;
      if (!this.isProtected(entry)) return entry;
      protectedVictim ??= entry;
    }
    return protectedVictim;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  clear(): number {
    const count = this.lru.size;
    this.lru.clear();
    return count;
  }

  /** Holds the entry's file open for a reader; its files outlive an eviction until release. */
  lease(entry: CacheEntry): Lease {
    entry.readers += 1;
    let released = false;
    return {
      entry,
      file: this.store.objectPath(entry.meta.id),
      release: () => {
        if (released) return;
        released = true;
        entry.readers -= 1;
        if (entry.readers === 0 && entry.retired) this.removeFiles(entry);
      },
    };
  }

  /** Counts a hit and, now and then, writes hits and last use back to the sidecar. */
  recordUse(entry: CacheEntry, now: number): void {
    entry.meta.hits += 1;
    entry.meta.lastUsedAt = new Date(now).toISOString();
    entry.useUnsaved = true;
    if (now - entry.persistedUseAt >= USE_PERSIST_INTERVAL_MS) {
      entry.persistedUseAt = now;
      this.persistMeta(entry);
    }
  }

  /** Writes hits and last use that are not in the sidecars yet (at shutdown). */
  saveUse(): void {
    for (const entry of this.lru.values()) if (entry.useUnsaved) this.persistMeta(entry);
  }

  /** Rewrites the entry's sidecar (after a revalidation, or to record use); not fsynced. */
  persistMeta(entry: CacheEntry): void {
    if (entry.retired || this.readOnly) return;
    entry.useUnsaved = false;
    entry.metaWrites = entry.metaWrites
      .then(() => (entry.retired ? undefined : this.store.writeMeta(entry.meta, false)))
      .catch((error: unknown) => this.events.fileError(entry, 'write sidecar', error));
    this.track(entry.metaWrites);
  }

  /** Resolves when every pending delete and sidecar write has finished. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private retire(entry: CacheEntry): void {
    if (entry.retired) return;
    entry.retired = true;
    if (entry.readers === 0) this.removeFiles(entry);
  }

  private removeFiles(entry: CacheEntry): void {
    if (this.readOnly) return;
    // After any sidecar write in flight, which would otherwise recreate the sidecar.
    const removal = entry.metaWrites
      .then(() => this.store.remove(entry.meta.id))
      .catch((error: unknown) => this.events.fileError(entry, 'delete', error));
    this.track(removal);
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }
}
