/**
 * The `mirror:` config section, the `--mirror NAME=URL` flag (and BOOTDEPOT_MIRROR), and the
 * step that turns both into {@link MirrorSettings}: absolute cache directory, milliseconds,
 * every mirror checked. Pure: nothing here touches the disk or the network.
 */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Problem } from '../common/problems.ts';
import type { FreshnessPolicy } from './freshness.ts';
import { MIRROR_NAME_PATTERN, isMirrorName } from './paths.ts';

/** Flatcar's release servers, one per channel; contacted only when a path under them is asked for. */
export const BUILTIN_MIRRORS: Readonly<Record<string, string>> = {
  'flatcar-stable': 'https://stable.release.flatcar-linux.net',
  'flatcar-beta': 'https://beta.release.flatcar-linux.net',
  'flatcar-alpha': 'https://alpha.release.flatcar-linux.net',
  'flatcar-lts': 'https://lts.release.flatcar-linux.net',
};

const GIB = 1024 * 1024 * 1024;

/**
 * The only paths the built-in Flatcar mirrors pass upstream: files of one release directory
 * (`amd64-usr/4152.2.0/flatcar_production_pxe.vmlinuz`, `arm64-usr/current/version.txt`). A
 * request for anything else is answered 404 without contacting the release server, so the
 * mirror cannot be made to fetch arbitrary trees through bootdepot.
 */
export const FLATCAR_RELEASE_PATHS: readonly string[] = ['^(amd64|arm64)-usr/(current|\\d+\\.\\d+\\.\\d+)/[A-Za-z0-9._-]+$'];

/** Upstream fills one mirror runs at once unless its definition says otherwise. */
export const DEFAULT_FILLS_PER_MIRROR = 4;

