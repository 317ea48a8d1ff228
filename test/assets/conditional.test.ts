import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluatePreconditions, ifRangeMatches, parseEntityTags, parseHttpDate, validatorsFor } from '../../src/assets/conditional.ts';
import { planRange } from '../../src/assets/range.ts';

const validators = validatorsFor({ ino: 0x1234n, size: 1000n, mtimeNs: 1_700_000_000_123_456_789n });
const ETAG = validators.etag;
const LAST = validators.lastModified.toUTCString();
const BEFORE = new Date(validators.lastModified.getTime() - 1000).toUTCString();
const AFTER = new Date(validators.lastModified.getTime() + 1000).toUTCString();

describe('validators', () => {
  it('make a strong ETag from inode, size and nanosecond mtime, and a whole-second date', () => {
    assert.equal(ETAG, `"1234-3e8-${(1_700_000_000_123_456_789n).toString(16)}"`);
    assert.equal(validators.lastModified.getTime(), 1_700_000_000_000);
    const touched = validatorsFor({ ino: 0x1234n, size: 1000n, mtimeNs: 1_700_000_000_123_456_790n });
    assert.notEqual(touched.etag, ETAG, 'a nanosecond later is another version');
  });

  it('parse entity-tag lists', () => {
    assert.equal(parseEntityTags(' * '), undefined);
    assert.deepEqual(parseEntityTags('"a", W/"b" ,"c"'), [
      { weak: false, tag: '"a"' },
      { weak: true, tag: '"b"' },
      { weak: false, tag: '"c"' },
    ]);
    assert.deepEqual(parseEntityTags('garbage'), []);
  });
});

describe('preconditions (RFC 9110 13.2.2)', () => {
  const cases: [string, string, Record<string, string>, string][] = [
    ['no conditions', 'GET', {}, 'proceed'],
    ['If-Match with our ETag', 'GET', { 'if-match': ETAG }, 'proceed'],
    ['If-Match with another ETag', 'GET', { 'if-match': '"other"' }, 'failed'],
    ['If-Match with our ETag marked weak (strong comparison)', 'GET', { 'if-match': `W/${ETAG}` }, 'failed'],
    ['If-Match *', 'GET', { 'if-match': '*' }, 'proceed'],
    ['If-Unmodified-Since after the change', 'GET', { 'if-unmodified-since': AFTER }, 'proceed'],
    ['If-Unmodified-Since before the change', 'GET', { 'if-unmodified-since': BEFORE }, 'failed'],
    ['If-Unmodified-Since ignored when If-Match is present', 'GET', { 'if-match': ETAG, 'if-unmodified-since': BEFORE }, 'proceed'],
    ['If-Unmodified-Since that is not a date', 'GET', { 'if-unmodified-since': 'yesterday' }, 'proceed'],
    ['If-None-Match with our ETag', 'GET', { 'if-none-match': ETAG }, 'not-modified'],
    ['If-None-Match weak form matches (weak comparison)', 'HEAD', { 'if-none-match': `"x", W/${ETAG}` }, 'not-modified'],
    ['If-None-Match *', 'GET', { 'if-none-match': '*' }, 'not-modified'],
    ['If-None-Match with another ETag', 'GET', { 'if-none-match': '"other"' }, 'proceed'],
    ['If-None-Match on a non-GET method fails', 'PUT', { 'if-none-match': ETAG }, 'failed'],
    ['If-Modified-Since equal', 'GET', { 'if-modified-since': LAST }, 'not-modified'],
    ['If-Modified-Since later', 'GET', { 'if-modified-since': AFTER }, 'not-modified'],
    ['If-Modified-Since earlier', 'GET', { 'if-modified-since': BEFORE }, 'proceed'],
    ['If-Modified-Since ignored when If-None-Match is present', 'GET', { 'if-none-match': '"other"', 'if-modified-since': LAST }, 'proceed'],
    ['If-Modified-Since garbage', 'GET', { 'if-modified-since': 'soon' }, 'proceed'],
  ];
  for (const [name, method, headers, expected] of cases) {
    it(name, () => assert.equal(evaluatePreconditions(method, headers, validators), expected));
  }
});

