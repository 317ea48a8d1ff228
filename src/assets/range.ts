/**
 * Which bytes to send: the whole file, one range (206), several (206 multipart/byteranges) or
 * none (416), per RFC 9110 section 14.
 *
 * Parsed here rather than with `range-parser`, which differs from the RFC in three ways that
 * real clients hit: it refuses a suffix longer than the file (`bytes=-500` of 100 bytes means
 * the whole file), it answers 416 to a range unit it does not know (which must be ignored), and
 * it rejects a list with an empty element (`bytes=0-9,`, whose empty element must be skipped).
 */
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

/** Positions beyond this are treated as "past the end" rather than parsed into a lossy number. */
const MAX_POSITION_DIGITS = 15;

type Spec = { start: number; end: number | undefined } | { suffix: number };

/** Parses `bytes=...` into specs; undefined when the header is not a valid byte-range set. */
function parseByteRangeSet(value: string): Spec[] | undefined {
  const match = /^\s*bytes\s*=(.*)$/i.exec(value);
  if (!match) return undefined;
  const specs: Spec[] = [];
  for (const element of (match[1] ?? '').split(',')) {
    const item = element.trim();
    if (item === '') continue;
    const m = /^(\d*)-(\d*)$/.exec(item);
    if (!m) return undefined;
    const [, first = '', last = ''] = m;
    if (first === '' && last === '') return undefined;
    const number = (digits: string) => (digits.length > MAX_POSITION_DIGITS ? Number.MAX_SAFE_INTEGER : Number(digits));
    if (first === '') {
      specs.push({ suffix: number(last) });
      continue;
    }
    const start = number(first);
    const end = last === '' ? undefined : number(last);
    // A range that ends before it starts is invalid, and so is the whole header (14.1.1).
    if (end !== undefined && end < start) return undefined;
    specs.push({ start, end });
  }
  return specs.length > 0 ? specs : undefined;
}

/** Resolves specs against the file size: satisfiable ranges, clamped, in request order. */
function resolve(specs: Spec[], size: number): ByteRange[] {
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    if ('suffix' in spec) {
      if (spec.suffix === 0) continue;
      ranges.push({ start: Math.max(0, size - spec.suffix), end: size - 1 });
    } else if (spec.start < size) {
      ranges.push({ start: spec.start, end: Math.min(spec.end ?? size - 1, size - 1) });
    }
  }
  return ranges;
}

/**
 * Parts go out in the order asked for; when some overlap or touch, they are coalesced (which
 * RFC 9110 15.3.7.2 allows whatever their order), so no byte is sent twice.
 */
function combine(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last && range.start <= last.end + 1) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  return merged.length === ranges.length ? ranges : merged;
}

export function planRange(method: string, headers: RequestHeaders, size: number, validators: Validators): RangePlan {
  const value = headers.range;
  if (typeof value !== 'string' || (method !== 'GET' && method !== 'HEAD')) return { kind: 'full' };
  if (!ifRangeMatches(headers, validators)) return { kind: 'full' };
  // Unknown units, and byte-range sets that do not parse, are ignored (14.2).
  const specs = parseByteRangeSet(value);
  if (!specs) return { kind: 'full' };
  // No range of an empty file exists; like nginx, send it (all zero bytes) rather than a 416.
  if (size === 0) return { kind: 'full' };
  const ranges = combine(resolve(specs, size));
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  if (ranges.length === 1 && ranges[0]) return { kind: 'single', range: ranges[0] };
  if (ranges.length > MAX_RANGES) return { kind: 'full' };
  return { kind: 'multipart', ranges };
}
