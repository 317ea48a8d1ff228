/**
 * HTTP validators and preconditions for files (RFC 9110 sections 8.8 and 13).
 *
 * The ETag is strong: it changes whenever the file's inode, size or modification time (in
 * nanoseconds) does, which covers both in-place writes and the atomic replace of an upload.
 * It is computed from the fstat of the open file, so it always describes the bytes being sent.
 */
import type { BigIntStats } from 'node:fs';

export interface Validators {
  /** Strong entity tag, quoted: `"1a2b-400000-17f3c2a1b4c5d6e7"`. */
  etag: string;
  /** Modification time truncated to whole seconds, as HTTP dates carry. */
  lastModified: Date;
  /**
   * Other entity tags of the same bytes that If-None-Match also accepts (weak comparison), e.g. a
   * mirrored file's weak ETag from its upstream while the strong one sent is the file's own.
   */
  alsoMatches?: readonly string[];
}

/** An entity tag as RFC 9110 8.8.3 spells it: `"..."` or `W/"..."`. */
export function isEntityTag(value: string): boolean {
  return /^(W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/.test(value);
}

export function validatorsFor(stat: Pick<BigIntStats, 'ino' | 'size' | 'mtimeNs'>): Validators {
  const etag = `"${stat.ino.toString(16)}-${stat.size.toString(16)}-${stat.mtimeNs.toString(16)}"`;
  const seconds = stat.mtimeNs / 1_000_000_000n;
  return { etag, lastModified: new Date(Number(seconds) * 1000) };
}

interface EntityTag {
  weak: boolean;
  /** The opaque tag with its quotes, e.g. `"abc"`. */
  tag: string;
}

/** Parses an If-Match / If-None-Match list; `undefined` for `*`, an empty list when it is malformed. */
export function parseEntityTags(header: string): EntityTag[] | undefined {
  if (header.trim() === '*') return undefined;
  const tags: EntityTag[] = [];
  const pattern = /\s*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(header)) !== null && match[0] !== '') {
    tags.push({ weak: match[1] !== undefined, tag: match[2] ?? '' });
    if (pattern.lastIndex >= header.length) break;
  }
  return tags;
}

/** Strong comparison: both strong and identical. */
function strongMatch(tags: EntityTag[], etag: string): boolean {
  return tags.some((t) => !t.weak && t.tag === etag);
}

/** Weak comparison: identical opaque tags, weakness ignored. */
function weakMatch(tags: EntityTag[], etag: string, also: readonly string[] = []): boolean {
  const opaque = [etag, ...also].map((tag) => tag.replace(/^W\//, ''));
  return tags.some((t) => opaque.includes(t.tag));
}

/**
 * The three HTTP-date forms of RFC 9110 5.6.7: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
 * `Date.parse` alone would also take `2026`, ISO 8601 or a bare number, which are not dates here.
 */
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** IMF-fixdate, RFC 850 and asctime; names in any case (recipients may be lenient, RFC 9110 5.6.7). */
const IMF_FIXDATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} gmt$`, 'i');
const RFC_850 = new RegExp(`^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} gmt$`, 'i');
const ASCTIME = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

/** RFC 9110 5.6.7: a two-digit year more than 50 years ahead is the most recent past year with those digits. */
function fullYear(twoDigits: number, now: number): number {
  const thisYear = new Date(now).getUTCFullYear();
  const year = thisYear - (thisYear % 100) + twoDigits;
  return year > thisYear + 50 ? year - 100 : year;
}

/**
 * The three HTTP-date forms of RFC 9110 5.6.7: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`),
 * read field by field (a day, hour or minute out of range is no date). `Date.parse` alone would
 * also take `2026`, ISO 8601 or a bare number, which are not dates here, and reads `-50` as 1950.
 */
export function parseHttpDate(value: string | undefined, now = Date.now()): Date | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  let parts: { day: string; month: string; year: number; hour: string; minute: string; second: string } | undefined;
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(trimmed))) parts = { day: match[1] ?? '', month: match[2] ?? '', year: Number(match[3]), hour: match[4] ?? '', minute: match[5] ?? '', second: match[6] ?? '' };
  else if ((match = RFC_850.exec(trimmed))) parts = { day: match[1] ?? '', month: match[2] ?? '', year: fullYear(Number(match[3]), now), hour: match[4] ?? '', minute: match[5] ?? '', second: match[6] ?? '' };
  else if ((match = ASCTIME.exec(trimmed))) parts = { month: match[1] ?? '', day: match[2] ?? '', hour: match[3] ?? '', minute: match[4] ?? '', second: match[5] ?? '', year: Number(match[6]) };
  if (!parts) return undefined;
  const month = MONTHS.indexOf(parts.month.toLowerCase());
  const [day, hour, minute, second] = [parts.day, parts.hour, parts.minute, parts.second].map((text) => Number(text.trim()));
  if (day === undefined || hour === undefined || minute === undefined || second === undefined) return undefined;
  // A leap second (60) is allowed by the grammar; it reads as the next second.
  if (month < 0 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const time = Date.UTC(parts.year, month, day, hour, minute, second);
  // 31 Feb does not roll over into March.
  if (new Date(Date.UTC(parts.year, month, day)).getUTCDate() !== day) return undefined;
  return new Date(time);
}

export type Precondition = 'proceed' | 'not-modified' | 'failed';

type HeaderValue = string | string[] | undefined;
export type RequestHeaders = Record<string, HeaderValue>;

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Evaluates the preconditions in RFC 9110 section 13.2.2's order. */
export function evaluatePreconditions(method: string, headers: RequestHeaders, validators: Validators): Precondition {
  const getOrHead = method === 'GET' || method === 'HEAD';
  const ifMatch = header(headers, 'if-match');
  if (ifMatch !== undefined) {
    const tags = parseEntityTags(ifMatch);
    if (tags !== undefined && !strongMatch(tags, validators.etag)) return 'failed';
  } else {
    const since = parseHttpDate(header(headers, 'if-unmodified-since'));
    if (since && validators.lastModified.getTime() > since.getTime()) return 'failed';
  }
  const ifNoneMatch = header(headers, 'if-none-match');
  if (ifNoneMatch !== undefined) {
    const tags = parseEntityTags(ifNoneMatch);
    if (tags === undefined || weakMatch(tags, validators.etag, validators.alsoMatches)) return getOrHead ? 'not-modified' : 'failed';
  } else if (getOrHead) {
    const since = parseHttpDate(header(headers, 'if-modified-since'));
    if (since && validators.lastModified.getTime() <= since.getTime()) return 'not-modified';
  }
  return 'proceed';
}

/**
 * If-Range: the Range applies only when the validator still matches. An entity tag must match
 * strongly; a date must equal Last-Modified exactly (section 13.1.5).
 */
export function ifRangeMatches(headers: RequestHeaders, validators: Validators): boolean {
  const value = header(headers, 'if-range');
  if (value === undefined) return true;
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) return trimmed === validators.etag;
  const date = parseHttpDate(trimmed);
  return date !== undefined && date.getTime() === validators.lastModified.getTime();
}
