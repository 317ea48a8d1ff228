/**
 * Per-device configs fetched by the booted OS: `/ignition` (the profile's Ignition config),
 * `/generic` and `/cloud` (matchbox's generic and cloud-config templates) and `/metadata` (the
 * group's metadata, selectors and request as `KEY=value` lines, matchbox's format).
 */
import { parse as parseYaml } from 'yaml';
import { ignitionJsonProblem, type Catalogue, type ConfigTemplate, type Group, type IgnitionConfig, type Profile } from './catalogue.ts';
import type { Problem } from '../common/problems.ts';
import { GoTemplateError } from '../gotemplate/index.ts';
import { formatFloatG } from '../gotemplate/format.ts';
import { serializeIgnition, transpileButane, type ButaneMessage } from '../butane/index.ts';
import type { RenderContext } from './render-context.ts';
import { buildMatchboxData, buildTemplateData } from './template-data.ts';

/**
 * A config, or why there is none. `problem` is the fault of a data file (a template that fails
 * for this machine, Butane that does not translate), placed in that file, for `check`.
 */
export type ConfigResult = { status: 200; body: string } | { status: 403 | 404 | 500 | 503; message: string; problem?: Problem };

/** The configs a profile may name, and the endpoints they are served at. */
export type ConfigKind = 'ignition' | 'generic' | 'cloud';

/** Largest config a Go template may render (Ignition, generic or cloud): above any config a machine needs. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Whose config is asked for: the profile and group of one boot's decision. */
export interface ConfigTarget {
  profile: Profile;
  group: Group | undefined;
}

/**
 * The profile's Ignition config for this device, checked to be JSON. The script path calls it
 * too, before a machine is told to boot, so a config that cannot be served makes the machine
 * wait instead of booting unconfigured.
 */
