/**
 * /assets/ against nginx, over real sockets: the same files under both servers, the same
 * requests to both, and every difference in status, Content-Range, Content-Length, body (for
 * multipart/byteranges: each part's Content-Range and bytes, not the boundaries), Content-Type,
 * Last-Modified, Accept-Ranges and ETag presence is either a failure or listed in ALLOWED below
 * with the reason (the same list is the table in docs/http-semantics.md; a test checks that).
 *
 * Besides agreeing with nginx, bootdepot must give the status RFC 9110 (and bootdepot's own
 * design: malformed ranges are ignored) calls for, every 200/206 body must be exactly the file's
 * bytes for its Content-Range, and HEAD must carry GET's headers.
 *
 * nginx runs with `if_modified_since before` (RFC 9110 13.1.3: 304 when the file is not newer
 * than the date) instead of its default `exact`; everything else is stock.
 *
 * ETags differ between the servers by design, so each conditional case uses the validators the
 * server under test sent in a first plain GET. Without nginx the test skips loudly (fails under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/config/loader.ts';
import { startServer } from '../../src/server.ts';
import { nginxOrSkip, startNginx } from '../support/nginx.ts';

// ---- the files ----

const BIG = 'random.bin';
const BIG_SIZE = 1024 * 1024 + 4321; // not a multiple of any read size
const FILES: Record<string, Buffer> = {
  [BIG]: randomBytes(BIG_SIZE),
  'tiny.txt': Buffer.from('hello, world\n'),
  'empty.bin': Buffer.alloc(0),
  vmlinuz: randomBytes(3000),
  'boot.iso': randomBytes(2048),
};
/** Every file's mtime: fixed, so Last-Modified and the dates below are predictable. */
const MTIME = new Date('2024-03-10T12:34:56Z');
const DAY = 24 * 3600 * 1000;
const httpDate = (ms: number) => new Date(ms).toUTCString();
/** The same instant in the obsolete formats recipients must accept (RFC 9110 5.6.7). */
function rfc850Date(ms: number): string {
  const d = new Date(ms);
  const day = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][d.getUTCDay()];
  const [, dd, mon, yyyy, time] = d.toUTCString().split(' ');
  return `${day}, ${dd}-${mon}-${yyyy?.slice(2)} ${time} GMT`;
}
function asctimeDate(ms: number): string {
  const [wkd, dd, mon, yyyy, time] = new Date(ms).toUTCString().split(' ');
  return `${wkd?.slice(0, 3)} ${mon} ${String(Number(dd)).padStart(2, ' ')} ${time} ${yyyy}`;
}

// ---- the cases ----

/** What a server sent in a first plain GET of the file: its own validators. */
interface Validators {
  etag: string;
  lastModified: string;
}

interface Case {
  id: string;
  /** Default: the ~1 MiB random file. */
  file?: string;
  method?: 'GET' | 'HEAD';
  headers?: (v: Validators) => Record<string, string>;
  /** The status(es) RFC 9110 and bootdepot's design allow for bootdepot. */
  expect: number[];
}

const weak = (etag: string) => (etag.startsWith('W/') ? etag : `W/${etag}`);
const older = httpDate(MTIME.getTime() - DAY);
const newer = httpDate(MTIME.getTime() + DAY);
const tooManyRanges = Array.from({ length: 65 }, (_, i) => `${i * 10_000}-${i * 10_000 + 99}`).join(',');
const manyRanges = Array.from({ length: 12 }, (_, i) => `${i * 50_000}-${i * 50_000 + 999}`).join(',');