const MirrorObjectSchema = Type.Object(
  {
    /** Upstream base URL (http or https, no query, fragment or credentials). */
    url: Type.String({ minLength: 1 }),
    /**
     * Paths (relative to the mirror) that may be fetched; others are answered 404 without
     * contacting the upstream. A pattern starting with `^` is a regular expression; anything
     * else a glob where `*` matches within a directory, `**` across directories, `?` one character.
     */
    paths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), { minItems: 1, maxItems: 100 })),
    /**
     * Hosts, besides the upstream's own origin, that its redirects may lead to: `host`,
     * `host:port`, `*.example.com`, or `*` for any. Redirects elsewhere are refused (502).
     */
    redirectHosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255, pattern: '^(\\*|(\\*\\.)?[A-Za-z0-9.:\\[\\]_-]+)$' }), { maxItems: 100 })),
    /** Upstream transfers this mirror runs at once (default 4); more wait in the queue. */
    maxConcurrentFills: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /**
     * Query parameters left out of the cache key (signatures, expiry times): two URLs that differ
     * only in these share one cached file. The upstream is still asked with the whole query.
     * Names are matched exactly (case-sensitive).
     */
    ignoreQueryParams: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 100 })),
    /** How this mirror's mutable files are kept fresh; the upstream's caching headers decide unless `ignoreUpstream`. */
    freshness: Type.Optional(
      Type.Object(
        {
          /** Seconds a mutable file is fresh when the upstream says nothing about it (default `mutableMaxAge`). */
          maxAge: Type.Optional(Type.Integer({ minimum: 0, maximum: 31536000 })),
          /**
           * Seconds past its freshness a copy may be served when the upstream fails, unless the
           * upstream sends `stale-if-error` or `must-revalidate` (default the mirror section's `staleIfError`).
           */
          staleIfError: Type.Optional(Type.Integer({ minimum: 0, maximum: 31536000 })),
          /**
           * For release servers that send nothing useful: ignore the upstream's Cache-Control,
           * Expires, Age and Vary; every mutable file is kept and fresh for `maxAge`.
           */
          ignoreUpstream: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const MirrorConfigSchema = Type.Object(
  {
    /** Directory holding cached files (objects/) and fills in progress (tmp/). Relative to the config file. */
    cacheDir: Type.String({ minLength: 1, default: 'cache' }),
    /**
     * Largest total size of cached files, in bytes; the least recently used files are deleted
     * to stay under it. A file larger than this is served but not kept.
     */
    maxBytes: Type.Integer({ minimum: 1048576, default: 20 * GIB }),
    /**
     * Mirrors by name, served at `/mirror/NAME/<path>`: `NAME: https://host/base` (http or https,
     * no query). A name here replaces the built-in of the same name.
     */
    mirrors: Type.Record(Type.String({ pattern: MIRROR_NAME_PATTERN }), Type.Union([Type.String({ minLength: 1 }), MirrorObjectSchema]), { default: {}, additionalProperties: false }),
    /** Offer the built-in Flatcar mirrors `flatcar-stable`, `flatcar-beta`, `flatcar-alpha` and `flatcar-lts`. */
    builtins: Type.Boolean({ default: true }),
    timeouts: Type.Object(
      {
        /** Seconds to open a connection (TCP and TLS) to an upstream before answering 504. */
        connect: Type.Number({ exclusiveMinimum: 0, maximum: 600, default: 10 }),
        /** Seconds from sending a request to having the upstream's response headers. */
        headers: Type.Number({ exclusiveMinimum: 0, maximum: 600, default: 30 }),
        /**
         * Seconds an upstream body may send nothing before the transfer counts as broken (and is
         * resumed where the upstream allows).
         */
        bodyInactivity: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Seconds a cached mutable file (a path under `current/` or `latest/`, a `version.txt`, any
     * path without a version directory) is served before it is revalidated upstream with a
     * conditional request. Versioned paths are never revalidated.
     */
    mutableMaxAge: Type.Integer({ minimum: 0, maximum: 604800, default: 300 }),
    /**
     * Seconds past its freshness a cached mutable file may still be served while its upstream is
     * down or answers 5xx (stale-if-error), unless the upstream sends its own `stale-if-error`
     * or forbids it (`must-revalidate`). Each serving is logged and counted, and the answer says
     * `X-Cache-Status: STALE`.
     */
    staleIfError: Type.Integer({ minimum: 0, maximum: 31536000, default: 604800 }),
    /** Seconds an upstream 404 is remembered, so a missing file does not send every request upstream. 0: not remembered. */
    notFoundTtl: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
    /**
     * Upstream transfers running at once across all mirrors (each mirror also has its own
     * limit, `maxConcurrentFills` in its definition, default 4). Requests beyond it wait.
     */
    maxConcurrentFills: Type.Integer({ minimum: 1, maximum: 10000, default: 16 }),
    /** Transfers that may wait for a free slot; beyond it requests for new files get 503 with Retry-After. */
    maxQueuedFills: Type.Integer({ minimum: 0, maximum: 100000, default: 64 }),
    /**
     * Seconds a transfer goes on when no client, warm request or version lookup waits for it any
     * more; then it is stopped and its temp file removed.
     */
    abandonedFillTimeout: Type.Number({ minimum: 0, maximum: 3600, default: 10 }),
  },
  { additionalProperties: false, default: {} },
);

export type MirrorConfigFile = Static<typeof MirrorConfigSchema>;

export interface MirrorDefinition {
  name: string;
  /** Upstream base URL without a trailing slash. */
  url: string;
  /** Files are checked against Flatcar's `FILE.DIGESTS` (SHA-512) before they are kept. */
  flatcarDigests: boolean;
  /** Only paths matching one of these are fetched; absent: any path. */
  paths?: readonly RegExp[];
  /** Hosts other than the upstream's origin its redirects may go to (see {@link MirrorObjectSchema}). */
  redirectHosts?: readonly string[];
  /** Upstream transfers of this mirror at once; absent: {@link DEFAULT_FILLS_PER_MIRROR}. */
  maxConcurrentFills?: number;
  /** Query parameters left out of the cache key (the upstream still gets them). */
  ignoreQueryParams?: readonly string[];
  /** The query is neither part of the key nor sent upstream (the built-in Flatcar mirrors: release files take none). */
  dropQuery?: boolean;
  /** Overrides of the mirror-wide freshness settings; durations in ms. */
  freshness?: MirrorFreshness;
  /**
   * No path is immutable for looking versioned: every file is revalidated as the upstream's
   * caching headers say (a site's `origin`, whose uploads replace files at any path).
   */
  mutableOnly?: boolean;
}

export interface MirrorFreshness {
  maxAgeMs?: number;
  staleIfErrorMs?: number;
  ignoreUpstream?: boolean;
}

/** The effective mirror settings; durations in milliseconds. */
export interface MirrorSettings {
  cacheDir: string;
  maxBytes: number;
  mirrors: Readonly<Record<string, MirrorDefinition>>;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyInactivityMs: number;
  mutableMaxAgeMs: number;
  /** Default stale-if-error window past freshness, ms. */
  staleIfErrorMs: number;
  notFoundTtlMs: number;
  /** Upstream transfers at once, all mirrors together. */
  maxConcurrentFills: number;
  /** Transfers waiting for a slot before new ones are refused with 503. */
  maxQueuedFills: number;
  abandonedFillTimeoutMs: number;
}

/** One `--mirror` value (or the BOOTDEPOT_MIRROR text) and where it came from. */
export interface MirrorFlagValue {
  value: string;
  /** e.g. `--mirror` or `BOOTDEPOT_MIRROR`, for messages. */
  source: string;
}

const FLATCAR_HOSTS = /(^|\.)release\.flatcar-linux\.net$|^flatcar\.cdn\.cncf\.io$/;

/** Flatcar publishes `FILE.DIGESTS` beside its images; such mirrors verify what they keep. */
export function publishesFlatcarDigests(name: string, url: string): boolean {
  return /^flatcar(-|$)/.test(name) || FLATCAR_HOSTS.test(new URL(url).hostname);
}

/** Checks an upstream base URL; returns it without a trailing slash. */
export function normaliseUpstreamUrl(raw: string): { url?: string; problem?: string } {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return { problem: `invalid URL ${JSON.stringify(raw)}: expected e.g. https://stable.release.flatcar-linux.net` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `${raw}: must be an http:// or https:// URL` };
  // Paths are appended to the base: a query or fragment would end up in the middle of every URL.
  if (url.search || url.hash || raw.includes('?') || raw.includes('#')) return { problem: `${raw}: must not have a query or fragment` };
  // Credentials would be written to logs and the admin listing with every URL.
  if (url.username || url.password) return { problem: `${raw}: must not carry credentials` };
  return { url: url.href.replace(/\/+$/, '') };
}

/**
 * Parses `--mirror NAME=URL` values. Each value may hold several specs separated by commas or
 * whitespace (the environment variable's form), so a URL with a comma must spell it `%2C`.
 * Later specs for a name replace earlier ones.
 */
export function parseMirrorFlags(values: readonly MirrorFlagValue[]): { mirrors: Record<string, string>; problems: Problem[] } {
  const mirrors: Record<string, string> = {};
  const problems: Problem[] = [];
  for (const { value, source } of values) {
    const specs = value.split(/[\s,]+/).filter((spec) => spec !== '');
    if (specs.length === 0) problems.push({ source, message: 'expected NAME=URL, e.g. flatcar-stable=https://stable.release.flatcar-linux.net' });
    for (const spec of specs) {
      const equals = spec.indexOf('=');
      if (equals <= 0) {
        problems.push({ source, message: `${JSON.stringify(spec)}: expected NAME=URL` });
        continue;
      }
      const name = spec.slice(0, equals);
      const raw = spec.slice(equals + 1);
      if (!isMirrorName(name)) {
        problems.push({ source, message: `invalid mirror name ${JSON.stringify(name)}: letters, digits, - and _, starting with a letter or digit, at most 64` });
        continue;
      }
      const { url, problem } = normaliseUpstreamUrl(raw);
      if (problem || url === undefined) problems.push({ source, message: `mirror ${name}: ${problem ?? 'invalid URL'}` });
      else mirrors[name] = url;
    }
  }
  return { mirrors, problems };
}

export interface ResolveMirrorInput {
  /** The `mirror:` section with schema defaults applied. */
  file: MirrorConfigFile;
  /** Directory a relative `cacheDir` resolves against (the config file's, or the working directory). */
  baseDir: string;
  /** Source name for problems in the file, e.g. the config file's path. */
  fileSource: string;
  /** `--mirror` / BOOTDEPOT_MIRROR values; they win over the file's mirrors of the same name. */
  flags?: readonly MirrorFlagValue[];
}

export function resolveMirrorSettings(input: ResolveMirrorInput): { settings?: MirrorSettings; problems: Problem[] } {
  const { file } = input;
  const problems: Problem[] = [];
  const mirrors: Record<string, MirrorDefinition> = {};
  if (file.builtins) for (const [name, url] of Object.entries(BUILTIN_MIRRORS)) mirrors[name] = { ...defineMirror(name, url), paths: compilePathPatterns(FLATCAR_RELEASE_PATHS).patterns, dropQuery: true };
  for (const [name, entry] of Object.entries(file.mirrors)) {
    const where = `mirror.mirrors.${name}`;
    if (!isMirrorName(name)) {
      problems.push({ source: input.fileSource, path: where, message: 'invalid mirror name: letters, digits, - and _' });
      continue;
    }
    const spec = typeof entry === 'string' ? { url: entry } : entry;
    const { url, problem } = normaliseUpstreamUrl(spec.url);
    if (problem || url === undefined) {
      problems.push({ source: input.fileSource, path: typeof entry === 'string' ? where : `${where}.url`, message: problem ?? 'invalid URL' });
      continue;
    }
    const definition: MirrorDefinition = { name, url, flatcarDigests: publishesFlatcarDigests(name, url) };
    if (spec.paths) {
      const compiled = compilePathPatterns(spec.paths);
      for (const message of compiled.problems) problems.push({ source: input.fileSource, path: `${where}.paths`, message });
      definition.paths = compiled.patterns;
    }
    if (spec.redirectHosts) definition.redirectHosts = spec.redirectHosts.map((host) => host.toLowerCase());
    if (spec.maxConcurrentFills !== undefined) definition.maxConcurrentFills = spec.maxConcurrentFills;
    if (spec.ignoreQueryParams) definition.ignoreQueryParams = [...spec.ignoreQueryParams];
    if (spec.freshness) definition.freshness = freshnessOverrides(spec.freshness);
    mirrors[name] = definition;
  }
  const flags = parseMirrorFlags(input.flags ?? []);
  problems.push(...flags.problems);
  for (const [name, url] of Object.entries(flags.mirrors)) mirrors[name] = { name, url, flatcarDigests: publishesFlatcarDigests(name, url) };
  if (problems.length > 0) return { problems };

  return {
    settings: {
      cacheDir: path.resolve(input.baseDir, file.cacheDir),
      maxBytes: file.maxBytes,
      mirrors,
      connectTimeoutMs: Math.round(file.timeouts.connect * 1000),
      headersTimeoutMs: Math.round(file.timeouts.headers * 1000),
      bodyInactivityMs: Math.round(file.timeouts.bodyInactivity * 1000),
      mutableMaxAgeMs: file.mutableMaxAge * 1000,
      staleIfErrorMs: file.staleIfError * 1000,
      notFoundTtlMs: file.notFoundTtl * 1000,
      maxConcurrentFills: file.maxConcurrentFills,
      maxQueuedFills: file.maxQueuedFills,
      abandonedFillTimeoutMs: Math.round(file.abandonedFillTimeout * 1000),
    },
    problems: [],
  };
}

/** Settings with every default, for tests and for callers that build a mirror without a config file. */
export function defaultMirrorSettings(cacheDir: string, overrides: Partial<MirrorSettings> = {}): MirrorSettings {
  const file = Value.Default(MirrorConfigSchema, { cacheDir }) as MirrorConfigFile;
  const { settings } = resolveMirrorSettings({ file, baseDir: process.cwd(), fileSource: '(defaults)' });
  if (!settings) throw new Error('the default mirror settings do not resolve');
  return { ...settings, ...overrides };
}

/** A mirror's `freshness` section in ms. */
function freshnessOverrides(spec: { maxAge?: number; staleIfError?: number; ignoreUpstream?: boolean }): MirrorFreshness {
  const freshness: MirrorFreshness = {};
  if (spec.maxAge !== undefined) freshness.maxAgeMs = spec.maxAge * 1000;
  if (spec.staleIfError !== undefined) freshness.staleIfErrorMs = spec.staleIfError * 1000;
  if (spec.ignoreUpstream !== undefined) freshness.ignoreUpstream = spec.ignoreUpstream;
  return freshness;
}

export interface DefineMirrorOptions {
  /** Path patterns as in the config (`^regex` or glob). */
  paths?: readonly string[];
  redirectHosts?: readonly string[];
  maxConcurrentFills?: number;
  ignoreQueryParams?: readonly string[];
  /** As the config's `freshness`, in seconds. */
  freshness?: { maxAge?: number; staleIfError?: number; ignoreUpstream?: boolean };
}

/** A mirror definition from a name and URL, for tests and programmatic use; throws on a bad URL or pattern. */
export function defineMirror(name: string, rawUrl: string, options: DefineMirrorOptions = {}): MirrorDefinition {
  const { url, problem } = normaliseUpstreamUrl(rawUrl);
  if (!isMirrorName(name) || url === undefined) throw new Error(problem ?? `invalid mirror name ${JSON.stringify(name)}`);
  const definition: MirrorDefinition = { name, url, flatcarDigests: publishesFlatcarDigests(name, url) };
  if (options.paths) {
    const compiled = compilePathPatterns(options.paths);
    if (compiled.problems.length > 0) throw new Error(compiled.problems.join('; '));
    definition.paths = compiled.patterns;
  }
  if (options.redirectHosts) definition.redirectHosts = options.redirectHosts.map((host) => host.toLowerCase());
  if (options.maxConcurrentFills !== undefined) definition.maxConcurrentFills = options.maxConcurrentFills;
  if (options.ignoreQueryParams) definition.ignoreQueryParams = [...options.ignoreQueryParams];
  if (options.freshness) definition.freshness = freshnessOverrides(options.freshness);
  return definition;
}

/** The freshness rules of one mirror: its overrides over the mirror-wide settings. */
export function freshnessPolicyFor(mirror: Pick<MirrorDefinition, 'freshness'>, settings: Pick<MirrorSettings, 'mutableMaxAgeMs' | 'staleIfErrorMs'>): FreshnessPolicy {
  return {
    defaultMaxAgeMs: mirror.freshness?.maxAgeMs ?? settings.mutableMaxAgeMs,
    staleIfErrorMs: mirror.freshness?.staleIfErrorMs ?? settings.staleIfErrorMs,
    ignoreUpstream: mirror.freshness?.ignoreUpstream ?? false,
  };
}

/** A glob as an anchored regular expression: `**` any depth, `*` within a directory, `?` one character. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] ?? '';
    if (char === '*' && glob[i + 1] === '*') {
      source += '.*';
      i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Compiles `paths` patterns: `^...` is a regular expression, anything else a glob. */
export function compilePathPatterns(patterns: readonly string[]): { patterns: RegExp[]; problems: string[] } {
  const compiled: RegExp[] = [];
  const problems: string[] = [];
  for (const pattern of patterns) {
    if (!pattern.startsWith('^')) {
      compiled.push(globToRegExp(pattern));
      continue;
    }
    try {
      compiled.push(new RegExp(pattern));
    } catch (error) {
      problems.push(`invalid regular expression ${JSON.stringify(pattern)}: ${(error as Error).message}`);
    }
  }
  return { patterns: compiled, problems };
}
