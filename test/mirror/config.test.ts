/** The `mirror:` config section, `--mirror NAME=URL`, paths and DIGESTS parsing. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { parseDocumentText, validateDocument } from '../../src/common/documents.ts';
import { BUILTIN_MIRRORS, MirrorConfigSchema, parseMirrorFlags, resolveMirrorSettings, type MirrorConfigFile } from '../../src/mirror/config.ts';
import { parseDigests, publishedSha512 } from '../../src/mirror/digests.ts';
import { digestsPathFor, isImmutablePath, splitMirrorPath, upstreamUrl } from '../../src/mirror/paths.ts';

// The section as the main config schema will embed it.
const Wrapper = Type.Object({ mirror: MirrorConfigSchema }, { additionalProperties: false });

function load(yaml: string) {
  const parsed = parseDocumentText('bootdepot.yaml', yaml);
  assert.ok(parsed.document, JSON.stringify(parsed.problems));
  return validateDocument(Wrapper, 'bootdepot.yaml', { ...parsed.document, value: parsed.document.value ?? {} });
}

describe('mirror config section', () => {
  it('fills every default', () => {
    const { value, problems } = load('{}');
    assert.deepEqual(problems, []);
    assert.deepEqual(value?.mirror, {
      cacheDir: 'cache',
      maxBytes: 20 * 1024 ** 3,
      mirrors: {},
      builtins: true,
      timeouts: { connect: 10, headers: 30, bodyInactivity: 30 },
      mutableMaxAge: 300,
      staleIfError: 604800,
      notFoundTtl: 60,
      maxConcurrentFills: 16,
      maxQueuedFills: 64,
      abandonedFillTimeout: 10,
    });
  });

  it('takes a mirror as an object with paths, redirect hosts and its own fill limit', () => {
    const { value, problems } = load(
      'mirror:\n  abandonedFillTimeout: 2.5\n  mirrors:\n    images:\n      url: https://images.example.com/pub/\n      paths: ["releases/**/*.iso", "^tools/[a-z]+\\\\.img$"]\n      redirectHosts: ["cdn.example.net", "*.cloudfront.net"]\n      maxConcurrentFills: 2\n',
    );
    assert.deepEqual(problems, []);
    const { settings } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'bootdepot.yaml' });
    const images = settings?.mirrors.images;
    assert.equal(settings?.abandonedFillTimeoutMs, 2500);
    assert.equal(images?.url, 'https://images.example.com/pub');
    assert.deepEqual(images?.redirectHosts, ['cdn.example.net', '*.cloudfront.net']);
    assert.equal(images?.maxConcurrentFills, 2);
    const accepts = (p: string) => images?.paths?.some((pattern) => pattern.test(p)) ?? true;
    assert.equal(accepts('releases/2024/10/netinst.iso'), true);
    assert.equal(accepts('releases/netinst.iso.sig'), false);
    assert.equal(accepts('tools/memtest.img'), true);
    assert.equal(accepts('tools/memtest.img.bak'), false);
    assert.equal(accepts('other/file'), false);
  });

  it('takes ignoreQueryParams and freshness overrides per mirror, in milliseconds', () => {
    const { value, problems } = load('mirror:\n  staleIfError: 3600\n  mirrors:\n    releases:\n      url: https://releases.example.com\n      ignoreQueryParams: [signature, expires]\n      freshness: { maxAge: 60, staleIfError: 120, ignoreUpstream: true }\n');
    assert.deepEqual(problems, []);
    const { settings } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'bootdepot.yaml' });
    assert.equal(settings?.staleIfErrorMs, 3_600_000);
    assert.deepEqual(settings?.mirrors.releases?.ignoreQueryParams, ['signature', 'expires']);
    assert.deepEqual(settings?.mirrors.releases?.freshness, { maxAgeMs: 60_000, staleIfErrorMs: 120_000, ignoreUpstream: true });
    assert.equal(settings?.mirrors['flatcar-stable']?.dropQuery, true, 'release files take no query');
    assert.equal(load('mirror:\n  mirrors:\n    a:\n      url: https://a.example.com\n      freshness: { maxAge: -1 }\n').problems.length > 0, true);
  });

  it('lets the built-in Flatcar mirrors fetch only Flatcar release files', () => {
    const { value } = load('{}');
    const { settings } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'x' });
    const accepts = (p: string) => settings?.mirrors['flatcar-stable']?.paths?.some((pattern) => pattern.test(p)) ?? true;
    for (const p of [
      'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz',
      'amd64-usr/4152.2.0/flatcar_production_pxe_image.cpio.gz',
      'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.DIGESTS',
      'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.DIGESTS.asc',
      'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.sig',
      'arm64-usr/current/version.txt',
    ]) assert.equal(accepts(p), true, p);
    for (const p of ['amd64-usr/latest/version.txt', 'amd64-usr/4152.2.0/sub/file', 'x86-usr/4152.2.0/a', 'amd64-usr/4152.2/a', 'anything/else', 'amd64-usr/4152.2.0/a%2Fb'])
      assert.equal(accepts(p), false, p);
  });

  it('reports a bad path pattern and a mirror object without a URL', () => {
    const { value } = load('mirror:\n  mirrors:\n    a:\n      url: https://a.example.com\n      paths: ["^(unclosed"]\n');
    const { settings, problems } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'bootdepot.yaml' });
    assert.equal(settings, undefined);
    assert.equal(problems[0]?.path, 'mirror.mirrors.a.paths');
    assert.match(problems[0]?.message ?? '', /invalid regular expression/);
    assert.ok(load('mirror:\n  mirrors:\n    b:\n      paths: ["*"]\n').problems.length > 0);
  });

  it('reports bad keys and values with their line', () => {
    const { problems } = load('mirror:\n  maxBytes: 10\n  mirrors:\n    "bad name": https://x\n  timeouts:\n    connect: 0\n  cachedir: x\n');
    const text = problems.map((p) => `${p.line}:${p.path ?? ''}:${p.message}`).join('\n');
    assert.match(text, /^2:mirror\.maxBytes:/m);
    assert.match(text, /mirror\.mirrors/);
    assert.match(text, /mirror\.timeouts\.connect/);
    assert.match(text, /cachedir/);
  });

  it('resolves to absolute paths, milliseconds, built-ins plus configured mirrors, flags last', () => {
    const { value } = load('mirror:\n  cacheDir: var/cache\n  mirrors:\n    internal: https://images.example.com/pub/\n    flatcar-stable: https://flatcar-mirror.example.com/stable\n  timeouts:\n    bodyInactivity: 2.5\n');
    const file = value?.mirror as MirrorConfigFile;
    const { settings, problems } = resolveMirrorSettings({
      file,
      baseDir: '/etc/bootdepot',
      fileSource: 'bootdepot.yaml',
      flags: [{ value: 'internal=http://10.0.0.9/images', source: '--mirror' }],
    });
    assert.deepEqual(problems, []);
    assert.ok(settings);
    assert.equal(settings.cacheDir, path.resolve('/etc/bootdepot/var/cache'));
    assert.equal(settings.bodyInactivityMs, 2500);
    assert.equal(settings.mutableMaxAgeMs, 300_000);
    assert.deepEqual(settings.mirrors.internal, { name: 'internal', url: 'http://10.0.0.9/images', flatcarDigests: false });
    assert.deepEqual(settings.mirrors['flatcar-stable'], { name: 'flatcar-stable', url: 'https://flatcar-mirror.example.com/stable', flatcarDigests: true });
    assert.equal(settings.mirrors['flatcar-lts']?.url, BUILTIN_MIRRORS['flatcar-lts']);
  });

  it('drops the built-ins when asked', () => {
    const { value } = load('mirror:\n  builtins: false\n');
    const { settings } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'x' });
    assert.deepEqual(settings?.mirrors, {});
  });

  it('reports bad URLs in the file', () => {
    const { value } = load('mirror:\n  mirrors:\n    a: ftp://x\n    b: https://x/?q=1\n');
    const { settings, problems } = resolveMirrorSettings({ file: value?.mirror as MirrorConfigFile, baseDir: '/', fileSource: 'bootdepot.yaml' });
    assert.equal(settings, undefined);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['mirror.mirrors.a', 'mirror.mirrors.b'],
    );
  });
});