const CASES: Case[] = [
  // plain
  { id: 'get', expect: [200] },
  { id: 'head', method: 'HEAD', expect: [200] },
  { id: 'get tiny .txt', file: 'tiny.txt', expect: [200] },
  { id: 'get empty', file: 'empty.bin', expect: [200] },
  { id: 'get vmlinuz', file: 'vmlinuz', expect: [200] },
  { id: 'get .iso', file: 'boot.iso', expect: [200] },
  { id: 'get missing', file: 'missing.bin', expect: [404] },
  // single ranges
  { id: 'range 0-0', headers: () => ({ range: 'bytes=0-0' }), expect: [206] },
  { id: 'range 0-99', headers: () => ({ range: 'bytes=0-99' }), expect: [206] },
  { id: 'range 100-', headers: () => ({ range: 'bytes=100-' }), expect: [206] },
  { id: 'range 0- (whole file)', headers: () => ({ range: 'bytes=0-' }), expect: [206] },
  { id: 'range -100', headers: () => ({ range: 'bytes=-100' }), expect: [206] },
  { id: 'range -N (suffix longer than file)', headers: () => ({ range: `bytes=-${BIG_SIZE + 10}` }), expect: [206] },
  { id: 'range -0', headers: () => ({ range: 'bytes=-0' }), expect: [416] },
  { id: 'range end past EOF', headers: () => ({ range: `bytes=1000-${BIG_SIZE + 5000}` }), expect: [206] },
  { id: 'range start at EOF', headers: () => ({ range: `bytes=${BIG_SIZE}-` }), expect: [416] },
  { id: 'range start past EOF', headers: () => ({ range: `bytes=${BIG_SIZE + 10}-${BIG_SIZE + 20}` }), expect: [416] },
  { id: 'range huge end (20 digits)', headers: () => ({ range: 'bytes=0-99999999999999999999' }), expect: [206] },
  { id: 'range unit in capitals', headers: () => ({ range: 'Bytes=0-9' }), expect: [206] },
  { id: 'range on tiny, end past EOF', file: 'tiny.txt', headers: () => ({ range: 'bytes=5-100' }), expect: [206] },
  // invalid: ignored (RFC 9110 14.2 lets a server ignore an invalid Range; bootdepot does)
  { id: 'range 5-1 (last < first)', headers: () => ({ range: 'bytes=5-1' }), expect: [200] },
  { id: 'range bytes=abc', headers: () => ({ range: 'bytes=abc' }), expect: [200] },
  { id: 'range items=0-1 (unknown unit)', headers: () => ({ range: 'items=0-1' }), expect: [200] },
  { id: 'range unknown unit, past EOF', headers: () => ({ range: `items=${BIG_SIZE + 10}-` }), expect: [200] },
  { id: 'range bytes= (empty set)', headers: () => ({ range: 'bytes=' }), expect: [200] },
  { id: 'range bytes=--1', headers: () => ({ range: 'bytes=--1' }), expect: [200] },
  { id: 'range 0-9,abc (one spec invalid)', headers: () => ({ range: 'bytes=0-9,abc' }), expect: [200] },
  // several ranges
  { id: 'two ranges', headers: () => ({ range: 'bytes=0-9,20-29' }), expect: [206] },
  { id: 'two ranges, space after comma', headers: () => ({ range: 'bytes=0-9, 20-29' }), expect: [206] },
  { id: 'two ranges, out of order', headers: () => ({ range: 'bytes=200-299,0-99' }), expect: [206] },
  { id: 'overlapping ranges', headers: () => ({ range: 'bytes=0-99,50-149' }), expect: [206] },
  { id: 'overlapping ranges covering more than the file', headers: () => ({ range: 'bytes=0-,0-' }), expect: [200, 206] },
  { id: 'many ranges (12)', headers: () => ({ range: `bytes=${manyRanges}` }), expect: [206] },
  { id: 'first and last byte', headers: () => ({ range: 'bytes=0-0,-1' }), expect: [206] },
  { id: 'one satisfiable, one past EOF', headers: () => ({ range: `bytes=0-9,${BIG_SIZE + 1}-` }), expect: [206] },
  { id: 'range list with an empty element', headers: () => ({ range: 'bytes=0-9,' }), expect: [206] },
  { id: 'more ranges than the limit (65)', headers: () => ({ range: `bytes=${tooManyRanges}` }), expect: [200, 206] },
  { id: 'range on missing file', file: 'missing.bin', headers: () => ({ range: 'bytes=0-9' }), expect: [404] },
  { id: 'range on .txt, two ranges', file: 'tiny.txt', headers: () => ({ range: 'bytes=0-1,7-9' }), expect: [206] },
  // empty file: nothing is satisfiable; a server may answer 416 or ignore the Range
  { id: 'empty file, range 0-0', file: 'empty.bin', headers: () => ({ range: 'bytes=0-0' }), expect: [200, 416] },
  { id: 'empty file, range -1', file: 'empty.bin', headers: () => ({ range: 'bytes=-1' }), expect: [200, 416] },
  // If-None-Match (weak comparison)
  { id: 'If-None-Match matching', headers: (v) => ({ 'if-none-match': v.etag }), expect: [304] },
  { id: 'If-None-Match not matching', headers: () => ({ 'if-none-match': '"something-else"' }), expect: [200] },
  { id: 'If-None-Match *', headers: () => ({ 'if-none-match': '*' }), expect: [304] },
  { id: 'If-None-Match weak form', headers: (v) => ({ 'if-none-match': weak(v.etag) }), expect: [304] },
  { id: 'If-None-Match list with match', headers: (v) => ({ 'if-none-match': `"a", ${v.etag}, "b"` }), expect: [304] },
  { id: 'If-None-Match matching, HEAD', method: 'HEAD', headers: (v) => ({ 'if-none-match': v.etag }), expect: [304] },
  { id: 'If-None-Match matching + Range', headers: (v) => ({ 'if-none-match': v.etag, range: 'bytes=0-9' }), expect: [304] },
  { id: 'If-None-Match * on missing file', file: 'missing.bin', headers: () => ({ 'if-none-match': '*' }), expect: [404] },
  // If-Modified-Since
  { id: 'If-Modified-Since equal', headers: (v) => ({ 'if-modified-since': v.lastModified }), expect: [304] },
  { id: 'If-Modified-Since older', headers: () => ({ 'if-modified-since': older }), expect: [200] },
  { id: 'If-Modified-Since newer', headers: () => ({ 'if-modified-since': newer }), expect: [304] },
  { id: 'If-Modified-Since garbage', headers: () => ({ 'if-modified-since': 'not a date' }), expect: [200] },
  { id: 'If-Modified-Since not an HTTP-date (a year)', headers: () => ({ 'if-modified-since': '2030' }), expect: [200] },
  { id: 'If-Modified-Since RFC 850 format', headers: () => ({ 'if-modified-since': rfc850Date(MTIME.getTime()) }), expect: [304] },
  { id: 'If-Modified-Since asctime format', headers: () => ({ 'if-modified-since': asctimeDate(MTIME.getTime()) }), expect: [304] },
  { id: 'If-None-Match not matching + If-Modified-Since equal', headers: (v) => ({ 'if-none-match': '"x"', 'if-modified-since': v.lastModified }), expect: [200] },
  { id: 'If-None-Match matching + If-Modified-Since older', headers: (v) => ({ 'if-none-match': v.etag, 'if-modified-since': older }), expect: [304] },
  // If-Match (strong comparison)
  { id: 'If-Match matching', headers: (v) => ({ 'if-match': v.etag }), expect: [200] },
  { id: 'If-Match not matching', headers: () => ({ 'if-match': '"something-else"' }), expect: [412] },
  { id: 'If-Match *', headers: () => ({ 'if-match': '*' }), expect: [200] },
  { id: 'If-Match weak form', headers: (v) => ({ 'if-match': weak(v.etag) }), expect: [412] },
  { id: 'If-Match not matching + Range', headers: () => ({ 'if-match': '"x"', range: 'bytes=0-9' }), expect: [412] },
  { id: 'If-Match * on missing file', file: 'missing.bin', headers: () => ({ 'if-match': '*' }), expect: [404] },
  // If-Unmodified-Since
  { id: 'If-Unmodified-Since before Last-Modified', headers: () => ({ 'if-unmodified-since': older }), expect: [412] },
  { id: 'If-Unmodified-Since after Last-Modified', headers: () => ({ 'if-unmodified-since': newer }), expect: [200] },
  { id: 'If-Unmodified-Since equal', headers: (v) => ({ 'if-unmodified-since': v.lastModified }), expect: [200] },
  { id: 'If-Unmodified-Since garbage', headers: () => ({ 'if-unmodified-since': 'yesterday' }), expect: [200] },
  { id: 'If-Unmodified-Since not an HTTP-date (a number)', headers: () => ({ 'if-unmodified-since': '0' }), expect: [200] },
  { id: 'If-Match matching + If-Unmodified-Since before', headers: (v) => ({ 'if-match': v.etag, 'if-unmodified-since': older }), expect: [200] },
  // If-Range
  { id: 'If-Range ETag', headers: (v) => ({ 'if-range': v.etag, range: 'bytes=0-99' }), expect: [206] },
  { id: 'If-Range other ETag', headers: () => ({ 'if-range': '"something-else"', range: 'bytes=0-99' }), expect: [200] },
  { id: 'If-Range weak ETag', headers: (v) => ({ 'if-range': weak(v.etag), range: 'bytes=0-99' }), expect: [200] },
  { id: 'If-Range Last-Modified date', headers: (v) => ({ 'if-range': v.lastModified, range: 'bytes=0-99' }), expect: [206] },
  { id: 'If-Range older date', headers: () => ({ 'if-range': older, range: 'bytes=0-99' }), expect: [200] },
  { id: 'If-Range ISO 8601 date (not an HTTP-date)', headers: () => ({ 'if-range': MTIME.toISOString(), range: 'bytes=0-99' }), expect: [200] },
  { id: 'If-Range newer date', headers: () => ({ 'if-range': newer, range: 'bytes=0-99' }), expect: [200] },
  { id: 'If-Range ETag, two ranges', headers: (v) => ({ 'if-range': v.etag, range: 'bytes=0-9,20-29' }), expect: [206] },
  { id: 'If-Range other ETag + unsatisfiable range', headers: () => ({ 'if-range': '"something-else"', range: `bytes=${BIG_SIZE}-` }), expect: [200] },
  { id: 'If-Range without Range', headers: (v) => ({ 'if-range': v.etag }), expect: [200] },
  // HEAD with Range. RFC 9110 14.2 defines range handling for GET only and says to ignore Range
  // otherwise (200), while 9.3.2 asks HEAD for GET's headers (206); nginx answers 206.
  { id: 'HEAD + Range', method: 'HEAD', headers: () => ({ range: 'bytes=0-99' }), expect: [200, 206] },
];

