/**
 * The catalogue: everything loaded from the data directory (profiles, groups, Ignition configs
 * and templates), validated and cross-checked, with every problem found.
 *
 * Loading never throws on bad data. A broken file is reported and left out; if an earlier load
 * had a good version of the same file, that version stays in service (and the problem says so),
 * so saving a typo into a group file does not silently move its machines to the default group.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseDocumentText, validateDocument } from '../common/documents.ts';
import { formatProblem, type Problem } from '../common/problems.ts';
import { GroupSchema, ID_PATTERN, ProfileSchema, type GroupFile, type MatchboxBootSpec, type ProfileFile } from './data-schema.ts';
import { IDENTITY_FIELDS, normaliseArch, normaliseMac, normalisePlatform, normaliseUuid, type IdentityField } from '../common/identity.ts';
import { compileTemplate, TemplateEngines, type CompiledTemplate } from './templates.ts';
import { GoTemplateError, parseGoTemplate, type GoTemplate } from '../gotemplate/index.ts';
import { toProblem, transpileButane } from '../butane/index.ts';

export const PROFILE_KINDS = ['boot', 'template', 'linuxkit', 'flatcar'] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];

export interface Profile extends ProfileFile {
  /** The profile's name: its file name without extension, by which groups find it (as matchbox). */
  id: string;
  /** The `id` written in the file, when it differs from the name (for messages). */
  declaredId?: string;
  kind: ProfileKind;
  /** File it was loaded from, relative to the data directory. */
  file: string;
}

export interface Group extends Omit<GroupFile, 'profile'> {
  /** The profile's name; none for a group that only carries metadata. */
  profile?: string;
  /** The group's name: its file name without extension. */
  id: string;
  /** The `id` written in the file, when it differs from the name (for messages). */
  declaredId?: string;
  /** Selector with identity values normalised (MAC in colon form and so on). */
  selector: Record<string, string>;
  /** Canonical `k=v,k=v` form of the selector, sorted: the deterministic tie-break. */
  selectorKey: string;
  file: string;
}

/** False for a profile kept for its configs only: a matchbox `boot` without a kernel. */
export function bootsAnything(profile: Profile): boolean {
  return profile.kind !== 'boot' || profile.boot?.kernel !== undefined;
}

export interface IgnitionConfig {
  id: string;
  file: string;
  /**
   * `json`: raw Ignition (`.ign`, `.ignition`), served as loaded. `template`: Liquid
   * (`.liquid`), rendered per device and checked to be JSON. `go`: matchbox's templated configs
   * (every other name), rendered per device with Go's text/template, then transpiled from
   * Butane or checked to be Ignition JSON.
   */
  kind: 'json' | 'template' | 'go';
  json?: string;
  template?: CompiledTemplate;
  goTemplate?: GoTemplate;
  /** `.yaml`, `.yml` and `.bu` files are Butane; other Go-templated files are when they say `variant:`. */
  butane?: boolean;
}

/** A matchbox generic (`generic/`) or cloud-config (`cloud/`) template, rendered per device with Go's text/template. */
export interface ConfigTemplate {
  id: string;
  file: string;
  template: GoTemplate;
}

export interface ScriptTemplate {
  id: string;
  file: string;
  template: CompiledTemplate;
}

export interface Catalogue {
  profiles: ReadonlyMap<string, Profile>;
  /** In matching order: most selectors first, then the greater selector key, then by file name (see compareGroups). */
  groups: readonly Group[];
  ignition: ReadonlyMap<string, IgnitionConfig>;
  templates: ReadonlyMap<string, ScriptTemplate>;
  /** matchbox generic configs (`generic/`), by file name: profiles name them with `generic_id`. */
  generic: ReadonlyMap<string, ConfigTemplate>;
  /** matchbox cloud-configs (`cloud/`), by file name: profiles name them with `cloud_id`. */
  cloud: ReadonlyMap<string, ConfigTemplate>;
  problems: readonly Problem[];
  /** Every entry by the file it came from, for keeping last good versions on reload. */
  byFile: ReadonlyMap<string, Entry>;
  /**
   * Group files that do not load and have no last good version: the machines they might
   * select wait (see `decideBoot`) rather than fall to a less specific group.
   */
  brokenGroups: readonly BrokenGroup[];
  /** Text of each file loaded from the data directory itself, for saving last good versions. */
  sources: ReadonlyMap<string, string>;
  /** Liquid's engines, loaded when a template first needs one. */
  templateEngines: TemplateEngines;
}