export async function renderIgnition(target: ConfigTarget, ctx: RenderContext): Promise<ConfigResult> {
  const { profile, group } = target;
  if (profile.ignition_id === undefined) return { status: 404, message: `profile ${profile.id} has no ignition_id` };
  const config = ctx.catalogue.ignition.get(profile.ignition_id);
  if (!config) {
    const why = ctx.catalogue.problems.find((problem) => problem.source === `ignition/${profile.ignition_id ?? ''}`);
    return { status: 503, message: `Ignition config ignition/${profile.ignition_id} of profile ${profile.id} is not loaded${why ? ` (${why.message})` : ''}` };
  }
  if (config.kind === 'json' && config.json !== undefined) return { status: 200, body: config.json };
  if (config.kind === 'go') return renderGoIgnition(config, group, ctx);
  if (!config.template) return { status: 500, message: `Ignition config ${config.file} has no content` };
  let text: string;
  try {
    text = String(await (await ctx.catalogue.templateEngines.json()).render(config.template, buildTemplateData(profile, group, ctx)));
  } catch (error) {
    return { status: 500, message: `Ignition template ${config.file} failed: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
  try {
    // Re-serialised so that what leaves is exactly the JSON that was checked.
    return { status: 200, body: JSON.stringify(JSON.parse(text)) };
  } catch (error) {
    return { status: 500, message: `Ignition template ${config.file} did not render valid JSON: ${(error as Error).message}` };
  }
}

/**
 * Butane's messages as one line (`path: message; ...`). Lines and columns are left out: they
 * are of the text as rendered for the machine, not of the file.
 */
function butaneMessages(messages: readonly ButaneMessage[]): string {
  return messages.map((m) => (m.path ? `${m.path}: ${m.message}` : m.message)).join('; ');
}

/** Renders a Go template for a machine; a failure names the file, line and column. */
function executeGo(entry: Pick<ConfigTemplate, 'file' | 'template'>, what: string, group: Group | undefined, ctx: RenderContext): { text: string } | { status: 500; message: string; problem: Problem } {
  try {
    return { text: entry.template.execute(buildMatchboxData(group, ctx), { missingKey: 'error', maxOutputBytes: MAX_CONFIG_BYTES }) };
  } catch (error) {
    if (!(error instanceof GoTemplateError)) throw error;
    return {
      status: 500,
      // Go's message names the file, line and column: `template: FILE:LINE:COL: ...`.
      message: `${what} failed: ${error.message}`,
      problem: { source: entry.file, line: error.line, column: error.column, message: `Go template: ${error.detail}` },
    };
  }
}

/**
 * matchbox's templated Ignition: the Go template rendered for this machine, then Butane
 * transpiled to Ignition, or JSON checked to be Ignition. Served at the Ignition version the
 * config declares (Butane's for its variant), not upconverted (docs: profiles and Ignition).
 */
async function renderGoIgnition(config: IgnitionConfig, group: Group | undefined, ctx: RenderContext): Promise<ConfigResult> {
  if (!config.goTemplate) return { status: 500, message: `Ignition config ${config.file} has no content` };
  const rendered = executeGo({ file: config.file, template: config.goTemplate }, 'Ignition template', group, ctx);
  if (!('text' in rendered)) return rendered;
  const text = rendered.text;
  if (config.butane || /^variant\s*:/m.test(text)) {
    const result = await transpileButane(text);
    if (!result.ok) {
      const why = butaneMessages(result.errors);
      return { status: 500, message: `Butane config ${config.file} does not translate to Ignition: ${why}`, problem: { source: config.file, message: `Butane (as rendered for this machine): ${why}` } };
    }
    // As Butane writes it (Go's encoding/json): what `butane` would have produced.
    return { status: 200, body: serializeIgnition(result.ignition) };
  }
  const why = ignitionJsonProblem(text);
  if (why) return { status: 500, message: `Ignition template ${config.file} rendered ${why}`, problem: { source: config.file, message: `rendered ${why}` } };
  return { status: 200, body: JSON.stringify(JSON.parse(text)) };
}

/** What a profile names for a config kind; an empty id (matchbox's `"cloud_id": ""`) is none. */
export function configIdOf(profile: Profile, kind: ConfigKind): string | undefined {
  const id = kind === 'ignition' ? profile.ignition_id : kind === 'generic' ? profile.generic_id : profile.cloud_id;
  return id === undefined || id === '' ? undefined : id;
}

const CONFIG_DIRS: Record<'generic' | 'cloud', { dir: string; label: string; key: string }> = {
  generic: { dir: 'generic', label: 'generic config', key: 'generic_id' },
  cloud: { dir: 'cloud', label: 'cloud-config', key: 'cloud_id' },
};

function whyNotLoaded(catalogue: Catalogue, rel: string): string {
  const why = catalogue.problems.find((problem) => problem.source === rel);
  return why ? ` (${why.message})` : '';
}

/**
 * matchbox's generic (`generic_id`) or cloud-config (`cloud_id`) template, rendered for this
 * machine. A cloud-config must render `#cloud-config` YAML or a script (`#!`), as matchbox checks.
 */
export function renderConfigTemplate(kind: 'generic' | 'cloud', target: ConfigTarget, ctx: RenderContext): ConfigResult {
  const { profile, group } = target;
  const { dir, label, key } = CONFIG_DIRS[kind];
  const id = configIdOf(profile, kind);
  if (id === undefined) return { status: 404, message: `profile ${profile.id} has no ${key}` };
  const entry = ctx.catalogue[kind].get(id);
  if (!entry) return { status: 503, message: `${label} ${dir}/${id} of profile ${profile.id} is not loaded${whyNotLoaded(ctx.catalogue, `${dir}/${id}`)}` };
  const rendered = executeGo(entry, label, group, ctx);
  if (!('text' in rendered)) return rendered;
  if (kind === 'cloud') {
    const problem = cloudConfigProblem(rendered.text);
    if (problem) return { status: 500, message: `${label} ${entry.file} ${problem}`, problem: { source: entry.file, message: `rendered ${problem}` } };
  }
  return { status: 200, body: rendered.text };
}

/** Why rendered user-data is not a cloud-config or a script, or undefined when it is one. */
function cloudConfigProblem(text: string): string | undefined {
  const header = (text.split('\n', 1)[0] ?? '').replace(/\r$/, '');
  if (header.startsWith('#!')) return undefined;
  if (header !== '#cloud-config') return 'is neither a cloud-config (first line "#cloud-config") nor a script ("#!")';
  try {
    const value: unknown = parseYaml(text);
    if (value !== null && (typeof value !== 'object' || Array.isArray(value))) return 'is not a YAML mapping';
  } catch (error) {
    return `is not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`;
  }
  return undefined;
}

/** Every config a profile names, rendered for this machine: those that cannot be served. */
export async function unservableConfigs(target: ConfigTarget, ctx: RenderContext): Promise<Exclude<ConfigResult, { status: 200 }>[]> {
  const results: ConfigResult[] = [];
  if (configIdOf(target.profile, 'ignition') !== undefined) results.push(await renderIgnition(target, ctx));
  for (const kind of ['generic', 'cloud'] as const) if (configIdOf(target.profile, kind) !== undefined) results.push(renderConfigTemplate(kind, target, ctx));
  return results.filter((result): result is Exclude<ConfigResult, { status: 200 }> => result.status !== 200);
}

/** What a metadata request asked with: matchbox's `request.query` (labels) and `request.raw_query`. */
export interface MetadataRequest {
  query: Readonly<Record<string, string>>;
  rawQuery: string;
}

/** A value written on one line: a line break would start another `KEY=value` line. */
function oneLine(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\r\n|\r|\n|\u2028|\u2029|\u0085/g, '\\n');
}

/**
 * matchbox's env-file rendering: strings, booleans and numbers (as Go's `%v` prints a JSON
 * number) as `NAME=value` with the name upper-cased; nested maps descend with `PARENT_`;
 * arrays and null are left out, as matchbox leaves them out.
 */
function envLines(prefix: string, root: Readonly<Record<string, unknown>>, out: [string, string][]): void {
  for (const [key, value] of Object.entries(root)) {
    const name = prefix + key;
    if (typeof value === 'string') out.push([name.toUpperCase(), value]);
    else if (typeof value === 'boolean') out.push([name.toUpperCase(), String(value)]);
    else if (typeof value === 'number') out.push([name.toUpperCase(), formatFloatG(value)]);
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) envLines(`${name}_`, value as Record<string, unknown>, out);
  }
}

/**
 * `/metadata` in matchbox's format: the group's metadata, its selectors over it (keys in lower
 * case), and `request` (`REQUEST_QUERY_<KEY>` for each label the request carried,
 * `REQUEST_RAW_QUERY`) over both; values as given, one line each, sorted by name.
 */
export function renderMetadata(group: Group | undefined, request: MetadataRequest): ConfigResult {
  const data: Record<string, unknown> = { ...(group?.metadata ?? {}) };
  for (const [key, value] of Object.entries(group?.selector ?? {})) data[key.toLowerCase()] = value;
  data.request = { query: { ...request.query }, raw_query: request.rawQuery };
  const lines: [string, string][] = [];
  envLines('', data, lines);
  const body = lines
    .map(([name, value]) => `${oneLine(name)}=${oneLine(value)}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join('\n');
  return { status: 200, body: `${body}\n` };
}
