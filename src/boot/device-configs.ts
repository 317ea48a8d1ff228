/**
 * Per-device configs fetched by the booted OS: `/ignition` (the profile's Ignition config) and
 * `/metadata` (the group's metadata as `KEY=value` lines, matchbox's format).
 */
import type { Group, Profile } from './catalogue.ts';
import { encodeQueryValue } from '../common/escape.ts';
import type { RenderContext } from './render-context.ts';
import { buildTemplateData } from './template-data.ts';

export type ConfigResult = { status: 200; body: string } | { status: 403 | 404 | 500 | 503; message: string };

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
  if (!config.template) return { status: 500, message: `Ignition config ${config.file} has no content` };
  let text: string;
  try {
    text = String(await ctx.catalogue.jsonEngine.render(config.template, buildTemplateData(profile, group, ctx)));
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

/** Flattens nested metadata to `PARENT_CHILD` keys, as matchbox does. */
function flatten(prefix: string, value: unknown, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) flatten(prefix ? `${prefix}_${key}` : key, child, out);
    return;
  }
  const text = Array.isArray(value) ? value.map(String).join(',') : String(value);
  // One line per key: a line break inside a value would forge another key.
  out.set(prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_'), text.replace(/\\/g, '\\\\').replace(/\r?\n|\r/g, '\\n'));
}

export function renderMetadata(target: ConfigTarget, ctx: RenderContext): ConfigResult {
  const entries = new Map<string, string>();
  // Labels first, so operator metadata with the same name wins. Device values stay encoded.
  for (const [key, value] of Object.entries(ctx.device.labels)) flatten(key, encodeQueryValue(value), entries);
  if (target.group) flatten('', target.group.metadata, entries);
  const body = [...entries.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  return { status: 200, body: `${body}\n` };
}
