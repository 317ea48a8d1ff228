/**
 * What rendering a device's script needs, and the URLs every kind builds from it.
 */
import type { AssetReader } from '../assets/asset-root.ts';
import type { Config } from '../config/schema.ts';
import type { Catalogue, Group, Profile } from './catalogue.ts';
import { encodeUriComponentStrict } from './escape.ts';
import type { ParsedDevice } from './identity.ts';
import { labelQuery, type BootPlan } from './script.ts';

export interface RenderContext {
  /** Public base URL without a trailing slash, e.g. `http://10.0.0.5:8080`. */
  baseUrl: string;
  device: ParsedDevice;
  catalogue: Catalogue;
  assets: AssetReader;
  boot: Config['boot'];
  /** URL a script re-fetches to ask again; default: this device's `/ipxe` with its labels. */
  selfUrl?: string;
}

/** What a profile kind produces: a plan to boot, a finished script, or a reason to wait. */
export type KindResult = { plan: BootPlan } | { script: string } | { wait: string };

export type KindRenderer = (profile: Profile, group: Group | undefined, ctx: RenderContext) => Promise<KindResult>;

export function assetUrl(baseUrl: string, relativePath: string): string {
  return `${baseUrl}/assets/${relativePath.split('/').map(encodeUriComponentStrict).join('/')}`;
}

/** URL that renders this device's script again, with the same labels. */
export function askAgainUrl(ctx: RenderContext): string {
  return ctx.selfUrl ?? `${ctx.baseUrl}/ipxe?${labelQuery(ctx.device.labels)}`;
}

export function ignitionUrl(ctx: RenderContext): string {
  return `${ctx.baseUrl}/ignition?${labelQuery(ctx.device.labels)}`;
}

export function metadataUrl(ctx: RenderContext): string {
  return `${ctx.baseUrl}/metadata?${labelQuery(ctx.device.labels)}`;
}
