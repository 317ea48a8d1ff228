/**
 * Per-device configs fetched by the booted OS: `/ignition` (the profile's Ignition config) and
 * `/metadata` (the group's metadata as `KEY=value` lines, matchbox's format).
 */
import { decideBoot } from './decision.ts';
import { encodeQueryValue } from './escape.ts';
import type { RenderContext } from './render-context.ts';
import { buildTemplateData } from './template-data.ts';

export type ConfigResult = { status: 200; body: string } | { status: 404 | 500; message: string };

export async function renderIgnition(ctx: RenderContext): Promise<ConfigResult> {
  const decision = decideBoot({ catalogue: ctx.catalogue, labels: ctx.device.labels, boot: ctx.boot });
  if (decision.action !== 'profile') return { status: 404, message: `no profile for this machine: ${decision.reason}` };
  const { profile, group } = decision;
  if (profile.ignition_id === undefined) return { status: 404, message: `profile ${profile.id} has no ignition_id` };
  const config = ctx.catalogue.ignition.get(profile.ignition_id);
  if (!config) return { status: 404, message: `Ignition config ${profile.ignition_id} of profile ${profile.id} is not loaded` };
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

export function renderMetadata(ctx: RenderContext): ConfigResult {
  const decision = decideBoot({ catalogue: ctx.catalogue, labels: ctx.device.labels, boot: ctx.boot });
  if (decision.action !== 'profile') return { status: 404, message: `no group for this machine: ${decision.reason}` };
  const entries = new Map<string, string>();
  // Labels first, so operator metadata with the same name wins. Device values stay encoded.
  for (const [key, value] of Object.entries(ctx.device.labels)) flatten(key, encodeQueryValue(value), entries);
  if (decision.group) flatten('', decision.group.metadata, entries);
  const body = [...entries.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  return { status: 200, body: `${body}\n` };
}
