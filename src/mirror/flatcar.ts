/**
 * Flatcar through the mirror: which mirror serves a channel, the versioned base URL a script
 * should use, and resolving `current` to the release it stands for right now. A script
 * rendered with a concrete version downloads kernel and initrd of one release even when a new
 * one is published between the two downloads.
 */
import { encodeUriComponentStrict } from '../common/escape.ts';
import type { PullThroughMirror } from './mirror.ts';

/**
 * What resolving `current` needs of the mirror (a render context can carry just this).
 * `readTextWithin` is what keeps a script from waiting on a slow upstream; a source without it
 * (an offline stand-in) is raced against the budget instead, with no stale copy to fall back on.
 */
export type FlatcarVersionSource = Pick<PullThroughMirror, 'readText'> & Partial<Pick<PullThroughMirror, 'readTextWithin'>>;

export interface ResolveFlatcarOptions {
  /** Longest a script waits for the upstream, in ms (default 2000). */
  budgetMs?: number;
}

/** The release to boot, and what the caller should log when it is not the upstream's answer of now. */
export interface ResolvedFlatcarVersion {
  version: string;
  /** e.g. `Flatcar flatcar-stable current: upstream slow (no answer in 2 s); using the last known release 4152.2.0`. */
  note?: string;
}

export const DEFAULT_RESOLVE_BUDGET_MS = 2000;

/** Flatcar release numbers: major.minor.patch. */
const VERSION = /^\d+\.\d+\.\d+$/;

/** Name of the built-in mirror for a channel (`stable` -> `flatcar-stable`). */
export function flatcarMirrorName(channel: string): string {
  return `flatcar-${channel}`;
}

/**
 * URL of a release directory through bootdepot, e.g.
 * `http://10.0.0.5:8080/mirror/flatcar-stable/amd64-usr/4152.2.0`; append `/FILE`.
 */
export function flatcarMirrorBaseUrl(baseUrl: string, mirrorName: string, arch: string, version: string): string {
  return `${baseUrl}/mirror/${[mirrorName, `${arch}-usr`, version].map(encodeUriComponentStrict).join('/')}`;
}

/** The `FLATCAR_VERSION=...` of a `version.txt`, or undefined when it has none. */
export function parseFlatcarVersion(text: string): string | undefined {
  const match = /^FLATCAR_VERSION=["']?([^"'\s]+)["']?\s*$/m.exec(text);
  return match?.[1] !== undefined && VERSION.test(match[1]) ? match[1] : undefined;
}

const VERSION_FILE_LIMIT = 64 * 1024;

/** Reads through a source without `readTextWithin`: the budget still bounds the wait. */
async function readWithinBudget(mirror: FlatcarVersionSource, mirrorName: string, file: string, budgetMs: number): Promise<{ text: string; staleBecause?: string }> {
  if (mirror.readTextWithin) return mirror.readTextWithin(mirrorName, file, { maxBytes: VERSION_FILE_LIMIT, budgetMs });
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${budgetMs / 1000} s`)), budgetMs);
  });
  const reading = mirror.readText(mirrorName, file, VERSION_FILE_LIMIT);
  reading.catch(() => undefined);
  try {
    return { text: await Promise.race([reading, budget]) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The release `current` stands for in a channel's mirror, read through the cache from
 * `ARCH-usr/current/version.txt` (revalidated upstream after `mutableMaxAge`). A script never
 * waits on the upstream longer than `budgetMs`: when it is slow or down and a copy is on disk,
 * that copy answers and `note` says so (the refresh goes on in the background for the next
 * boot). A concrete version is returned as it is. Throws with a message fit for a wait script
 * when nothing is known.
 */
export async function resolveFlatcarVersion(mirror: FlatcarVersionSource, mirrorName: string, arch: string, version: string, options: ResolveFlatcarOptions = {}): Promise<ResolvedFlatcarVersion> {
  if (version !== 'current') return { version };
  const file = `${arch}-usr/current/version.txt`;
  let result: { text: string; staleBecause?: string };
  try {
    result = await readWithinBudget(mirror, mirrorName, file, options.budgetMs ?? DEFAULT_RESOLVE_BUDGET_MS);
  } catch (error) {
    throw new Error(`cannot resolve Flatcar ${mirrorName} current: ${(error as Error).message}`, { cause: error });
  }
  const resolved = parseFlatcarVersion(result.text);
  if (!resolved) throw new Error(`cannot resolve Flatcar ${mirrorName} current: ${file} has no FLATCAR_VERSION=<major.minor.patch> line`);
  if (result.staleBecause === undefined) return { version: resolved };
  return { version: resolved, note: `Flatcar ${mirrorName} current: ${result.staleBecause}; using the last known release ${resolved}` };
}
