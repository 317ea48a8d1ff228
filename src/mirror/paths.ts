/**
 * Names and paths: which mirror paths are acceptable, what upstream URL a path maps to, and
 * which paths may change upstream (and so are revalidated) and which never do.
 */
import { safeSegments } from '../assets/asset-root.ts';
import { encodeUriComponentStrict } from '../common/escape.ts';
import type { MirrorDefinition } from './config.ts';

export const MIRROR_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
const MIRROR_NAME = new RegExp(MIRROR_NAME_PATTERN);

export function isMirrorName(name: string): boolean {
  return MIRROR_NAME.test(name);
}

/**
 * The path's segments, or undefined when it is not acceptable. The same rules as /assets: no
 * empty, `.`/`..` or dot-leading segments, no backslash or NUL, so a path can never climb out
 * of the upstream base or collide with the cache's own bookkeeping.
 */
export function mirrorPathSegments(relativePath: string): string[] | undefined {
  return safeSegments(relativePath);
}

/** Index key of a mirrored file. Mirror names hold no `/`, so the split is unambiguous. */
export function cacheKey(mirror: string, relativePath: string): string {
  return `${mirror}/${relativePath}`;
}

/** Splits `NAME/path/to/file` (the form the warm API takes) into mirror and path. */
export function splitMirrorPath(mirrorPath: string): { mirror: string; path: string } | undefined {
  const trimmed = mirrorPath.replace(/^\/+/, '').replace(/^mirror\//, '');
  const slash = trimmed.indexOf('/');
  if (slash <= 0) return undefined;
  return { mirror: trimmed.slice(0, slash), path: trimmed.slice(slash + 1) };
}

/** The upstream URL of a path: segments percent-encoded again after the router decoded them. */
export function upstreamUrl(base: string, segments: readonly string[]): string {
  return `${base}/${segments.map(encodeUriComponentStrict).join('/')}`;
}

/** A directory named like a release: 4152.2.0, v1.2.3, 1.2.3-rc.1. */
const VERSION_SEGMENT = /^v?\d+(\.\d+)+([-+~_.][0-9A-Za-z.]+)*$/;
/** Directories whose content moves from one release to the next. */
const MOVING_SEGMENTS = new Set(['current', 'latest', 'stable', 'beta', 'alpha', 'edge', 'nightly', 'main', 'master']);
/** Names that describe a release rather than belong to one. */
const MOVING_NAMES = new Set(['version.txt']);

/**
 * True when the file at this path never changes upstream: a directory on its way is a version
 * number, none is a moving name such as `current`, and the file is not a `version.txt`. Every
 * other path is mutable and is revalidated after `mutableMaxAge`.
 */
export function isImmutablePath(segments: readonly string[]): boolean {
  const name = segments[segments.length - 1];
  if (name === undefined || MOVING_NAMES.has(name)) return false;
  const directories = segments.slice(0, -1);
  if (directories.some((segment) => MOVING_SEGMENTS.has(segment.toLowerCase()))) return false;
  return directories.some((segment) => VERSION_SEGMENT.test(segment));
}

/** Files Flatcar does not publish a DIGESTS file for: signatures, digests, release descriptors. */
const UNDIGESTED = /(\.DIGESTS|\.DIGESTS\.asc|\.sig|\.asc)$/;

/**
 * The sibling `FILE.DIGESTS` a Flatcar file is checked against, or undefined when the file has
 * none (signatures, the DIGESTS files themselves, `version.txt`, files outside a release dir).
 */
export function digestsPathFor(segments: readonly string[]): string | undefined {
  const name = segments[segments.length - 1];
  if (name === undefined || segments.length < 3 || UNDIGESTED.test(name) || MOVING_NAMES.has(name)) return undefined;
  return `${segments.join('/')}.DIGESTS`;
}

/** The path is one the mirror may fetch (its `paths` patterns, when it has any). */
export function acceptsPath(mirror: Pick<MirrorDefinition, 'paths'>, relativePath: string): boolean {
  return mirror.paths === undefined || mirror.paths.some((pattern) => pattern.test(relativePath));
}
