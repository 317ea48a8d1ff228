/**
 * Which bytes to send: the whole file, one range (206), several (206 multipart/byteranges) or
 * none (416). Range syntax is parsed by `range-parser`; the policy is here.
 */
import parseRange from 'range-parser';
import { ifRangeMatches, type RequestHeaders, type Validators } from './conditional.ts';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangePlan =
  | { kind: 'full' }
  | { kind: 'single'; range: ByteRange }
  | { kind: 'multipart'; ranges: ByteRange[] }
  | { kind: 'unsatisfiable' };

/**
 * More ranges than this in one request are answered with the whole file: real clients ask for
 * one range at a time, and each part costs a header and a seek.
 */
export const MAX_RANGES = 64;

/**
 * range-parser drops a suffix range longer than the file (`bytes=-500` of a 100-byte file);
 * RFC 9110 14.1.2 says it selects the whole file. Rewrite such specs as `0-` first.
 */
function clampSuffixes(value: string, size: number): string {
  return value.replace(/(=|,)\s*-(\d+)\s*(?=,|$)/g, (whole, sep: string, digits: string) => (Number(digits) > size ? `${sep}0-` : whole));
}

export function planRange(method: string, headers: RequestHeaders, size: number, validators: Validators): RangePlan {
  const value = headers.range;
  if (typeof value !== 'string' || (method !== 'GET' && method !== 'HEAD')) return { kind: 'full' };
  if (!ifRangeMatches(headers, validators)) return { kind: 'full' };
  // No range of an empty file exists; like nginx, send it (all zero bytes) rather than a 416.
  if (size === 0) return { kind: 'full' };
  const parsed = parseRange(size, clampSuffixes(value, size), { combine: true });
  // -2: malformed, ignored as RFC 9110 allows; -1: no range overlaps the file.
  if (parsed === -2) return { kind: 'full' };
  if (parsed === -1) return { kind: 'unsatisfiable' };
  // Range units are case-insensitive (RFC 9110 14.1).
  if (parsed.type.toLowerCase() !== 'bytes') return { kind: 'full' };
  const ranges = parsed.map(({ start, end }) => ({ start, end }));
  if (ranges.length === 1 && ranges[0]) return { kind: 'single', range: ranges[0] };
  if (ranges.length > MAX_RANGES) return { kind: 'full' };
  return { kind: 'multipart', ranges };
}
