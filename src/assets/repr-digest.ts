/**
 * `Repr-Digest` (RFC 9530) for the files of the assets directory: SHA-256 and SHA-512 of each
 * file version, computed once and kept.
 *
 * A version is the file's inode, size and modification time in nanoseconds (what the strong
 * ETag is made of, conditional.ts), so a digest can never describe other bytes than the ones
 * sent: an upload's rename makes a new inode, an in-place write a new mtime. Digests are kept
 * in memory and in a sidecar per file under `<assets>/.digests/` (a dot directory, which
 * `/assets` never serves), so a restart does not hash everything again; a sidecar whose version
 * does not match the file is ignored and replaced.
 *
 * Uploads hash on the way in (upload.ts) and record the digests before anyone can ask. A file
 * placed by hand is hashed the first time it is asked for: a file of at most `inlineBytes` is
 * hashed before the answer (a 48 MiB file takes about 90 ms, docs/http-semantics.md), a larger
 * one in the background, one at a time, and its answers carry no Repr-Digest until the digest
 * is known. Concurrent requests for one version share one hashing.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { isInnerList, parseDictionary, serializeDictionary, type Dictionary, type Item } from 'structured-headers';
import { safeSegments } from './asset-root.ts';
import type { RequestHeaders } from './conditional.ts';

/** Hex digests of one file version. */
export interface FileDigests {
  sha256: string;
  sha512: string;
}

export type FileVersion = Pick<BigIntStats, 'ino' | 'size' | 'mtimeNs'>;

/** The directory under the assets root that holds the sidecars. */
export const DIGEST_DIR = '.digests';

/** Files up to this size are hashed before their first answer (about 120 ms at 64 MiB). */
export const DEFAULT_INLINE_BYTES = 64 * 1024 * 1024;

/** The algorithms bootdepot sends, in the order of its Repr-Digest header. */
const ALGORITHMS = ['sha-256', 'sha-512'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

const READ_SIZE = 1024 * 1024;

export interface DigestLog {
  warn(fields: object, message: string): void;
  debug?(fields: object, message: string): void;
}

export interface ReprDigestOptions {
  /** The assets root (sidecars go under its `.digests/`). */
  root: string;
  inlineBytes?: number;
  log?: DigestLog;
  /** Look, never touch: sidecars are read but not written (for `render`, `check`). */
  readOnly?: boolean;
}

function versionKey(version: FileVersion): string {
  return `${version.ino.toString(16)}-${version.size.toString(16)}-${version.mtimeNs.toString(16)}`;
}

/** SHA-256 and SHA-512 of a file read through an open handle. */
export async function hashFile(handle: FileHandle): Promise<FileDigests> {
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  const buffer = Buffer.allocUnsafe(READ_SIZE);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    sha256.update(chunk);
    sha512.update(chunk);
    position += bytesRead;
  }
  return { sha256: sha256.digest('hex'), sha512: sha512.digest('hex') };
}

interface Known {
  version: string;
  digests: FileDigests;
}

export class ReprDigests {
  private readonly root: string;
  private readonly inlineBytes: number;
  private readonly log: DigestLog | undefined;
  private readonly readOnly: boolean;
  private readonly known = new LRUCache<string, Known>({ max: 50_000 });
  /** Hashing in progress, by path and version. */
  private readonly pending = new Map<string, Promise<FileDigests | undefined>>();
  /** Background hashing runs one file at a time: the CPU stays for downloads. */
  private queue: Promise<unknown> = Promise.resolve();
  private sidecarWriteFailed = false;

  constructor(options: ReprDigestOptions) {
    this.root = path.resolve(options.root);
    this.inlineBytes = options.inlineBytes ?? DEFAULT_INLINE_BYTES;
    this.log = options.log;
    this.readOnly = options.readOnly ?? false;
  }

  private sidecarPath(relativePath: string): string | undefined {
    const segments = safeSegments(relativePath);
    return segments ? `${path.join(this.root, DIGEST_DIR, ...segments)}.json` : undefined;
  }