/**
 * A group file that does not load. `selector` is what could be read of it: each key with its
 * normalised value, or `undefined` for a value that could not be read (any value may be meant);
 * no selector at all when the file could not be parsed (any machine may be meant).
 */
export interface BrokenGroup {
  file: string;
  problem: string;
  selector?: Record<string, string | undefined>;
}

/** Where last good versions are kept: copies of data files by relative path, read by every command, written only by `serve`. */
export interface LastGoodSource {
  dir: string;
}

const DATA_EXTENSIONS = ['.json', '.yaml', '.yml'];
const MAX_DATA_FILE = 1024 * 1024;

/**
 * The one selector value normalised, as in matchbox: `mac` (any case of the key), as Go's
 * net.ParseMAC reads it. Every other value is compared as written.
 */
function normaliseSelector(key: string, raw: string): string | undefined {
  return key.toLowerCase() === 'mac' ? normaliseMac(raw) : raw;
}

/**
 * How bootdepot read identity selectors before it compared them as written, as matchbox does:
 * a value one of these changes now matches only a machine that sends it exactly so.
 */
const FORMERLY_NORMALISED: Partial<Record<IdentityField, (raw: string) => string | undefined>> = {
  uuid: normaliseUuid,
  arch: normaliseArch,
  platform: normalisePlatform,
  hostname: (raw) => raw.trim().toLowerCase(),
  domain: (raw) => raw.trim().toLowerCase(),
};

async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function stripExtension(name: string): string {
  return name.replace(/\.(json|ya?ml|ign|liquid)$/i, '').replace(/\.(json|ign|ipxe)$/i, '');
}

function profileKind(profile: ProfileFile): ProfileKind[] {
  return PROFILE_KINDS.filter((kind) => profile[kind] !== undefined);
}

export function canonicalSelector(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}

/**
 * Matching order, as matchbox's (`sort.Reverse(ByReqs)`): more selectors first; between as
 * many, the greater sorted selector text (`zone=a` before `rack=1`); between equal selectors,
 * the file that comes first by name (matchbox lists its directory in name order and, for the
 * few groups that share a selector, keeps that order; `check` reports them).
 */
export function compareGroups(a: Group, b: Group): number {
  const bySize = Object.keys(b.selector).length - Object.keys(a.selector).length;
  if (bySize !== 0) return bySize;
  if (a.selectorKey !== b.selectorKey) return a.selectorKey > b.selectorKey ? -1 : 1;
  return a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
}

interface LoadState {
  dataDir: string;
  previous: Catalogue | undefined;
  lastGood: LastGoodSource | undefined;
  problems: Problem[];
  byFile: Map<string, Entry>;
  sources: Map<string, string>;
  brokenGroups: BrokenGroup[];
  /** Warnings (files that load, maybe not as their author thinks), added to the problems at the end. */
  warnings: Problem[];
}

/** Reads one file; a read failure is a problem, not an exception. */
async function readText(state: LoadState, rel: string, root = state.dataDir): Promise<string | undefined> {
  try {
    const buffer = await readFile(path.join(root, rel));
    if (buffer.length > MAX_DATA_FILE) {
      state.problems.push({ source: rel, message: `larger than ${MAX_DATA_FILE} bytes; not loaded` });
      return undefined;
    }
    return buffer.toString('utf8');
  } catch (error) {
    state.problems.push({ source: rel, message: `cannot read: ${(error as Error).message}` });
    return undefined;
  }
}

type Entry = Profile | Group | IgnitionConfig | ScriptTemplate | ConfigTemplate;

/**
 * Loads one data file: from the data directory, or, when that version does not load, the last
 * good version: the one in service (a reload), else the copy kept on disk (a restart, or a
 * command run beside a server). A file that does not exist any more is not replaced.
 */
