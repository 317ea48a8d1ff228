/**
 * What rendering a device's script needs, and the URLs every kind builds from it.
 */
import type { AssetReader } from '../assets/asset-root.ts';
import type { Config } from '../config/schema.ts';
import type { Catalogue, Group, Profile } from './catalogue.ts';
import { encodeUriComponentStrict } from '../common/escape.ts';
import type { FlatcarVersionSource } from '../mirror/flatcar.ts';
import type { PullThroughMirror } from '../mirror/mirror.ts';
import type { NextBoot } from '../state/model.ts';
import type { ParsedDevice } from '../common/identity.ts';
import { labelQuery, type ScriptPlan } from './script.ts';

export interface RenderContext {
  /** Public base URL without a trailing slash, e.g. `http://10.0.0.5:8080`. */
  baseUrl: string;
  device: ParsedDevice;
  catalogue: Catalogue;
  assets: AssetReader;
  boot: Config['boot'];
  /** The language of the answer: an iPXE script (default), or a GRUB config for `/grub`. */
  format?: ScriptFormat;
  /**
   * A script request without a MAC, answered (as matchbox answers it, from the groups its other
   * labels select) but recorded on no device, so nothing of a machine's is given to it.
   */
  withoutDevice?: boolean;
  /** URL a script re-fetches to ask again; default: this device's `/ipxe` (or `/grub`) with its labels. */
  selfUrl?: string;
  /**
   * This boot's id. When set, asset URLs go through `/b/<id>/` so each download is tied to the
   * boot (and its device) that asked for it, and the script fetches `/b/<id>/beacon` before `boot`.
   */
  bootId?: string;
  /** The device's recorded next boot (hold, local, once...), read from the device store. */
  nextBoot?: NextBoot | null;
  /**
   * The pull-through mirror, for Flatcar's `source: mirror` and for telling at once that a
   * mirrored file cannot be had now (`knownProblem`); absent when the mirror is off.
   */
  mirror?: MirrorView;
  /**
   * Resolve Flatcar `current` to a release through the mirror (contacting the upstream when the
   * cache is cold). `check` turns it off: validation must not depend on the internet.
   */
  resolveFlatcarCurrent?: boolean;
}

export type ScriptFormat = 'ipxe' | 'grub';

/** What the boot code needs of the mirror. */
export type MirrorView = FlatcarVersionSource & Partial<Pick<PullThroughMirror, 'knownProblem' | 'protect'>>;

/**
 * What a profile kind produces: a plan to boot, a finished script, or a reason to wait.
 * `notes` are things the operator should know that do not stop the boot (logged at warn).
 */
export type KindResult = { plan: ScriptPlan; notes?: string[] } | { script: string } | { wait: string };

export type KindRenderer = (profile: Profile, group: Group | undefined, ctx: RenderContext) => Promise<KindResult>;

/** Where this boot's assets are: `BASE/assets`, or `BASE/b/<boot id>/assets` for a tracked boot. */
export function assetsBase(ctx: Pick<RenderContext, 'baseUrl' | 'bootId'>): string {
  return ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/assets` : `${ctx.baseUrl}/assets`;
}

export function assetUrl(ctx: Pick<RenderContext, 'baseUrl' | 'bootId'>, relativePath: string): string {
  return `${assetsBase(ctx)}/${relativePath.split('/').map(encodeUriComponentStrict).join('/')}`;
}

/** The URL a script fetches just before `boot`, telling bootdepot the images are loaded. */
export function beaconUrl(ctx: Pick<RenderContext, 'baseUrl' | 'bootId'>): string | undefined {
  return ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/beacon` : undefined;
}

/** URL that renders this device's script again, with the same labels. */
export function askAgainUrl(ctx: RenderContext): string {
  return ctx.selfUrl ?? `${ctx.baseUrl}/${ctx.format === 'grub' ? 'grub' : 'ipxe'}?${labelQuery(ctx.device.labels)}`;
}

/**
 * The boot's Ignition config: under `/b/<boot id>/` for a tracked boot, so it is the config of
 * this boot's decision (a pinned or `once` profile's, not whatever matching says later) and is
 * served only to a holder of the boot's id. Untracked boots (state off) use matchbox's URL.
 */
export function ignitionUrl(ctx: RenderContext): string {
  return ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/ignition` : `${ctx.baseUrl}/ignition?${labelQuery(ctx.device.labels)}`;
}

/** The boot's matchbox generic or cloud config; under the boot like {@link ignitionUrl}. */
export function configUrl(ctx: RenderContext, what: 'generic' | 'cloud'): string {
  return ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/${what}` : `${ctx.baseUrl}/${what}?${labelQuery(ctx.device.labels)}`;
}

/** The boot's metadata (`KEY=value` lines); under the boot like {@link ignitionUrl}. */
export function metadataUrl(ctx: RenderContext): string {
  return ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/metadata` : `${ctx.baseUrl}/metadata?${labelQuery(ctx.device.labels)}`;
}
