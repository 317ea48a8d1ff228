/**
 * Config loading, pure: file text, overrides and the working directory in; a frozen Config or
 * every problem out. Reading the file and the command line is the CLI's job.
 */
import path from 'node:path';
import { parseDocumentText, validateDocument } from '../common/documents.ts';
import type { Problem } from '../common/problems.ts';
import { defaultMirrorSettings, resolveMirrorSettings, type MirrorFlagValue } from '../mirror/config.ts';
import { addressRangeProblem } from '../http/address-list.ts';
import { SITE_ORIGIN_MIRROR, siteOriginMirror } from '../mirror/site-assets.ts';
import { ConfigSchema, LOG_LEVELS, type Config, type ConfigFile, type LogLevel } from './schema.ts';

/** Settings that can be given on the command line or in the environment. */
export const OVERRIDABLE = ['host', 'port', 'baseUrl', 'logLevel', 'dataDir', 'assetsDir', 'adminToken', 'databaseUrl', 'cacheDir'] as const;
export type OverrideKey = (typeof OVERRIDABLE)[number];

export interface Override {
  key: OverrideKey;
  value: string;
  /** Where it came from, e.g. `--port` or `BOOTDEPOT_PORT`, for error messages. */
  source: string;
}

export interface LoadConfigInput {
  /** The config file, when one is used. */
  file?: { path: string; text: string };
  overrides?: readonly Override[];
  /** `--mirror NAME=URL` values (repeatable, so not an Override). */
  mirrorFlags?: readonly MirrorFlagValue[];
  /** Directory that relative paths in overrides (and in a missing file) resolve against. */
  cwd: string;
}

export type LoadConfigResult = { config: Config; problems: [] } | { config?: undefined; problems: Problem[] };

