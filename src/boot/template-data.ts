/**
 * The data templates see: Liquid's (scripts and `.liquid` Ignition) and matchbox's (Go templates).
 *
 * Every value a device sent is URL-encoded here, once (RFC 3986 unreserved characters stay as
 * they are), which makes it one safe token in a script and a ready query value in a URL.
 * Validated fields (mac, uuid, arch, platform, hostname, domain, ip) never need it, so they read
 * as sent. Fields the device did not send are empty strings, so a template can test them while
 * a misspelt name still fails.
 */
import type { Group, Profile } from './catalogue.ts';
import { encodeQueryValue } from '../common/escape.ts';
import { markStringMap, type GoMap, type GoValue } from '../gotemplate/index.ts';
import { IDENTITY_FIELDS } from '../common/identity.ts';
import { askAgainUrl, assetsBase, beaconUrl, configUrl, ignitionUrl, metadataUrl, type RenderContext } from './render-context.ts';
import { labelQuery } from './script.ts';

export interface TemplateData {
  /** Device identity, e.g. `device.mac` = `52:54:00:12:34:56`, `device.mac_hyphen` = `52-54-00-12-34-56`. */
  device: Record<string, string>;
  /** Every label (identity and other query parameters), encoded. */
  labels: Record<string, string>;
  /** Matched group: `group.id`, `group.name`, `group.metadata.*` (operator data, as written). */
  group: { id: string; name: string; metadata: Record<string, unknown> };
  profile: { id: string; name: string };
  /** e.g. `http://10.0.0.5:8080` */
  base_url: string;
  /** e.g. `http://10.0.0.5:8080/b/<boot id>/assets`: downloads through it are recorded with the boot. */
  assets_url: string;
  /** This boot's id (empty when the boot is not tracked). */
  boot_id: string;
  /**
   * This device's URLs: `urls.ipxe` (its script), `urls.ignition`, `urls.metadata`, and
   * `urls.beacon` (fetch it just before `boot`: `imgfetch {{ urls.beacon }} ||`; empty when untracked),
   * `urls.report` (the booted OS POSTs `{"state":"succeeded"}` here: a verified report; empty when untracked),
   * `urls.generic` and `urls.cloud` (the profile's matchbox generic and cloud configs).
   */
  urls: { ipxe: string; ignition: string; metadata: string; beacon: string; report: string; generic: string; cloud: string };
  /** The labels as a query string, e.g. `mac=52%3A54...&uuid=...`. */
  query: string;
}

export function buildTemplateData(profile: Profile, group: Group | undefined, ctx: RenderContext): TemplateData {
  const device: Record<string, string> = {};
  for (const field of IDENTITY_FIELDS) device[field] = encodeQueryValue(ctx.device.identity[field] ?? '');
  // Validated MACs contain only hex and colons; keep the colon form readable.
  device.mac = ctx.device.identity.mac ?? '';
  device.mac_hyphen = device.mac.replace(/:/g, '-');
  device.mac_hex = device.mac.replace(/:/g, '');
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.device.labels)) labels[key] = encodeQueryValue(value);
  return {
    device,
    labels,
    group: { id: group?.id ?? '', name: group?.name ?? '', metadata: group?.metadata ?? {} },
    profile: { id: profile.id, name: profile.name ?? profile.id },
    base_url: ctx.baseUrl,
    assets_url: assetsBase(ctx),
    boot_id: ctx.bootId ?? '',
    urls: { ipxe: askAgainUrl(ctx), ignition: ignitionUrl(ctx), metadata: metadataUrl(ctx), beacon: beaconUrl(ctx) ?? '', report: ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}/report` : '', generic: configUrl(ctx, 'generic'), cloud: configUrl(ctx, 'cloud') },
    query: labelQuery(ctx.device.labels),
  };
}

/**
 * matchbox's template data, for Go templates (Ignition/Butane, generic and cloud configs): the
 * group's metadata keys at the top level, the group's selectors over them (keys lower-cased),
 * and `request`: `query` (the labels the machine sent for its script, one value each, `mac`
 * normalised) and `raw_query` (those labels as a query string). matchbox takes these from the
 * config request itself; here they are the boot's, so the config checked before the machine
 * boots is the config it gets. Values a machine sent are percent-encoded as in Liquid's data
 * (letters, digits and `-._~:` read as sent), so none can add YAML or JSON structure.
 */
export function buildMatchboxData(group: Group | undefined, ctx: RenderContext): GoMap {
  // Operator data, copied through JSON: Go sees JSON values (numbers are float64, no dates).
  const data = JSON.parse(JSON.stringify(group?.metadata ?? {})) as GoMap;
  for (const [key, value] of Object.entries(group?.selector ?? {})) data[key.toLowerCase()] = value;
  const query: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.device.labels)) query[key] = key === 'mac' ? value : encodeQueryValue(value);
  const request: Record<string, GoValue> = { query: markStringMap(query), raw_query: labelQuery(ctx.device.labels) };
  data.request = request;
  return data;
}