async function loadEntry<T extends Entry>(state: LoadState, rel: string, parse: (text: string) => Promise<T | undefined> | T | undefined): Promise<T | undefined> {
  const before = state.problems.length;
  const text = await readText(state, rel);
  if (text !== undefined) {
    const entry = await parse(text);
    if (entry && state.problems.length === before) {
      state.sources.set(rel, text);
      return entry;
    }
    if (entry) return entry;
  }
  const previous = state.previous?.byFile.get(rel) as T | undefined;
  if (previous) {
    state.problems.push({ source: rel, message: 'still serving the last good version of this file until it is fixed' });
    return previous;
  }
  if (!state.lastGood) return undefined;
  const saved = await readFile(path.join(state.lastGood.dir, rel), 'utf8').catch(() => undefined);
  if (saved === undefined) return undefined;
  const problems = state.problems.length;
  const entry = await parse(saved);
  // The saved copy loaded once; if it does not now (a schema change), say so and drop it.
  if (!entry) {
    state.problems.splice(problems);
    state.problems.push({ source: rel, message: `the last good version saved in ${state.lastGood.dir} does not load either` });
    return undefined;
  }
  state.problems.splice(problems);
  state.problems.push({ source: rel, message: `still serving the last good version of this file (kept in ${state.lastGood.dir}) until it is fixed` });
  return entry;
}

/**
 * One kind of data file (profiles, groups, Ignition configs, templates): which files of its
 * folder it takes, how one parses, and what its entries are called when two share an id.
 */
interface FileKind<T extends Entry> {
  dir: 'profiles' | 'groups' | 'ignition' | 'templates' | 'generic' | 'cloud';
  /** Why a file name is not loaded at all, or undefined to load it. */
  refuse(name: string): string | undefined;
  parse(rel: string, name: string, text: string): T | undefined | Promise<T | undefined>;
  /** `profile`, `group`: kinds whose files are found by name without extension, so `x.json` and `x.yaml` clash. */
  nameLabel?: string;
  /** Told about a file that does not load and has no good version (with the text that failed). */
  broken?(rel: string, text: string | undefined, problems: Problem[]): void;
}

const NOT_DATA = (name: string) => (DATA_EXTENSIONS.includes(path.extname(name).toLowerCase()) ? undefined : 'not a .json, .yaml or .yml file; ignored');
const NAME = new RegExp(ID_PATTERN);

/** Profiles and groups are known by file name: it must be a name bootdepot can write into URLs and scripts. */
function notNamedData(name: string): string | undefined {
  const refused = NOT_DATA(name);
  if (refused) return refused;
  const stem = stripExtension(name);
  return NAME.test(stem) ? undefined : `the file name ${JSON.stringify(stem)} is not a usable name (letters, digits, ".", "_", "-"; at most 128); not loaded`;
}

/** The name of a profile or group (its file name) and the id written in it, warning when they differ. */
function entryName(state: LoadState, rel: string, declared: string | undefined, what: 'profile' | 'group', locate: { line: number; column: number } | undefined): { id: string; declaredId?: string } {
  const id = stripExtension(path.basename(rel));
  if (declared === undefined || declared === id) return { id };
  const by = what === 'profile' ? `groups name it as "${id}" (profiles are found by file name, as matchbox does)` : `it is known as "${id}" in records and logs`;
  state.warnings.push({ source: rel, ...locate, path: 'id', severity: 'warning', message: `id "${declared}" differs from the file name; ${by}` });
  return { id, declaredId: declared };
}

/** Loads every file of one kind, in file-name order; entries by id. */
async function loadKind<T extends Entry>(state: LoadState, kind: FileKind<T>): Promise<Map<string, T>> {
  const entries = new Map<string, T>();
  for (const name of await listFiles(path.join(state.dataDir, kind.dir))) {
    const rel = `${kind.dir}/${name}`;
    const refused = kind.refuse(name);
    if (refused) {
      state.problems.push({ source: rel, message: refused });
      continue;
    }
    const before = state.problems.length;
    let firstText: string | undefined;
    const entry = await loadEntry(state, rel, (text) => {
      firstText ??= text;
      return kind.parse(rel, name, text);
    });
    if (!entry) {
      if (state.problems.length > before) kind.broken?.(rel, firstText, state.problems.slice(before));
      continue;
    }
    const existing = entries.get(entry.id);
    if (existing && kind.nameLabel) {
      state.problems.push({ source: rel, message: `${kind.nameLabel} "${entry.id}" is also ${existing.file} (a ${kind.nameLabel} is known by its file name without extension); this one is ignored` });
      continue;
    }
    entries.set(entry.id, entry);
    state.byFile.set(rel, entry);
  }
  return entries;
}