/** Checks a public base URL and returns it without a trailing slash. */
export function normaliseBaseUrl(raw: string): { url?: string; problem?: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: `invalid URL ${JSON.stringify(raw)}: expected e.g. http://10.0.0.5:8080` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `${raw}: must be an http:// or https:// URL` };
  if (url.search || url.hash) return { problem: `${raw}: must not have a query or fragment` };
  if (url.username || url.password) return { problem: `${raw}: must not carry credentials` };
  // iPXE has no quoting: a base URL with characters it would expand or split on breaks every script.
  if (/[\s$#|&"'`\\]/.test(decodeURI(url.href))) return { problem: `${raw}: contains characters iPXE cannot use in a URL` };
  return { url: url.href.replace(/\/+$/, '') };
}

export function loadConfig(input: LoadConfigInput): LoadConfigResult {
  const problems: Problem[] = [];
  let value: unknown = {};
  const fileSource = input.file?.path ?? '(defaults)';
  if (input.file) {
    const parsed = parseDocumentText(input.file.path, input.file.text);
    problems.push(...parsed.problems);
    if (!parsed.document) return { problems };
    value = parsed.document.value ?? {};
    const checked = validateDocument(ConfigSchema, input.file.path, { ...parsed.document, value });
    problems.push(...checked.problems);
    if (!checked.value) return { problems };
    value = checked.value;
  } else {
    const checked = validateDocument(ConfigSchema, fileSource, { value, locate: () => undefined });
    value = checked.value;
  }
  const file = value as ConfigFile;
  const fileDir = input.file ? path.dirname(path.resolve(input.cwd, input.file.path)) : input.cwd;
  const mirror = resolveMirrorSettings({ file: file.mirror, baseDir: fileDir, fileSource, flags: input.mirrorFlags });
  problems.push(...mirror.problems);

  const config: Config = {
    server: { ...file.server, baseUrl: undefined, metricsToken: file.server.metricsToken === '' ? undefined : file.server.metricsToken },
    limits: file.limits,
    log: { level: file.log.level },
    paths: { data: path.resolve(fileDir, file.paths.data), assets: path.resolve(fileDir, file.paths.assets) },
    assets: file.assets,
    // The fallback is never used: problems return before the config does.
    mirror: mirror.settings ?? defaultMirrorSettings(path.resolve(fileDir, 'cache')),
    admin: { token: file.admin.token === '' ? undefined : file.admin.token },
    signing: {
      keyFile: file.signing.keyFile === '' ? undefined : path.resolve(fileDir, file.signing.keyFile),
      passphraseFile: file.signing.passphraseFile === '' ? undefined : path.resolve(fileDir, file.signing.passphraseFile),
    },
    state: {
      enabled: file.state.enabled,
      databaseUrl: file.state.databaseUrl === '' ? undefined : file.state.databaseUrl,
      // Resolved below, once overrides may have moved the data directory.
      sqlitePath: file.state.sqlitePath === '' ? '' : path.resolve(fileDir, file.state.sqlitePath),
      retentionDays: file.state.retentionDays,
      maxEventsPerDevice: file.state.maxEventsPerDevice,
      maxUnknownDevices: file.state.maxUnknownDevices,
    },
    boot: file.boot,
    site: undefined,
    source: fileSource,
  };
  if (file.site) {
    const { url, problem } = normaliseBaseUrl(file.site.origin);
    if (problem) problems.push({ source: fileSource, path: 'site.origin', message: problem });
    config.site = {
      name: file.site.name,
      origin: url ?? file.site.origin,
      tokenFile: path.resolve(fileDir, file.site.tokenFile),
      syncIntervalSeconds: file.site.syncIntervalSeconds ?? 30,
      forwardEvents: file.site.forwardEvents ?? true,
    };
    // The site's /assets/ are the origin's, pulled through the mirror as the upstream `origin`.
    if (url !== undefined && mirror.settings) {
      if (mirror.settings.mirrors[SITE_ORIGIN_MIRROR]) {
        problems.push({ source: fileSource, path: `mirror.mirrors.${SITE_ORIGIN_MIRROR}`, message: `the name ${SITE_ORIGIN_MIRROR} is the site's origin (site.origin: ${url}/assets/) in site mode: give this mirror another name` });
      }
      config.mirror = { ...config.mirror, mirrors: { ...config.mirror.mirrors, [SITE_ORIGIN_MIRROR]: siteOriginMirror(url) } };
    }
  }
  if (file.server.baseUrl !== '') {
    const { url, problem } = normaliseBaseUrl(file.server.baseUrl);
    if (problem) problems.push({ source: fileSource, path: 'server.baseUrl', message: problem });
    config.server.baseUrl = url;
  }

  for (const override of input.overrides ?? []) {
    const { key, value: raw, source } = override;
    switch (key) {
      case 'host':
        if (raw.trim() === '') problems.push({ source, message: 'must not be empty' });
        else config.server.host = raw.trim();
        break;
      case 'port': {
        const port = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
        if (!Number.isInteger(port) || port > 65535) problems.push({ source, message: `invalid port ${JSON.stringify(raw)}: expected 0-65535` });
        else config.server.port = port;
        break;
      }
      case 'baseUrl': {
        if (raw === '') {
          config.server.baseUrl = undefined;
          break;
        }
        const { url, problem } = normaliseBaseUrl(raw);
        if (problem) problems.push({ source, message: problem });
        else config.server.baseUrl = url;
        break;
      }
      case 'logLevel':
        if ((LOG_LEVELS as readonly string[]).includes(raw)) config.log.level = raw as LogLevel;
        else problems.push({ source, message: `invalid log level ${JSON.stringify(raw)}: expected one of ${LOG_LEVELS.join(', ')}` });
        break;
      case 'dataDir':
        config.paths.data = path.resolve(input.cwd, raw);
        break;
      case 'assetsDir':
        config.paths.assets = path.resolve(input.cwd, raw);
        break;
      case 'adminToken':
        config.admin.token = raw === '' ? undefined : raw;
        break;
      case 'databaseUrl':
        config.state.databaseUrl = raw === '' ? undefined : raw;
        break;
      case 'cacheDir':
        config.mirror = { ...config.mirror, cacheDir: path.resolve(input.cwd, raw) };
        break;
    }
  }
  if (config.state.sqlitePath === '') config.state.sqlitePath = path.join(config.paths.data, 'bootdepot.db');
  if (config.state.databaseUrl !== undefined && !/^postgres(ql)?:\/\/\S+$/.test(config.state.databaseUrl)) {
    problems.push({ source: 'database URL', message: 'must be a postgres:// or postgresql:// URL' });
  }
  const token = config.admin.token;
  if (token !== undefined && (token.length < 16 || !/^[\x21-\x7e]+$/.test(token))) {
    problems.push({ source: 'admin token', message: 'must be at least 16 printable characters without spaces (e.g. `openssl rand -hex 32`)' });
  }
  const metricsToken = config.server.metricsToken;
  if (metricsToken !== undefined && (metricsToken.length < 16 || !/^[\x21-\x7e]+$/.test(metricsToken))) {
    problems.push({ source: fileSource, path: 'server.metricsToken', message: 'must be at least 16 printable characters without spaces (e.g. `openssl rand -hex 32`)' });
  }
  if (config.server.reservedConnections >= config.server.maxConnections) {
    problems.push({ source: fileSource, path: 'server.reservedConnections', message: `must be less than server.maxConnections (${config.server.maxConnections})` });
  }
  for (const [index, entry] of config.limits.allowList.entries()) {
    const problem = addressRangeProblem(entry);
    if (problem) problems.push({ source: fileSource, path: `limits.allowList.${index}`, message: problem });
  }
  if (config.site && config.server.baseUrl !== undefined && config.site.origin === config.server.baseUrl) {
    problems.push({ source: fileSource, path: 'site.origin', message: `is this server's own server.baseUrl (${config.server.baseUrl}): a site's origin is another bootdepot` });
  }
  if (config.signing.passphraseFile !== undefined && config.signing.keyFile === undefined) {
    problems.push({ source: fileSource, path: 'signing.passphraseFile', message: 'is set but signing.keyFile is not: name the key it unlocks' });
  }
  if (problems.length > 0) return { problems };
  return { config: deepFreeze(config), problems: [] };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