// ---- the allowlist: every accepted difference, with the reason ----

/** Fields compared between the servers. */
type Field = 'status' | 'content-range' | 'content-length' | 'content-type' | 'body' | 'parts' | 'last-modified' | 'etag' | 'accept-ranges';

interface Allowed {
  case: string;
  /**
   * The fields that may differ in this case; `all` when the statuses differ (then a 416 or 412
   * and a 200 have little in common; the summaries below pin both responses down).
   */
  fields: Field[] | 'all';
  /** Each server's response in summary() form (sizes as N): pins the difference down exactly. */
  nginx: string;
  bootdepot: string;
  reason: string;
}

const ALLOWED: Allowed[] = [
  ...['range bytes=abc', 'range bytes=--1', 'range 0-9,abc (one spec invalid)'].map(
    (id): Allowed => ({
      case: id,
      fields: 'all',
      nginx: '416 bytes */N',
      bootdepot: '200',
      reason: 'Malformed range set. nginx rejects it with 416; RFC 9110 14.2 lets a server ignore it, and bootdepot does (200, whole file).',
    }),
  ),
  {
    case: 'range 5-1 (last < first)',
    fields: 'all',
    nginx: '416 bytes */N',
    bootdepot: '200',
    reason: 'An int-range whose last-pos is below its first-pos is invalid (RFC 9110 14.1.1), so the Range is ignored like any other malformed one; nginx answers 416.',
  },
  {
    case: 'range list with an empty element',
    fields: 'all',
    nginx: '416 bytes */N',
    bootdepot: '206 bytes 0-9/N',
    reason: 'Empty list elements must be ignored (RFC 9110 5.6.1.2), so `bytes=0-9,` is the range 0-9; nginx rejects the set.',
  },
  {
    case: 'range huge end (20 digits)',
    fields: 'all',
    nginx: '416 bytes */N',
    bootdepot: '206 bytes 0-(N-1)/N',
    reason: 'A last-pos past the end is clamped to the end (RFC 9110 14.1.2) however many digits it has; nginx answers 416 when the number overflows its off_t.',
  },
  {
    case: 'overlapping ranges',
    fields: ['content-type', 'content-length', 'body', 'parts', 'content-range'],
    nginx: '206 multipart 2 parts',
    bootdepot: '206 bytes 0-149/N',
    reason: 'bootdepot coalesces overlapping ranges into one (RFC 9110 14.2 permits it, and 15.3.7.2 allows the coalesced response); nginx sends each range as a part.',
  },
  {
    case: 'overlapping ranges covering more than the file',
    fields: 'all',
    nginx: '200',
    bootdepot: '206 bytes 0-(N-1)/N',
    reason: 'nginx ignores a range set whose ranges add up to more than the file (200); bootdepot coalesces the overlap into one range. Both allowed (RFC 9110 14.2).',
  },
  {
    case: 'more ranges than the limit (65)',
    fields: 'all',
    nginx: '206 multipart 65 parts',
    bootdepot: '200',
    reason: 'bootdepot answers more than 64 ranges with the whole file (RFC 9110 14.2 lets a server ignore a Range with many small ranges); nginx has no limit by default (max_ranges).',
  },
  {
    case: 'If-None-Match matching + If-Modified-Since older',
    fields: 'all',
    nginx: '200',
    bootdepot: '304',
    reason: 'RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present. nginx wants both conditions to say "not modified".',
  },
  {
    case: 'If-Match matching + If-Unmodified-Since before',
    fields: 'all',
    nginx: '412',
    bootdepot: '200',
    reason: 'RFC 9110 13.1.4: If-Unmodified-Since is ignored when If-Match is present. nginx evaluates both.',
  },
  ...['If-Unmodified-Since garbage', 'If-Unmodified-Since not an HTTP-date (a number)'].map(
    (id): Allowed => ({
      case: id,
      fields: 'all',
      nginx: '412',
      bootdepot: '200',
      reason: 'RFC 9110 13.1.4: an If-Unmodified-Since that is not a valid HTTP-date is ignored. nginx treats it as a failed precondition.',
    }),
  ),
];