  /** Records the digests of a version computed elsewhere (an upload, before its rename). */
  async remember(relativePath: string, version: FileVersion, digests: FileDigests): Promise<void> {
    const key = versionKey(version);
    this.known.set(relativePath, { version: key, digests });
    await this.writeSidecar(relativePath, { version: key, digests });
  }

  /** Forgets a path (after a delete): its memory and its sidecar. */
  async forget(relativePath: string): Promise<void> {
    this.known.delete(relativePath);
    const file = this.sidecarPath(relativePath);
    if (file && !this.readOnly) await rm(file, { force: true }).catch(() => undefined);
  }

  /** The digests of this version when known now, from memory or its sidecar; nothing is hashed. */
  async peek(relativePath: string, version: FileVersion): Promise<FileDigests | undefined> {
    const key = versionKey(version);
    const inMemory = this.known.get(relativePath);
    if (inMemory?.version === key) return inMemory.digests;
    const fromDisk = await this.readSidecar(relativePath);
    if (fromDisk?.version !== key) return undefined;
    this.known.set(relativePath, fromDisk);
    return fromDisk.digests;
  }

  /**
   * The digests for an answer about to be sent from `handle` (whose version is `version`):
   * known ones at once; otherwise hashing starts, and is waited for when the file is small
   * enough (see the module comment). `realPath` lets background hashing open the file itself,
   * since the request's handle closes with the request.
   */
  async forAnswer(relativePath: string, handle: FileHandle, realPath: string, version: FileVersion): Promise<FileDigests | undefined> {
    const known = await this.peek(relativePath, version);
    if (known) return known;
    const key = `${relativePath}\0${versionKey(version)}`;
    const inline = version.size <= BigInt(this.inlineBytes);
    let hashing = this.pending.get(key);
    if (!hashing) {
      hashing = (inline ? this.hashVersion(relativePath, version, () => Promise.resolve(handle), false) : this.background(relativePath, realPath, version)).finally(() => {
        this.pending.delete(key);
      });
      this.pending.set(key, hashing);
    }
    // A background hash of a large file is not waited for; an inline one may have been started
    // by a request whose handle is still open, which is as good as ours.
    return inline ? hashing : undefined;
  }

  /** Resolves when no hashing is running (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending.values()]);
  }

  private background(relativePath: string, realPath: string, version: FileVersion): Promise<FileDigests | undefined> {
    const run = this.queue.then(() => this.hashVersion(relativePath, version, () => open(realPath, 'r'), true));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async hashVersion(relativePath: string, version: FileVersion, openFile: () => Promise<FileHandle>, owned: boolean): Promise<FileDigests | undefined> {
    const key = versionKey(version);
    const started = performance.now();
    let handle: FileHandle | undefined;
    try {
      handle = await openFile();
      const before = await handle.stat({ bigint: true });
      // The path may hold another version by now; that one is hashed when it is asked for.
      if (versionKey(before) !== key) return undefined;
      const digests = await hashFile(handle);
      // Written to while it was read: the digest describes no version; hash again next time.
      if (versionKey(await handle.stat({ bigint: true })) !== key) return undefined;
      this.known.set(relativePath, { version: key, digests });
      this.log?.debug?.({ path: relativePath, bytes: Number(version.size), ms: Math.round(performance.now() - started) }, 'asset digests computed');
      await this.writeSidecar(relativePath, { version: key, digests });
      return digests;
    } catch (error) {
      this.log?.warn({ path: relativePath, err: error }, 'cannot compute the digests of an asset; answered without Repr-Digest');
      return undefined;
    } finally {
      if (owned) await handle?.close().catch(() => undefined);
    }
  }

  private async readSidecar(relativePath: string): Promise<Known | undefined> {
    const file = this.sidecarPath(relativePath);
    if (!file) return undefined;
    try {
      const value = JSON.parse(await readFile(file, 'utf8')) as Partial<Known> | null;
      const digests = value?.digests;
      if (typeof value?.version !== 'string' || !digests || !/^[0-9a-f]{64}$/.test(digests.sha256) || !/^[0-9a-f]{128}$/.test(digests.sha512)) return undefined;
      return { version: value.version, digests: { sha256: digests.sha256, sha512: digests.sha512 } };
    } catch {
      return undefined;
    }
  }

  private async writeSidecar(relativePath: string, known: Known): Promise<void> {
    const file = this.sidecarPath(relativePath);
    if (!file || this.readOnly) return;
    // Named like an upload's temp file, so the cleanup at start removes one a crash left.
    const temp = path.join(path.dirname(file), `.upload-${randomBytes(8).toString('hex')}.tmp`);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(temp, `${JSON.stringify(known)}\n`, { mode: 0o644 });
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      // A read-only assets directory keeps digests in memory only; said once.
      if (!this.sidecarWriteFailed) this.log?.warn({ dir: path.join(this.root, DIGEST_DIR), err: error }, 'cannot keep asset digests on disk; they are kept in memory only');
      this.sidecarWriteFailed = true;
    }
  }
}

function headerText(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * An item's bare value. The library's type for it includes the DOM's `BufferSource`, which Node's
 * types do not declare: read as unknown and narrowed where it is used.
 */
function itemValue(item: Item): unknown {
  return (item as unknown as readonly [unknown])[0];
}

/**
 * `Want-Repr-Digest: sha-512=3, sha-256=1` (a structured-field dictionary of integers 0-10,
 * RFC 9530 4) as preferences; undefined when absent or malformed (then it is ignored, as RFC 9530 allows).
 */
export function parseWantDigest(value: string | undefined): Map<string, number> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return undefined;
  }
  const wanted = new Map<string, number>();
  for (const [name, member] of dictionary) {
    const weight = isInnerList(member) ? undefined : itemValue(member);
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 10) return undefined;
    wanted.set(name, weight);
  }
  return wanted;
}