describe('--mirror NAME=URL', () => {
  it('takes repeated flags and several specs separated by commas or whitespace', () => {
    const { mirrors, problems } = parseMirrorFlags([
      { value: 'local=http://10.0.0.9:8000/flatcar/', source: '--mirror' },
      { value: 'a=https://a.example.com, b=https://b.example.com/x\n c=http://c.example.com', source: 'BOOTDEPOT_MIRROR' },
    ]);
    assert.deepEqual(problems, []);
    assert.deepEqual(mirrors, { local: 'http://10.0.0.9:8000/flatcar', a: 'https://a.example.com', b: 'https://b.example.com/x', c: 'http://c.example.com' });
  });

  it('returns a problem for every bad spec, naming where it came from', () => {
    const { mirrors, problems } = parseMirrorFlags([
      { value: 'no-equals', source: '--mirror' },
      { value: '../etc=https://x', source: '--mirror' },
      { value: 'a=ftp://x', source: 'BOOTDEPOT_MIRROR' },
      { value: 'b=https://x/?q=1', source: 'BOOTDEPOT_MIRROR' },
      { value: 'c=https://user:pw@x', source: 'BOOTDEPOT_MIRROR' },
      { value: 'd=not a url', source: '--mirror' },
      { value: '  ', source: '--mirror' },
      { value: 'ok=https://fine.example.com', source: '--mirror' },
    ]);
    assert.deepEqual(mirrors, { ok: 'https://fine.example.com' });
    const messages = problems.map((p) => `${p.source}: ${p.message}`);
    // `d=not a url` splits at the spaces: `d=not` (invalid URL), `a` and `url` (no `=`).
    assert.equal(problems.length, 9);
    assert.match(messages.join('\n'), /mirror d: invalid URL "not"/);
    assert.match(messages[0] ?? '', /^--mirror: "no-equals": expected NAME=URL/);
    assert.match(messages[1] ?? '', /invalid mirror name "\.\.\/etc"/);
    assert.match(messages[2] ?? '', /^BOOTDEPOT_MIRROR: mirror a: ftp:\/\/x: must be an http:\/\/ or https:\/\/ URL/);
    assert.match(messages[3] ?? '', /must not have a query/);
    assert.match(messages[4] ?? '', /must not carry credentials/);
    assert.match(messages.join('\n'), /expected NAME=URL, e\.g\./);
  });
});