function parseProfile(state: LoadState, rel: string, text: string): Profile | undefined {
  const parsed = parseDocumentText(rel, text);
  state.problems.push(...parsed.problems);
  if (!parsed.document) return undefined;
  const checked = validateDocument(ProfileSchema, rel, parsed.document);
  state.problems.push(...checked.problems);
  if (!checked.value) return undefined;
  const value = { ...checked.value };
  // matchbox loads a profile with configs and no boot (its /ipxe has nothing to render): a boot profile without a kernel.
  const hasConfig = value.ignition_id !== undefined || value.generic_id !== undefined || value.cloud_id !== undefined;
  if (profileKind(value).length === 0 && hasConfig) value.boot = { initrd: [], args: [] };
  if (value.boot) value.boot = matchboxBoot(state, rel, value.boot, parsed.document.locate(['boot', 'cmdline']));
  const kinds = profileKind(value);
  if (kinds.length !== 1) {
    const pos = parsed.document.locate([]);
    state.problems.push({
      source: rel,
      ...pos,
      message:
        kinds.length === 0
          ? `a profile needs one of ${PROFILE_KINDS.map((k) => `"${k}"`).join(', ')}`
          : `a profile has exactly one of ${PROFILE_KINDS.join(', ')}; this one has ${kinds.join(' and ')}`,
    });
    return undefined;
  }
  const named = entryName(state, rel, value.id, 'profile', parsed.document.locate(['id']));
  return { ...value, ...named, kind: kinds[0] as ProfileKind, file: rel };
}

/**
 * A matchbox `boot` as every renderer takes it: an empty kernel is none (an Ignition-only
 * profile), and the legacy `cmdline` map joins `args` as matchbox v0.6 rendered it: after the
 * args, in key order, `key=value` or a bare `key` for an empty value.
 */
function matchboxBoot(state: LoadState, rel: string, boot: MatchboxBootSpec, at: { line: number; column: number } | undefined): MatchboxBootSpec {
  const { cmdline, kernel, ...rest } = boot;
  const result: MatchboxBootSpec = { ...rest, ...(kernel ? { kernel } : {}) };
  if (cmdline === undefined) return result;
  const keys = Object.keys(cmdline).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  result.args = [...rest.args, ...keys.map((key) => (cmdline[key] ? `${key}=${cmdline[key]}` : key))];
  state.warnings.push({
    source: rel,
    ...at,
    path: 'boot.cmdline',
    severity: 'warning',
    message: 'matchbox\'s legacy form: appended to the kernel arguments in key order, as matchbox v0.6 did (matchbox v0.7 and later ignore it); write them into "args"',
  });
  return result;
}

/** What can be read of a group file that does not load: its first problem, and its selector if it parses. */
function brokenGroup(rel: string, text: string | undefined, problems: Problem[]): BrokenGroup {
  const problem = problems[0] ? formatProblem(problems[0]) : `${rel}: does not load`;
  if (text === undefined) return { file: rel, problem };
  const parsed = parseDocumentText(rel, text);
  const value = parsed.document?.value as { selector?: unknown } | undefined;
  if (typeof value !== 'object' || value === null) return { file: rel, problem };
  if (value.selector === undefined || value.selector === null) return { file: rel, problem, selector: {} };
  if (typeof value.selector !== 'object' || Array.isArray(value.selector)) return { file: rel, problem };
  const selector: Record<string, string | undefined> = {};
  for (const [key, raw] of Object.entries(value.selector as Record<string, unknown>)) {
    if (typeof raw !== 'string' && typeof raw !== 'number') {
      selector[key] = undefined;
      continue;
    }
    selector[key] = normaliseSelector(key, String(raw));
  }
  return { file: rel, problem, selector };
}

function parseGroup(state: LoadState, rel: string, text: string): Group | undefined {
  const parsed = parseDocumentText(rel, text);
  state.problems.push(...parsed.problems);
  if (!parsed.document) return undefined;
  const checked = validateDocument(GroupSchema, rel, parsed.document);
  state.problems.push(...checked.problems);
  if (!checked.value) return undefined;
  const selector: Record<string, string> = {};
  let valid = true;
  for (const [key, raw] of Object.entries(checked.value.selector)) {
    const value = normaliseSelector(key, raw);
    const at = { source: rel, ...parsed.document.locate(['selector', key]), path: `selector.${key}` };
    if (value === undefined) {
      state.problems.push({ ...at, message: `invalid ${key} ${JSON.stringify(raw)}: not a MAC address (matchbox does not load this group either)` });
      valid = false;
      continue;
    }
    const formerly = (IDENTITY_FIELDS as readonly string[]).includes(key) ? FORMERLY_NORMALISED[key as IdentityField]?.(raw) : undefined;
    if (formerly !== undefined && formerly !== raw) {
      state.warnings.push({ ...at, severity: 'warning', message: `${JSON.stringify(raw)} is compared as written, as matchbox does: a machine sending ${JSON.stringify(formerly)} does not match` });
    }
    selector[key] = value;
  }
  if (!valid) return undefined;
  const named = entryName(state, rel, checked.value.id, 'group', parsed.document.locate(['id']));
  const { profile, ...rest } = checked.value;
  return {
    ...rest,
    ...(profile ? { profile } : {}),
    ...named,
    selector,
    selectorKey: canonicalSelector(selector),
    file: rel,
  };
}

