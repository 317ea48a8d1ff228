/**
 * Flatcar through the mirror: which mirror serves a channel, the versioned base URL a script
 * should use, and resolving `current` to the release it stands for right now. A script
 * rendered with a concrete version downloads kernel and initrd of one release even when a new
 * one is published between the two downloads.
 */
import { encodeUriComponentStrict } from '../boot/escape.ts';
import type { PullThroughMirror } from './mirror.ts';

/** What resolving `current` needs of the mirror (a render context can carry just this). */
export type FlatcarVersionSource = Pick<PullThroughMirror, 'readText'>;

/** Flatcar release numbers: major.minor.patch. */
const VERSION = /^\d+\.\d+\.\d+$/;

/** Name of the built-in mirror for a channel (`stable` -> `flatcar-stable`). */
export function flatcarMirrorName(channel: string): string {
  return `flatcar-${channel}`;
}

/** Path of a release directory under a channel's mirror: `amd64-usr/4152.2.0`. */
export function flatcarReleasePath(arch: string, version: string): string {
  return `${arch}-usr/${version}`;
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

/**
 * The release `current` stands for in a channel's mirror, read through the cache from
 * `ARCH-usr/current/version.txt` (revalidated upstream after `mutableMaxAge`, served stale if
 * the upstream fails). A concrete version is returned as it is. Throws with a message fit for
 * a wait script when it cannot be resolved.
 */
export async function resolveFlatcarVersion(mirror: FlatcarVersionSource, mirrorName: string, arch: string, version: string): Promise<string> {
  if (version !== 'current') return version;
  const file = `${arch}-usr/current/version.txt`;
  let text: string;
  try {
    text = await mirror.readText(mirrorName, file, 64 * 1024);
  } catch (error) {
    throw new Error(`cannot resolve Flatcar ${mirrorName} current: ${(error as Error).message}`, { cause: error });
  }
  const resolved = parseFlatcarVersion(text);
  if (!resolved) throw new Error(`cannot resolve Flatcar ${mirrorName} current: ${file} has no FLATCAR_VERSION=<major.minor.patch> line`);
  return resolved;
}