// ---- requests and what is compared ----

interface Part {
  contentRange: string;
  body: Buffer;
}

interface Observed {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The parts of a multipart/byteranges body. */
  parts?: Part[];
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

async function send(dispatcher: Agent, base: string, method: string, file: string, headers: Record<string, string>): Promise<Observed> {
  const res = await request(`${base}/assets/${file}`, { method, headers, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const body = Buffer.from(await res.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    const text = header(value);
    if (text !== undefined) flat[name.toLowerCase()] = text;
  }
  const observed: Observed = { status: res.statusCode, headers: flat, body };
  const type = flat['content-type'] ?? '';
  if (res.statusCode === 206 && /^multipart\/byteranges/i.test(type) && method !== 'HEAD') observed.parts = parseMultipart(body, boundaryOf(type));
  return observed;
}

function boundaryOf(contentType: string): string {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new Error(`multipart/byteranges without a boundary: ${contentType}`);
  return boundary;
}

/**
 * Splits a multipart/byteranges body (RFC 9110 14.6, RFC 2046 5.1), taking each part's length
 * from its Content-Range, so the bytes are exact whatever they contain.
 */
function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  // Anything before the first delimiter is a preamble (nginx sends a CRLF), ignored.
  if (pos < 0) throw new Error('multipart: no boundary delimiter in the body');
  const parts: Part[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') return parts;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new Error(`multipart: part ${parts.length + 1} has no end of headers`);
    const headers = new Map<string, string>();
    for (const line of body.subarray(pos, headerEnd).toString('latin1').split('\r\n')) {
      if (line.trim() === '') continue;
      const colon = line.indexOf(':');
      if (colon < 0) throw new Error(`multipart: bad header line ${JSON.stringify(line)}`);
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const contentRange = headers.get('content-range') ?? '';
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange);
    if (!range) throw new Error(`multipart: part ${parts.length + 1} has Content-Range ${JSON.stringify(contentRange)}`);
    const length = Number(range[2]) - Number(range[1]) + 1;
    const start = headerEnd + 4;
    parts.push({ contentRange, body: body.subarray(start, start + length) });
    pos = start + length;
    const next = Buffer.concat([Buffer.from('\r\n'), delimiter]);
    if (!body.subarray(pos, pos + next.length).equals(next)) throw new Error(`multipart: part ${parts.length} is not followed by CRLF and the delimiter`);
    pos += 2;
  }
  throw new Error('multipart: too many parts');
}

/** A short form of a response: status, Content-Range or part count, sizes replaced by N. */
function summary(o: Observed, size: number): string {
  let text = String(o.status);
  if (o.parts) text += ` multipart ${o.parts.length} parts`;
  else if (o.headers['content-range']) text += ` ${o.headers['content-range']}`;
  return text.replace(new RegExp(`/${size}$`), '/N').replace(new RegExp(`\\*/${size}$`), '*/N').replace(new RegExp(`-${size - 1}/N$`), '-(N-1)/N');
}

const isSuccess = (o: Observed) => o.status === 200 || o.status === 206;
const essence = (type: string | undefined) => type?.split(';')[0]?.trim().toLowerCase();
const describeBody = (b: Buffer) => `${b.length} bytes`;

/** The compared view of a response: field -> value; fields that do not apply are left out. */
function view(o: Observed, method: string): Partial<Record<Field, string>> {
  const v: Partial<Record<Field, string>> = { status: String(o.status) };
  if (o.headers['content-range'] !== undefined) v['content-range'] = o.headers['content-range'];
  const validated = isSuccess(o) || o.status === 304;
  if (validated) {
    v['last-modified'] = o.headers['last-modified'] ?? '(none)';
    v.etag = o.headers.etag === undefined ? '(none)' : 'present';
  }
  if (isSuccess(o)) {
    v['content-type'] = essence(o.headers['content-type']) ?? '(none)';
    if (o.status === 200) v['accept-ranges'] = o.headers['accept-ranges'] ?? '(none)';
    if (o.parts) {
      v.parts = o.parts.map((p) => `${p.contentRange}:${p.body.toString('base64')}`).join('|');
    } else {
      // Content-Length of a multipart body depends on the boundary; of an error page, on its text.
      v['content-length'] = o.headers['content-length'] ?? '(none)';
      if (method !== 'HEAD') v.body = o.body.toString('base64');
    }
  }
  if (o.status === 304) v['content-length'] = o.headers['content-length'] ?? '(none)';
  return v;
}

function shortValue(field: Field, value: string | undefined): string {
  if (value === undefined) return '(not applicable)';
  if (field === 'body') return describeBody(Buffer.from(value, 'base64'));
  if (field === 'parts') return value.split('|').map((p) => p.split(':')[0]).join(', ');
  return value;
}

/** Checks that hold for each server alone: bodies are the file's bytes, lengths add up. */
function selfCheck(name: string, o: Observed, method: string, content: Buffer | undefined): string[] {
  const problems: string[] = [];
  const length = o.headers['content-length'];
  if (method === 'HEAD') {
    if (o.body.length !== 0) problems.push(`${name}: HEAD response has a ${o.body.length}-byte body`);
    return problems;
  }
  if (length !== undefined && o.status !== 304 && Number(length) !== o.body.length) {
    problems.push(`${name}: Content-Length ${length} but ${o.body.length} body bytes`);
  }
  if (o.status === 304 && o.body.length !== 0) problems.push(`${name}: 304 with a body`);
  if (!content) return problems;
  if (o.status === 200 && !o.body.equals(content)) problems.push(`${name}: 200 body is not the file`);
  const pieces = o.parts ?? (o.status === 206 ? [{ contentRange: o.headers['content-range'] ?? '', body: o.body }] : []);
  for (const piece of pieces) {
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(piece.contentRange);
    if (!match) {
      problems.push(`${name}: 206 part with Content-Range ${JSON.stringify(piece.contentRange)}`);
      continue;
    }
    const [first, last, total] = [Number(match[1]), Number(match[2]), Number(match[3])];
    if (total !== content.length) problems.push(`${name}: Content-Range ${piece.contentRange}: the file has ${content.length} bytes`);
    if (last < first || last >= content.length) problems.push(`${name}: Content-Range ${piece.contentRange} is not within the file`);
    else if (!piece.body.equals(content.subarray(first, last + 1))) problems.push(`${name}: bytes for ${piece.contentRange} are not the file's`);
  }
  if (o.status === 416 && o.headers['content-range'] !== `bytes */${content.length}`) {
    problems.push(`${name}: 416 with Content-Range ${o.headers['content-range'] ?? '(none)'}, expected bytes */${content.length}`);
  }
  return problems;
}

/** bootdepot's own promises: Cache-Control on 2xx and 304 (RFC 9110 15.4.5: 304 repeats it), validators on 304. */
function bootdepotChecks(o: Observed): string[] {
  const problems: string[] = [];
  if (isSuccess(o) || o.status === 304) {
    if (o.headers['cache-control'] !== 'public, no-cache') problems.push(`bootdepot: ${o.status} with Cache-Control ${o.headers['cache-control'] ?? '(none)'}, expected the default "public, no-cache"`);
    if (!o.headers.etag || o.headers.etag.startsWith('W/')) problems.push(`bootdepot: ${o.status} without a strong ETag (${o.headers.etag ?? 'none'})`);
  }
  if (isSuccess(o) && o.headers['accept-ranges'] !== 'bytes') problems.push(`bootdepot: ${o.status} with Accept-Ranges ${o.headers['accept-ranges'] ?? '(none)'}`);
  return problems;
}

/** Headers HEAD must share with GET (RFC 9110 9.3.2). */
const HEAD_HEADERS = ['content-length', 'content-type', 'content-range', 'etag', 'last-modified', 'accept-ranges', 'cache-control'];

function headMirrorProblems(name: string, get: Observed, head: Observed): string[] {
  const problems: string[] = [];
  if (get.status !== head.status) problems.push(`${name}: HEAD ${head.status}, GET ${get.status}`);
  for (const h of HEAD_HEADERS) {
    if (get.headers[h] !== head.headers[h]) problems.push(`${name}: HEAD ${h}: ${head.headers[h] ?? '(none)'}, GET: ${get.headers[h] ?? '(none)'}`);
  }
  if (head.body.length !== 0) problems.push(`${name}: HEAD has a body`);
  return problems;
}

// ---- the test ----

interface Server {
  name: 'nginx' | 'bootdepot';
  url: string;
  validators: Map<string, Validators>;
}

test('GET/HEAD /assets/ agrees with nginx', { timeout: 120_000 }, async (t: TestContext) => {
  if (!nginxOrSkip(t)) return;

  // Cleanups run last in, first out: client, bootdepot, nginx, then the files.
  const cleanups: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw new AggregateError(errors, 'nginx-compare: cleanup failed');
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'bootdepot-nginx-compare-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const assetsDir = path.join(dir, 'assets');
  const dataDir = path.join(dir, 'data');
  await mkdir(assetsDir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  for (const [name, content] of Object.entries(FILES)) {
    await writeFile(path.join(assetsDir, name), content);
    await utimes(path.join(assetsDir, name), MTIME, MTIME);
  }

  const nginx = await startNginx({ root: assetsDir });
  cleanups.push(() => nginx.stop());

  const loaded = loadConfig({
    overrides: [
      { key: 'host', value: '127.0.0.1', source: 'test' },
      { key: 'port', value: '0', source: 'test' },
      { key: 'assetsDir', value: assetsDir, source: 'test' },
      { key: 'dataDir', value: dataDir, source: 'test' },
    ],
    cwd: dir,
  });
  if (!loaded.config) throw new Error(`config: ${JSON.stringify(loaded.problems)}`);
  const bootdepot = await startServer(loaded.config, pino({ level: 'silent' }));
  cleanups.push(() => bootdepot.close());

  const dispatcher = new Agent({ connections: 4, keepAliveTimeout: 1000 });
  cleanups.push(() => dispatcher.close());

  const servers: Server[] = [
    { name: 'nginx', url: nginx.url, validators: new Map() },
    { name: 'bootdepot', url: bootdepot.url, validators: new Map() },
  ];
  for (const server of servers) {
    for (const file of Object.keys(FILES)) {
      const first = await send(dispatcher, server.url, 'GET', file, {});
      assert.equal(first.status, 200, `${server.name}: plain GET ${file}`);
      const etag = first.headers.etag;
      const lastModified = first.headers['last-modified'];
      assert.ok(etag, `${server.name}: ${file} has no ETag`);
      assert.ok(lastModified, `${server.name}: ${file} has no Last-Modified`);
      server.validators.set(file, { etag, lastModified });
    }
  }
  const bootValidators = servers[1]?.validators.get(BIG);
  assert.ok(bootValidators && !bootValidators.etag.startsWith('W/'), `bootdepot's ETag must be strong: ${bootValidators?.etag}`);
  assert.equal(bootValidators.lastModified, httpDate(MTIME.getTime()));

  const ids = new Set<string>();
  const usedAllowances = new Set<string>();
  for (const c of CASES) {
    assert.ok(!ids.has(c.id), `duplicate case ${c.id}`);
    ids.add(c.id);
    await t.test(c.id, async () => {
      const file = c.file ?? BIG;
      const method = c.method ?? 'GET';
      const content = FILES[file];
      const size = content?.length ?? 0;
      const observed: Observed[] = [];
      const problems: string[] = [];
      for (const server of servers) {
        const validators = server.validators.get(file) ?? server.validators.get(BIG);
        assert.ok(validators);
        const headers = c.headers?.(validators) ?? {};
        const o = await send(dispatcher, server.url, method, file, headers);
        observed.push(o);
        problems.push(...selfCheck(server.name, o, method, content));
        if (server.name === 'bootdepot') problems.push(...bootdepotChecks(o));
        // HEAD carries GET's headers (RFC 9110 9.3.2): every case without a Range is also sent
        // with the other method. (With a Range, GET is a 206 and HEAD a 200: see "HEAD + Range".)
        if (!headers.range) {
          const other = await send(dispatcher, server.url, method === 'GET' ? 'HEAD' : 'GET', file, headers);
          const [get, head] = method === 'GET' ? [o, other] : [other, o];
          problems.push(...headMirrorProblems(server.name, get, head));
        }
      }
      const [fromNginx, fromBootdepot] = observed as [Observed, Observed];
      if (!c.expect.includes(fromBootdepot.status)) {
        problems.push(`bootdepot: status ${fromBootdepot.status}, RFC 9110 / design expect ${c.expect.join(' or ')}`);
      }
      const nv = view(fromNginx, method);
      const bv = view(fromBootdepot, method);
      const differing = (Object.keys({ ...nv, ...bv }) as Field[]).filter((f) => nv[f] !== bv[f]);
      const allowance = ALLOWED.find((a) => a.case === c.id);
      if (allowance) {
        usedAllowances.add(c.id);
        const [ns, bs] = [summary(fromNginx, size), summary(fromBootdepot, size)];
        if (ns !== allowance.nginx || bs !== allowance.bootdepot) {
          problems.push(`allowlisted difference changed: expected nginx "${allowance.nginx}" / bootdepot "${allowance.bootdepot}", got nginx "${ns}" / bootdepot "${bs}"`);
        }
      }
      if (process.env.BOOTDEPOT_COMPARE_TABLE === '1') {
        console.log(`| ${c.id} | ${summary(fromNginx, size)} | ${summary(fromBootdepot, size)} | ${differing.join(', ')} |`);
      }
      // When the statuses differ (pinned by the allowance's summaries), every field may differ.
      const statusAllowed = allowance?.fields === 'all' && fromNginx.status !== fromBootdepot.status;
      // Different statuses: the other fields follow from them; the summaries in the message say enough.
      const reported = nv.status !== bv.status ? differing.filter((f) => f === 'status') : differing;
      for (const field of reported) {
        if (statusAllowed || (Array.isArray(allowance?.fields) && allowance.fields.includes(field))) continue;
        problems.push(`differs in ${field}: nginx ${shortValue(field, nv[field])}, bootdepot ${shortValue(field, bv[field])}`);
      }
      assert.deepEqual(problems, [], `${c.id}: nginx ${summary(fromNginx, size)}, bootdepot ${summary(fromBootdepot, size)}`);
    });
  }

  await t.test('every allowlisted difference is a case, and is in docs/http-semantics.md', async () => {
    const doc = await readFile(new URL('../../docs/http-semantics.md', import.meta.url), 'utf8');
    for (const a of ALLOWED) {
      assert.ok(ids.has(a.case), `allowlist names no case: ${a.case}`);
      assert.ok(usedAllowances.has(a.case), `allowlisted case did not run: ${a.case}`);
      assert.ok(doc.includes(`| ${a.case} |`), `docs/http-semantics.md has no table row for "${a.case}"`);
    }
  });
});