describe('paths', () => {
  it('tells versioned paths from mutable ones', () => {
    const immutable = (p: string) => isImmutablePath(p.split('/'));
    assert.equal(immutable('amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz'), true);
    assert.equal(immutable('releases/v1.2.3/linux-amd64.tar.gz'), true);
    assert.equal(immutable('amd64-usr/current/flatcar_production_pxe.vmlinuz'), false);
    assert.equal(immutable('amd64-usr/4152.2.0/version.txt'), false);
    assert.equal(immutable('latest/1.2.3/file'), false);
    assert.equal(immutable('pub/file.iso'), false);
    assert.equal(immutable('1.2.3'), false);
  });

  it('finds the DIGESTS of Flatcar release files only', () => {
    const digests = (p: string) => digestsPathFor(p.split('/'));
    assert.equal(digests('amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz'), 'amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.DIGESTS');
    assert.equal(digests('amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.DIGESTS'), undefined);
    assert.equal(digests('amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.DIGESTS.asc'), undefined);
    assert.equal(digests('amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz.sig'), undefined);
    assert.equal(digests('amd64-usr/current/version.txt'), undefined);
    assert.equal(digests('README'), undefined);
  });

  it('splits MIRROR/path and re-encodes segments for the upstream', () => {
    assert.deepEqual(splitMirrorPath('flatcar-stable/amd64-usr/x'), { mirror: 'flatcar-stable', path: 'amd64-usr/x' });
    assert.deepEqual(splitMirrorPath('/mirror/up/a'), { mirror: 'up', path: 'a' });
    assert.equal(splitMirrorPath('nopath'), undefined);
    assert.equal(upstreamUrl('https://x.example/base', ['a b', 'c?d', 'e#f']), 'https://x.example/base/a%20b/c%3Fd/e%23f');
  });
});

describe('DIGESTS files', () => {
  const text = [
    '# MD5 HASH',
    'd41d8cd98f00b204e9800998ecf8427e  flatcar_production_pxe.vmlinuz',
    '# SHA1 HASH',
    'da39a3ee5e6b4b0d3255bfef95601890afd80709  flatcar_production_pxe.vmlinuz',
    '# SHA512 HASH',
    `${'AB'.repeat(64)}  flatcar_production_pxe.vmlinuz`,
    `${'cd'.repeat(64)} *other.bin`,
    '',
  ].join('\n');

  it('reads each section', () => {
    const table = parseDigests(text);
    assert.equal(table.get('MD5')?.get('flatcar_production_pxe.vmlinuz'), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(table.get('SHA512')?.get('other.bin'), 'cd'.repeat(64));
  });

  it('gives the SHA-512 only from the SHA512 section, lowercase, well formed', () => {
    assert.equal(publishedSha512(text, 'flatcar_production_pxe.vmlinuz'), 'ab'.repeat(64));
    assert.equal(publishedSha512(text, 'missing'), undefined);
    assert.equal(publishedSha512('# SHA512 HASH\nabc  f\n', 'f'), undefined);
    assert.equal(publishedSha512(`# MD5 HASH\n${'ab'.repeat(64)}  f\n`, 'f'), undefined);
  });
});