/** matchbox serves `.ign` and `.ignition` files as they are; every other name is a template. */
export function isRawIgnition(name: string): boolean {
  return /\.(ign|ignition)$/i.test(name);
}

/** Whether a Go-templated Ignition file is Butane: by its name, or by a top-level `variant:`. */
export function isButane(name: string, text: string): boolean {
  return /\.(ya?ml|bu)$/i.test(name) || /^variant\s*:/m.test(text);
}

/** Why text that should be an Ignition config (JSON, not Butane) is not one; undefined when it is. */
export function ignitionJsonProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `neither Butane (no "variant:") nor JSON: ${(error as Error).message}`;
  }
  const version = (value as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof version !== 'string') return 'not an Ignition config: expected {"ignition": {"version": "3.x.0"}, ...}';
  return undefined;
}

/** A Go template's parse error as a problem of its file. */
export function goTemplateProblem(rel: string, error: GoTemplateError): Problem {
  return { source: rel, line: error.line, column: error.column, message: `Go template: ${error.detail}` };
}

function parseGo(state: LoadState, rel: string, text: string): GoTemplate | undefined {
  try {
    return parseGoTemplate(text, rel);
  } catch (error) {
    if (!(error instanceof GoTemplateError)) throw error;
    state.problems.push(goTemplateProblem(rel, error));
    return undefined;
  }
}

async function parseIgnition(state: LoadState, rel: string, name: string, engines: TemplateEngines, text: string): Promise<IgnitionConfig | undefined> {
  const lower = name.toLowerCase();
  if (lower.endsWith('.liquid')) {
    const { template, error } = compileTemplate(await engines.json(), text, rel);
    if (error) {
      state.problems.push({ source: rel, line: error.line, column: error.column, message: error.message });
      return undefined;
    }
    return { id: name, file: rel, kind: 'template', template };
  }
  if (!isRawIgnition(lower)) {
    const goTemplate = parseGo(state, rel, text);
    if (!goTemplate) return undefined;
    const butane = isButane(lower, text);
    // A Butane file without template actions renders to itself for every machine: Butane's
    // errors are the file's own, found now rather than when a machine asks.
    if (butane && !text.includes('{{')) {
      const result = await transpileButane(text);
      for (const warning of result.warnings) state.warnings.push({ ...toProblem(warning, rel), severity: 'warning', message: `Butane: ${warning.message}` });
      if (!result.ok) {
        for (const error of result.errors) state.problems.push({ ...toProblem(error, rel), message: `Butane: ${error.message}` });
        return undefined;
      }
    }
    if (!butane && !text.includes('{{')) {
      const problem = ignitionJsonProblem(text);
      if (problem) {
        state.problems.push({ source: rel, message: problem });
        return undefined;
      }
    }
    return { id: name, file: rel, kind: 'go', goTemplate, butane };
  }
  const parsed = parseDocumentText(rel, text);
  state.problems.push(...parsed.problems);
  if (!parsed.document) return undefined;
  const value = parsed.document.value as { ignition?: { version?: unknown } } | null;
  if (typeof value !== 'object' || value === null || typeof value.ignition?.version !== 'string') {
    state.problems.push({ source: rel, message: 'not an Ignition config: expected {"ignition": {"version": "3.x.0"}, ...}' });
    return undefined;
  }
  return { id: name, file: rel, kind: 'json', json: JSON.stringify(value) };
}