/**
 * The Repr-Digest header for a file's digests as the request wants it: both algorithms without
 * Want-Repr-Digest; otherwise the supported ones it asks for (weight above 0), most wanted first.
 * When it names none of them, both are sent except those it refuses (weight 0); undefined when it refuses both.
 */
export function reprDigestHeader(digests: Partial<FileDigests>, headers: RequestHeaders): string | undefined {
  const hexOf = (algorithm: Algorithm) => (algorithm === 'sha-256' ? digests.sha256 : digests.sha512);
  const known = ALGORITHMS.filter((algorithm) => hexOf(algorithm) !== undefined);
  const want = parseWantDigest(headerText(headers, 'want-repr-digest'));
  let chosen: Algorithm[] = known;
  if (want) {
    const asked = known.filter((algorithm) => (want.get(algorithm) ?? 0) > 0);
    if (asked.length > 0) chosen = asked.sort((a, b) => (want.get(b) ?? 0) - (want.get(a) ?? 0));
    else chosen = known.filter((algorithm) => want.get(algorithm) !== 0);
  }
  if (chosen.length === 0) return undefined;
  return serializeDictionary(new Map(chosen.map((algorithm) => [algorithm, [Buffer.from(hexOf(algorithm) ?? '', 'hex'), new Map()]])));
}

/**
 * An upstream's `Repr-Digest` as hex digests by algorithm (`sha-256`, `sha-512`; others are
 * left out); undefined when there is none, an empty map when it names nothing bootdepot checks.
 * Throws on a malformed value of a supported algorithm: a digest that cannot be read cannot vouch for anything.
 */
export function parseReprDigest(value: string | undefined): Map<'sha-256' | 'sha-512', string> | undefined {
  if (value === undefined) return undefined;
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch (error) {
    throw new Error(`malformed Repr-Digest ${JSON.stringify(value)}: ${(error as Error).message}`, { cause: error });
  }
  const digests = new Map<'sha-256' | 'sha-512', string>();
  for (const [name, member] of dictionary) {
    // Dictionary keys are lowercase (RFC 8941): `SHA-256` could not even be parsed.
    if (name !== 'sha-256' && name !== 'sha-512') continue;
    const bytes = isInnerList(member) ? undefined : itemValue(member);
    const hex = bytes instanceof ArrayBuffer ? Buffer.from(bytes).toString('hex') : '';
    if (hex.length !== (name === 'sha-256' ? 64 : 128)) throw new Error(`malformed ${name} in Repr-Digest ${JSON.stringify(value)}`);
    digests.set(name, hex);
  }
  return digests;
}
