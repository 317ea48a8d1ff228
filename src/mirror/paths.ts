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

/**
 * Index key of a mirrored file: `NAME/path`, or `NAME/path?query` with the query the key keeps.
 * Mirror names hold no `/`; a `%` or `?` inside the path is written `%25` / `%3F`, so the first
 * `?` always starts the query and no two files share a key.
 */
export function cacheKey(mirror: string, relativePath: string, keyQuery = ''): string {
  const pathPart = /[%?]/.test(relativePath) ? relativePath.replace(/%/g, '%25').replace(/\?/g, '%3F') : relativePath;
  return keyQuery === '' ? `${mirror}/${pathPart}` : `${mirror}/${pathPart}?${keyQuery}`;
}

/** Characters a query keeps as they are (RFC 3986 `query`: pchar, `/`, `?`); `%` starts an escape. */
const QUERY_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?]$/;
const UNRESERVED_CHAR = /^[A-Za-z0-9\-._~]$/;

function escapeChar(char: string): string {
  const code = char.charCodeAt(0);
  if (code < 0x100) return `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
  return encodeURIComponent(char);
}

/**
 * A query in one spelling (RFC 3986 6.2.2): escapes of unreserved characters decoded, other
 * escapes in upper-case hex, characters a query may not hold escaped, a `%` that starts no
 * escape written `%25`, empty `&&` elements and a lone `?` dropped. The order of parameters
 * and `+` are kept: an upstream may sign its query as it is. Without the leading `?`.
 */
export function normaliseQuery(raw: string): string {
  const text = raw.startsWith('?') ? raw.slice(1) : raw;
  const pieces: string[] = [];
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    let out = '';
    for (let i = 0; i < piece.length; i++) {
      const char = piece[i] ?? '';
      if (char === '%') {
        const hex = piece.slice(i + 1, i + 3);
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          const decoded = String.fromCharCode(parseInt(hex, 16));
          out += UNRESERVED_CHAR.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
          i += 2;
        } else out += '%25';
      } else out += QUERY_CHAR.test(char) && char !== '&' ? char : escapeChar(char);
    }
    pieces.push(out);
  }
  return pieces.join('&');
}

/** A parameter's name as configured: the part before `=`, escapes decoded. */
function parameterName(piece: string): string {
  const name = piece.split('=', 1)[0] ?? '';
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** The query the cache key keeps: the normalised query without the named parameters. */
export function keyQuery(query: string, ignore: readonly string[] | undefined): string {
  if (query === '' || !ignore || ignore.length === 0) return query;
  return query
    .split('&')
    .filter((piece) => !ignore.includes(parameterName(piece)))
    .join('&');
}

/** What one request for a mirrored file names: its path, the query asked upstream, its key and URL. */
export interface MirrorTarget {
  path: string;
  segments: string[];
  /** The normalised query sent upstream; '' for none. */
  query: string;
  /** The index key (the query without the mirror's `ignoreQueryParams`). */
  key: string;
  /** The URL the upstream is asked for: path and query. */
  url: string;
}

/** The target of `relativePath` plus a raw query under a mirror, or undefined when the path is not acceptable. */
export function mirrorTarget(mirror: Pick<MirrorDefinition, 'name' | 'url' | 'ignoreQueryParams' | 'dropQuery'>, relativePath: string, rawQuery = ''): MirrorTarget | undefined {
  const segments = mirrorPathSegments(relativePath);
  if (!segments) return undefined;
  const query = mirror.dropQuery ? '' : normaliseQuery(rawQuery);
  const base = upstreamUrl(mirror.url, segments);
  return { path: relativePath, segments, query, key: cacheKey(mirror.name, relativePath, keyQuery(query, mirror.ignoreQueryParams)), url: query === '' ? base : `${base}?${query}` };
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

/** Immutable for this mirror: a versioned path, unless every path of the mirror may change (a bootdepot origin's /assets/). */
export function isImmutableFor(mirror: Pick<MirrorDefinition, 'mutableOnly'>, segments: readonly string[]): boolean {
  return mirror.mutableOnly !== true && isImmutablePath(segments);
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