function crossCheck(state: LoadState, catalogue: Pick<Catalogue, 'profiles' | 'groups' | 'ignition' | 'templates' | 'generic' | 'cloud'>): void {
  for (const group of catalogue.groups) {
    if (group.profile === undefined) {
      state.warnings.push({
        source: group.file,
        severity: 'warning',
        message: 'no profile: a group for metadata only, as in matchbox; the machines it selects get no boot script (they wait; matchbox answers 404)',
      });
    } else if (!catalogue.profiles.has(group.profile)) {
      state.problems.push({ source: group.file, path: 'profile', message: `profile "${group.profile}" is not loaded; matching machines will wait` });
    }
  }
  const defaults = catalogue.groups.filter((g) => Object.keys(g.selector).length === 0);
  if (defaults.length > 1) {
    state.problems.push({
      source: defaults[1]?.file ?? 'groups/',
      message: `more than one default group (no selector): ${defaults.map((g) => g.id).join(', ')}; "${defaults[0]?.id}" wins`,
    });
  }
  for (let i = 1; i < catalogue.groups.length; i++) {
    const a = catalogue.groups[i - 1];
    const b = catalogue.groups[i];
    if (a && b && a.selectorKey === b.selectorKey && a.selectorKey !== '') {
      state.problems.push({ source: b.file, path: 'selector', message: `same selector as group "${a.id}" (${a.file}); "${a.id}" wins` });
    }
  }
  for (const profile of catalogue.profiles.values()) {
    if (profile.template !== undefined && !catalogue.templates.has(profile.template)) {
      state.problems.push({ source: profile.file, path: 'template', message: `template "${profile.template}" not found in templates/` });
    }
    if (profile.ignition_id !== undefined && !catalogue.ignition.has(profile.ignition_id)) {
      state.problems.push({ source: profile.file, path: 'ignition_id', message: `Ignition config "${profile.ignition_id}" not found in ignition/` });
    }
    if (profile.generic_id && !catalogue.generic.has(profile.generic_id)) {
      state.problems.push({ source: profile.file, path: 'generic_id', message: `generic config "${profile.generic_id}" not found in generic/` });
    }
    if (profile.cloud_id && !catalogue.cloud.has(profile.cloud_id)) {
      state.problems.push({ source: profile.file, path: 'cloud_id', message: `cloud-config "${profile.cloud_id}" not found in cloud/` });
    }
  }
}

/**
 * Loads the data directory. `previous` is the catalogue currently in service, whose entries
 * stand in for files that are broken now.
 */
export async function loadCatalogue(dataDir: string, previous?: Catalogue, lastGood?: LastGoodSource): Promise<Catalogue> {
  const state: LoadState = { dataDir, previous, lastGood, problems: [], byFile: new Map(), sources: new Map(), brokenGroups: [], warnings: [] };
  const dirStat = await stat(dataDir).catch(() => undefined);
  if (!dirStat?.isDirectory()) state.problems.push({ source: dataDir, message: 'data directory does not exist or is not a directory' });
  const templateEngines = previous?.templateEngines ?? new TemplateEngines();
  const profiles = await loadKind(state, { dir: 'profiles', refuse: notNamedData, nameLabel: 'profile', parse: (rel, _name, text) => parseProfile(state, rel, text) });
  const groups = [
    ...(
      await loadKind(state, {
        dir: 'groups',
        refuse: notNamedData,
        nameLabel: 'group',
        parse: (rel, _name, text) => parseGroup(state, rel, text),
        broken: (rel, text, problems) => state.brokenGroups.push(brokenGroup(rel, text, problems)),
      })
    ).values(),
  ].sort(compareGroups);
  const ignition = await loadKind(state, {
    dir: 'ignition',
    refuse: () => undefined,
    parse: (rel, name, text) => parseIgnition(state, rel, name, templateEngines, text),
  });
  const configTemplates = (dir: 'generic' | 'cloud') =>
    loadKind<ConfigTemplate>(state, {
      dir,
      refuse: () => undefined,
      parse: (rel, name, text) => {
        const template = parseGo(state, rel, text);
        return template ? { id: name, file: rel, template } : undefined;
      },
    });
  const generic = await configTemplates('generic');
  const cloud = await configTemplates('cloud');
  const templates = await loadKind<ScriptTemplate>(state, {
    dir: 'templates',
    refuse: () => undefined,
    parse: async (rel, name, text) => {
      const { template, error } = compileTemplate(await templateEngines.script(), text, rel);
      if (error) state.problems.push({ source: rel, line: error.line, column: error.column, message: error.message });
      return template && !error ? { id: stripExtension(name), file: rel, template } : undefined;
    },
  });
  crossCheck(state, { profiles, groups, ignition, templates, generic, cloud });
  return { profiles, groups, ignition, templates, generic, cloud, problems: [...state.problems, ...state.warnings], byFile: state.byFile, brokenGroups: state.brokenGroups, sources: state.sources, templateEngines };
}
