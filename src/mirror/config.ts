/**
 * The `mirror:` config section, the `--mirror NAME=URL` flag (and BOOTDEPOT_MIRROR), and the
 * step that turns both into {@link MirrorSettings}: absolute cache directory, milliseconds,
 * every mirror checked. Pure: nothing here touches the disk or the network.
 */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Problem } from '../common/problems.ts';
import { MIRROR_NAME_PATTERN, isMirrorName } from './paths.ts';

/** Flatcar's release servers, one per channel; contacted only when a path under them is asked for. */
export const BUILTIN_MIRRORS: Readonly<Record<string, string>> = {
  'flatcar-stable': 'https://stable.release.flatcar-linux.net',
  'flatcar-beta': 'https://beta.release.flatcar-linux.net',
  'flatcar-alpha': 'https://alpha.release.flatcar-linux.net',
  'flatcar-lts': 'https://lts.release.flatcar-linux.net',
};

const GIB = 1024 * 1024 * 1024;

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
    mirrors: Type.Record(Type.String({ pattern: MIRROR_NAME_PATTERN }), Type.String({ minLength: 1 }), { default: {}, additionalProperties: false }),
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
    /** Seconds an upstream 404 is remembered, so a missing file does not send every request upstream. 0: not remembered. */
    notFoundTtl: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
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
  notFoundTtlMs: number;
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
  const urls: Record<string, string> = file.builtins ? { ...BUILTIN_MIRRORS } : {};
  for (const [name, raw] of Object.entries(file.mirrors)) {
    if (!isMirrorName(name)) {
      problems.push({ source: input.fileSource, path: `mirror.mirrors.${name}`, message: 'invalid mirror name: letters, digits, - and _' });
      continue;
    }
    const { url, problem } = normaliseUpstreamUrl(raw);
    if (problem || url === undefined) problems.push({ source: input.fileSource, path: `mirror.mirrors.${name}`, message: problem ?? 'invalid URL' });
    else urls[name] = url;
  }
  const flags = parseMirrorFlags(input.flags ?? []);
  problems.push(...flags.problems);
  Object.assign(urls, flags.mirrors);
  if (problems.length > 0) return { problems };

  const mirrors: Record<string, MirrorDefinition> = {};
  for (const [name, url] of Object.entries(urls)) mirrors[name] = { name, url, flatcarDigests: publishesFlatcarDigests(name, url) };
  return {
    settings: {
      cacheDir: path.resolve(input.baseDir, file.cacheDir),
      maxBytes: file.maxBytes,
      mirrors,
      connectTimeoutMs: Math.round(file.timeouts.connect * 1000),
      headersTimeoutMs: Math.round(file.timeouts.headers * 1000),
      bodyInactivityMs: Math.round(file.timeouts.bodyInactivity * 1000),
      mutableMaxAgeMs: file.mutableMaxAge * 1000,
      notFoundTtlMs: file.notFoundTtl * 1000,
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

/** A mirror definition from a name and URL, for tests and programmatic use; throws on a bad URL. */
export function defineMirror(name: string, rawUrl: string): MirrorDefinition {
  const { url, problem } = normaliseUpstreamUrl(rawUrl);
  if (!isMirrorName(name) || url === undefined) throw new Error(problem ?? `invalid mirror name ${JSON.stringify(name)}`);
  return { name, url, flatcarDigests: publishesFlatcarDigests(name, url) };
}