describe('HTTP dates', () => {
  it('accepts the three forms of RFC 9110 and nothing else', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37);
    for (const form of ['Sun, 06 Nov 1994 08:49:37 GMT', 'Sunday, 06-Nov-94 08:49:37 GMT', 'Sun Nov  6 08:49:37 1994']) {
      assert.equal(parseHttpDate(form)?.getTime(), expected, form);
    }
    for (const bad of ['1994', '1994-11-06T08:49:37Z', '784111777', 'yesterday', 'Sun, 06 Nov 1994 08:49:37 PST', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 24:49:37 GMT', 'Thu, 18-Aug-2050 02:01:18 GMT']) {
      assert.equal(parseHttpDate(bad), undefined, bad);
    }
  });

  it('reads names in any case, and an RFC 850 year more than 50 years ahead as the last such year past', () => {
    assert.equal(parseHttpDate('SUN, 06 NOV 1994 08:49:37 gmt')?.getTime(), Date.UTC(1994, 10, 6, 8, 49, 37));
    const now = Date.UTC(2026, 11, 1);
    assert.equal(parseHttpDate('Thursday, 18-Aug-50 02:01:18 GMT', now)?.getUTCFullYear(), 2050);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now)?.getUTCFullYear(), 1994);
    assert.equal(parseHttpDate('Friday, 01-Dec-77 00:00:00 GMT', now)?.getUTCFullYear(), 2077 - 100);
  });
});

describe('If-Range', () => {
  it('applies the range only while the validator matches', () => {
    assert.equal(ifRangeMatches({}, validators), true);
    assert.equal(ifRangeMatches({ 'if-range': ETAG }, validators), true);
    assert.equal(ifRangeMatches({ 'if-range': `W/${ETAG}` }, validators), false);
    assert.equal(ifRangeMatches({ 'if-range': '"other"' }, validators), false);
    assert.equal(ifRangeMatches({ 'if-range': LAST }, validators), true);
    assert.equal(ifRangeMatches({ 'if-range': AFTER }, validators), false, 'a date must match exactly');
    assert.equal(ifRangeMatches({ 'if-range': 'nonsense' }, validators), false);
  });
});

describe('range plans', () => {
  const plan = (range: string, extra: Record<string, string> = {}, size = 1000) => planRange('GET', { range, ...extra }, size, validators);
  it('covers the byte-range forms', () => {
    assert.deepEqual(plan('bytes=0-99'), { kind: 'single', range: { start: 0, end: 99 } });
    assert.deepEqual(plan('bytes=990-'), { kind: 'single', range: { start: 990, end: 999 } });
    assert.deepEqual(plan('bytes=-10'), { kind: 'single', range: { start: 990, end: 999 } });
    assert.deepEqual(plan('bytes=-5000'), { kind: 'single', range: { start: 0, end: 999 } }, 'a suffix longer than the file is the whole file');
    assert.deepEqual(plan('bytes=-0'), { kind: 'unsatisfiable' });
    assert.deepEqual(plan('bytes=900-5000'), { kind: 'single', range: { start: 900, end: 999 } }, 'end past EOF is clamped');
    assert.deepEqual(plan('bytes=1000-'), { kind: 'unsatisfiable' });
    assert.deepEqual(plan('bytes=0-1,5-9'), { kind: 'multipart', ranges: [{ start: 0, end: 1 }, { start: 5, end: 9 }] });
    assert.deepEqual(plan('bytes=0-5,3-9'), { kind: 'single', range: { start: 0, end: 9 } }, 'overlaps are combined');
    for (const malformed of ['bytes=abc', 'bytes=', 'items=0-1']) assert.deepEqual(plan(malformed), { kind: 'full' }, malformed);
    assert.deepEqual(plan('bytes=5-1'), { kind: 'full' }, 'a backwards range makes the header invalid: ignored');
    assert.deepEqual(plan('bytes=0-9,'), { kind: 'single', range: { start: 0, end: 9 } }, 'empty list elements are skipped');
    assert.deepEqual(plan('items=2000-'), { kind: 'full' }, 'an unknown unit is ignored, even past the end');
    assert.deepEqual(plan('BYTES=0-9'), { kind: 'single', range: { start: 0, end: 9 } }, 'units are case-insensitive');
    assert.deepEqual(plan('bytes=0-99999999999999999999'), { kind: 'single', range: { start: 0, end: 999 } });
    assert.deepEqual(plan('bytes=0-', {}, 0), { kind: 'full' }, 'an empty file is sent whole (as nginx)');
    assert.deepEqual(plan('bytes=0-9', { 'if-range': '"old"' }), { kind: 'full' });
    const many = `bytes=${Array.from({ length: 65 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',')}`;
    assert.deepEqual(plan(many), { kind: 'full' }, 'more than 64 ranges get the whole file');
    assert.deepEqual(planRange('POST', { range: 'bytes=0-1' }, 1000, validators), { kind: 'full' });
  });
});
