/**
 * Ignition's own validation of a config (spec 3.x), which Butane runs on what it generated: the
 * same checks, in the same walk order (a type's rules before its fields'), with the same words.
 * Paths are those of the Ignition config (camelCase); index.ts maps them back to the source.
 */
import path from 'node:path';
import { entryKey, IGNORE_DUPLICATES, MERGED_KEYS, type IgnObject, type IgnSchema, type IgnType } from './ignition-schema.ts';
import type { Path } from './messages.ts';
import { unitSections } from './unit-file.ts';
import { validateUrl } from './urls.ts';
import { text } from './values.ts';

export interface Finding {
  path: Path;
  message: string;
  warning: boolean;
}

interface Ctx {
  out: Finding[];
  minor: number;
  version: string;
}

type O = IgnObject;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const notEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';
const list = (v: unknown): O[] => (Array.isArray(v) ? (v as O[]) : []);

function err(ctx: Ctx, p: Path, message: string | undefined): void {
  if (message) ctx.out.push({ path: p, message, warning: false });
}
function warn(ctx: Ctx, p: Path, message: string | undefined): void {
  if (message) ctx.out.push({ path: p, message, warning: true });
}

export function validatePath(p: string): string | undefined {
  if (p === '') return 'path not specified';
  if (!p.startsWith('/')) return 'path not absolute';
  // Go's path.Clean: no `.`, `..`, doubled or trailing slashes.
  const clean = path.posix.normalize(p).replace(/(.)\/$/, '$1');
  return clean === p ? undefined : 'path is not fully simplified';
}

function validateMode(ctx: Ctx, o: O, p: Path): void {
  const mode = o['mode'];
  if (typeof mode !== 'number') return;
  err(ctx, [...p, 'mode'], mode < 0 || mode > 0o7777 ? 'illegal file mode' : undefined);
  if (ctx.minor < 6 && (mode & 0o7000) !== 0) {
    warn(ctx, [...p, 'mode'], 'setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0');
  }
}

function idOrName(ctx: Ctx, o: O, p: Path): void {
  if (o['id'] !== undefined && notEmpty(o['name'])) err(ctx, p, 'cannot set both id and name');
}

const GUID = /^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const UNIT_EXTENSIONS = ['.service', '.socket', '.device', '.mount', '.automount', '.swap', '.target', '.path', '.timer', '.snapshot', '.slice', '.scope'];
const LABEL_LIMITS: Record<string, [number, string]> = {
  ext4: [16, 'ext4'],
  btrfs: [256, 'btrfs'],
  xfs: [12, 'xfs'],
  swap: [15, 'swap'],
  vfat: [11, 'vfat'],
};

function validateResource(ctx: Ctx, o: O, p: Path): void {
  const compression = o['compression'];
  if (typeof compression === 'string' && compression !== '' && compression !== 'gzip') err(ctx, [...p, 'compression'], 'invalid compression method');
  const verification = (o['verification'] ?? {}) as O;
  if (verification['hash'] !== undefined && o['source'] === undefined) {
    err(ctx, [...p, 'verification', 'hash'], 'source must be specified if verification is specified');
  }
  if (notEmpty(o['source'])) err(ctx, [...p, 'source'], validateUrl(o['source']));
  if (list(o['httpHeaders']).length > 0) {
    const source = str(o['source']);
    if (!notEmpty(source)) err(ctx, [...p, 'httpHeaders'], 'unable to parse url');
    else if (!/^https?:/i.test(source)) err(ctx, [...p, 'httpHeaders'], 'cannot use HTTP headers with this source scheme');
  }
}

function requiredSource(o: O | undefined): string | undefined {
  const source = o?.['source'];
  return notEmpty(source) ? validateUrl(source) : 'source is required';
}

const RULES: Readonly<Record<string, (ctx: Ctx, o: O, p: Path) => void>> = {
  Config(ctx, o, p) {
    const unitPaths = new Set<string>();
    for (const unit of list((o['systemd'] as O | undefined)?.['units'])) {
      if (notEmpty(unit['contents'])) unitPaths.add(`/etc/systemd/system/${text(unit['name'])}`);
      for (const dropin of list(unit['dropins'])) {
        if (notEmpty(dropin['contents'])) unitPaths.add(`/etc/systemd/system/${text(unit['name'])}.d/${text(dropin['name'])}`);
      }
    }
    const storage = (o['storage'] ?? {}) as O;
    for (const kind of ['files', 'directories', 'links']) {
      list(storage[kind]).forEach((node, i) => {
        if (unitPaths.has(String(node['path']))) err(ctx, [...p, 'storage', kind, i, 'path'], 'path conflicts with systemd unit or dropin');
      });
    }
  },
  Ignition(ctx, o, p) {
    const version = str(o['version']) ?? '';
    if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) err(ctx, [...p, 'version'], 'invalid config version (couldn\'t parse)');
    else if (version !== ctx.version) err(ctx, [...p, 'version'], 'unsupported config version');
  },
  IgnitionConfig(ctx, o, p) {
    list(o['merge']).forEach((res, i) => err(ctx, [...p, 'merge', i], requiredSource(res)));
  },
  TLS(ctx, o, p) {
    list(o['certificateAuthorities']).forEach((res, i) => err(ctx, [...p, 'certificateAuthorities', i], requiredSource(res)));
  },
  Proxy(ctx, o, p) {
    for (const [field, httpOk] of [['httpProxy', true], ['httpsProxy', false]] as const) {
      const value = str(o[field]);
      if (value === undefined) continue;
      const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
      if (scheme !== 'http' && scheme !== 'https') err(ctx, [...p, field], 'proxies must be http(s)');
      else if (scheme === 'http' && !httpOk) warn(ctx, [...p, field], 'insecure plaintext HTTP proxy specified for HTTPS resources');
    }
  },
  Directory(ctx, o, p) {
    err(ctx, [...p, 'path'], validatePath(text(o['path'])));
    validateMode(ctx, o, p);
  },
  File(ctx, o, p) {
    err(ctx, [...p, 'path'], validatePath(text(o['path'])));
    validateMode(ctx, o, p);
    const contents = (o['contents'] ?? {}) as O;
    if (o['overwrite'] === true && contents['source'] === undefined) err(ctx, [...p, 'overwrite'], 'overwrite must be false if source is unspecified');
  },
  NodeUser: idOrName,
  NodeGroup: idOrName,
  Disk(ctx, o, p) {
    const device = text(o['device']);
    if (device === '') return err(ctx, [...p, 'device'], 'disk device is required');
    err(ctx, [...p, 'device'], validatePath(device));
    const parts = list(o['partitions']);
    const numbers = new Map<number, number[]>();
    parts.forEach((part, i) => {
      const n = Number(part['number'] ?? 0);
      if (n !== 0) numbers.set(n, [...(numbers.get(n) ?? []), i]);
    });
    const collide = [...numbers.values()].find((idx) => idx.length > 1);
    if (collide) err(ctx, [...p, 'partitions', collide[1] ?? 0], 'partition numbers collide');
    const overlap = partitionsOverlap(parts);
    if (overlap !== undefined) err(ctx, [...p, 'partitions', overlap], 'partitions overlap');
    if (parts.some((x) => Number(x['number'] ?? 0) === 0) && parts.some((x) => x['shouldExist'] === false)) {
      err(ctx, [...p, 'partitions'], 'shouldExist is false for a partition and other partition(s) has start or size 0');
    }
    const labels = new Set<string>();
    for (const [i, part] of parts.entries()) {
      const label = str(part['label']);
      if (label === undefined) continue;
      if (labels.has(label)) {
        err(ctx, [...p, 'partitions', i], 'cannot use the same partition label twice');
        break;
      }
      labels.add(label);
    }
  },
  Partition(ctx, o, p) {
    if (o['shouldExist'] === false && (o['label'] !== undefined || notEmpty(o['typeGuid']) || notEmpty(o['guid']) || o['startMiB'] !== undefined || o['sizeMiB'] !== undefined)) {
      err(ctx, p, 'shouldExist specified false with other options also specified');
    }
    if (Number(o['number'] ?? 0) === 0 && o['label'] === undefined) err(ctx, p, 'a partition number >= 1 or a label must be specified');
    const label = str(o['label']);
    if (label !== undefined) {
      if (label.length > 36) err(ctx, [...p, 'label'], 'partition labels may not exceed 36 characters');
      else if (label.includes(':')) err(ctx, [...p, 'label'], 'partition label will be truncated to text before the colon');
    }
    for (const field of ['guid', 'typeGuid']) {
      const value = str(o[field]);
      if (value !== undefined && !GUID.test(value)) err(ctx, [...p, field], 'doesn\'t match the form "01234567-89AB-CDEF-EDCB-A98765432101"');
    }
  },
  Filesystem(ctx, o, p) {
    if (notEmpty(o['path'])) err(ctx, [...p, 'path'], validatePath(o['path']));
    err(ctx, [...p, 'device'], validatePath(text(o['device'])));
    const format = str(o['format']);
    if (!notEmpty(format)) {
      if (notEmpty(o['path']) || notEmpty(o['label']) || notEmpty(o['uuid']) || o['wipeFilesystem'] === true || list(o['mountOptions']).length > 0 || list(o['options']).length > 0) {
        err(ctx, [...p, 'format'], 'format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified');
      }
    } else if (!['ext4', 'btrfs', 'xfs', 'swap', 'vfat', 'none'].includes(format)) err(ctx, [...p, 'format'], 'invalid filesystem format');
    const label = str(o['label']);
    if (notEmpty(label)) {
      if (!notEmpty(format)) err(ctx, [...p, 'label'], 'filesystem must specify format if label is specified');
      else {
        const limit = LABEL_LIMITS[format];
        if (limit && label.length > limit[0]) err(ctx, [...p, 'label'], `filesystem labels cannot be longer than ${limit[0]} characters when using ${limit[1]}`);
      }
    }
  },
  Luks(ctx, o, p) {
    if (text(o['name']).includes('/')) err(ctx, [...p, 'name'], 'device names cannot contain slashes');
    const label = str(o['label']);
    if (label !== undefined && label.length > 47) err(ctx, [...p, 'label'], 'luks device labels cannot be longer than 47 characters');
    if (!notEmpty(o['device'])) err(ctx, [...p, 'device'], 'disk device is required');
    else err(ctx, [...p, 'device'], validatePath(o['device']));
    const clevis = (o['clevis'] ?? {}) as O;
    const custom = (clevis['custom'] ?? {}) as O;
    if (notEmpty(custom['pin']) && (list(clevis['tang']).length > 0 || clevis['tpm2'] === true || (clevis['threshold'] !== undefined && clevis['threshold'] !== 0))) {
      err(ctx, [...p, 'clevis'], 'cannot use custom clevis config with tpm2, tang, or threshold');
    }
    const keyFile = (o['keyFile'] ?? {}) as O;
    if (notEmpty(keyFile['source']) && validateUrl(keyFile['source'])) err(ctx, [...p, 'keys'], 'invalid key-file source');
    if (ctx.minor >= 5) {
      const cex = (o['cex'] ?? {}) as O;
      if (cex['enabled'] === true && (list(clevis['tang']).length > 0 || clevis['tpm2'] === true || notEmpty(custom['pin']))) err(ctx, [...p, 'cex'], 'cannot use cex with clevis');
    }
  },
  ClevisCustom(ctx, o, p) {
    if (!notEmpty(o['pin']) && !notEmpty(o['config']) && o['needsNetwork'] !== true) return;
    if (notEmpty(o['pin'])) {
      if (!['tpm2', 'tang', 'sss'].includes(o['pin'])) err(ctx, [...p, 'pin'], 'unsupported clevis pin');
    } else err(ctx, [...p, 'pin'], 'missing required custom clevis pin');
    if (!notEmpty(o['config'])) err(ctx, [...p, 'config'], 'missing required custom clevis config');
  },
  Tang(ctx, o, p) {
    if (!/^https?:/i.test(text(o['url']))) err(ctx, [...p, 'url'], 'invalid url scheme');
    if (!notEmpty(o['thumbprint'])) err(ctx, [...p, 'thumbprint'], 'thumbprint is required');
    const adv = o['advertisement'];
    if (notEmpty(adv)) {
      try {
        JSON.parse(adv);
      } catch {
        err(ctx, [...p, 'advertisement'], 'advertisement is not valid JSON');
      }
    }
  },
  Raid(ctx, o, p) {
    const level = str(o['level']);
    if (!notEmpty(level)) err(ctx, [...p, 'level'], 'raid level is required');
    else if (['linear', 'raid0', '0', 'stripe'].includes(level)) {
      if (o['spares'] !== undefined && o['spares'] !== 0) err(ctx, [...p, 'level'], 'spares unsupported for linear and raid0 arrays');
    } else if (!['raid1', '1', 'mirror', 'raid4', '4', 'raid5', '5', 'raid6', '6', 'raid10', '10'].includes(level)) {
      err(ctx, [...p, 'level'], 'unrecognized raid level');
    }
    const devices = Array.isArray(o['devices']) ? (o['devices'] as string[]) : [];
    if (devices.length === 0) err(ctx, [...p, 'devices'], 'raid devices required');
    devices.forEach((device, i) => err(ctx, [...p, 'devices', i], validatePath(String(device))));
  },
  Resource: validateResource,
  HTTPHeader(ctx, o, p) {
    if (text(o['name']) === '') err(ctx, [...p, 'name'], "HTTP header name can't be empty");
    if (o['value'] === '') err(ctx, [...p, 'value'], 'unable to parse HTTP header');
  },
  Verification(ctx, o, p) {
    const hash = str(o['hash']);
    if (hash === undefined) return;
    const dash = hash.indexOf('-');
    if (dash === -1) return err(ctx, [...p, 'hash'], 'malformed hash specifier');
    const fn = hash.slice(0, dash);
    const size = fn === 'sha512' ? 128 : fn === 'sha256' ? 64 : undefined;
    if (size === undefined) return err(ctx, [...p, 'hash'], 'unrecognized hash function');
    if (hash.length - dash - 1 !== size) err(ctx, [...p, 'hash'], 'incorrect size for hash sum');
  },
  Storage(ctx, o, p) {
    const links = list(o['links']);
    const dirs = list(o['directories']);
    const under = (child: unknown, link: O): boolean => String(child).startsWith(`${String(link['path'])}/`);
    dirs.forEach((d, i) => links.forEach((l) => under(d['path'], l) && err(ctx, [...p, 'directories', i], 'directory path includes link in config')));
    list(o['files']).forEach((f, i) => links.forEach((l) => under(f['path'], l) && err(ctx, [...p, 'files', i], 'file path includes link in config')));
    links.forEach((l1, i) => {
      links.forEach((l2) => under(l1['path'], l2) && err(ctx, [...p, 'links', i], 'link path includes link in config'));
      if (!notEmpty(l1['target'])) return err(ctx, [...p, 'links', i, 'target'], 'link target is required');
      if (l1['hard'] !== true) return;
      const target = l1['target'].startsWith('/') ? path.posix.normalize(l1['target']) : path.posix.join(String(l1['path']), l1['target']);
      for (const d of dirs) if (target === d['path']) err(ctx, [...p, 'links', i], 'hard link target is a directory');
      const user = (l1['user'] ?? {}) as O;
      const group = (l1['group'] ?? {}) as O;
      for (const [owner, key, value] of [['user', 'id', user['id']], ['user', 'name', user['name']], ['group', 'id', group['id']], ['group', 'name', group['name']]] as const) {
        if (value !== undefined) warn(ctx, [...p, 'links', i, owner, key], 'user/group ignored for hard link');
      }
    });
    const disks = new Map(list(o['disks']).map((d) => [String(d['device']), d]));
    list(o['filesystems']).forEach((fs, i) => {
      const disk = disks.get(String(fs['device']));
      if (!disk) return;
      if (list(disk['partitions']).length > 0) warn(ctx, [...p, 'filesystems', i, 'device'], 'filesystem overwrites partitioned device');
      else if (fs['wipeFilesystem'] !== true && disk['wipeTable'] === true) warn(ctx, [...p, 'filesystems', i, 'device'], 'device matches disk with wipeTable enabled; filesystem will be wiped');
    });
  },
  Systemd(ctx, o, p) {
    const units = list(o['units']);
    const byName = new Map(units.map((u) => [String(u['name']), u]));
    units.forEach((unit, index) => {
      const m = /^(.+?)@(.+?)\.service$/.exec(String(unit['name']));
      if (!m || unit['enabled'] !== true) return;
      const template = `${m[1] ?? ''}@.service`;
      const contents = byName.get(template)?.['contents'];
      if (!notEmpty(contents)) return;
      const parsed = unitSections(contents);
      if ('error' in parsed) return;
      if (!parsed.sections.includes('Install')) {
        warn(ctx, [...p, 'units', index, 'contents'], `template unit ${JSON.stringify(template)} for ${JSON.stringify(String(unit['name']))} doesn't have Install section`);
      }
    });
  },
  Unit(ctx, o, p) {
    const name = text(o['name']);
    if (!UNIT_EXTENSIONS.includes(path.posix.extname(name))) err(ctx, [...p, 'name'], 'invalid systemd unit extension');
    const contents = str(o['contents']);
    if (contents === undefined) return;
    const parsed = unitSections(contents);
    if ('error' in parsed) return err(ctx, [...p, 'contents'], `invalid unit content: ${parsed.error}`);
    if (o['enabled'] === true && contents !== '' && !parsed.sections.includes('Install')) {
      warn(ctx, [...p, 'contents'], `unit ${JSON.stringify(name)} is enabled, but has no install section so enable does nothing`);
    }
  },
  Dropin(ctx, o, p) {
    const contents = str(o['contents']);
    if (contents !== undefined) {
      const parsed = unitSections(contents);
      if ('error' in parsed) err(ctx, [...p, 'contents'], `invalid unit content: ${parsed.error}`);
    }
    if (path.posix.extname(text(o['name'])) !== '.conf') err(ctx, [...p, 'name'], 'invalid systemd drop-in extension');
  },
};

function partitionsOverlap(parts: O[]): number | undefined {
  const range = (x: O): [number, number] | undefined => {
    const start = x['startMiB'];
    const size = x['sizeMiB'];
    if (typeof start !== 'number' || typeof size !== 'number' || start === 0) return undefined;
    return [start, size === 0 ? start : start + size - 1];
  };
  for (const p of parts) {
    const a = range(p);
    if (!a) continue;
    for (const [i, o] of parts.entries()) {
      const b = range(o);
      if (!b || o === p) continue;
      if ((a[0] >= b[0] && a[0] <= b[1]) || (a[1] >= b[0] && a[1] <= b[1]) || (a[0] < b[0] && a[1] > b[1])) return i;
    }
  }
  return undefined;
}

/** Ignition's validation of a config in output shape. */
export function validateIgnition(config: O, schema: IgnSchema, minor: number, version: string): Finding[] {
  const ctx: Ctx = { out: [], minor, version };
  const walk = (value: unknown, type: IgnType, p: Path): void => {
    if (value === undefined || value === null) return;
    if (type.kind === 'list') {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, type.of, [...p, i]));
      return;
    }
    if (type.kind !== 'struct') return;
    const o = value as O;
    RULES[type.name]?.(ctx, o, p);
    for (const field of schema.get(type.name) ?? []) walk(o[field.name], field.type, [...p, field.name]);
  };
  walk(config, { kind: 'struct', name: 'Config' }, []);
  return ctx.out;
}

/** Entries defined twice in a list (by Ignition's keys), walking like the validation. */
export function findDuplicates(config: O, schema: IgnSchema): Finding[] {
  const out: Finding[] = [];
  const walk = (value: unknown, type: IgnType, p: Path): void => {
    if (value === undefined || value === null) return;
    if (type.kind === 'list') {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, type.of, [...p, i]));
      return;
    }
    if (type.kind !== 'struct') return;
    const o = value as O;
    const fields = schema.get(type.name) ?? [];
    const seen = new Map<string, Set<string>>();
    for (const field of fields) {
      if (field.type.kind !== 'list' || (IGNORE_DUPLICATES[type.name] ?? []).includes(field.name)) continue;
      const group = MERGED_KEYS[type.name]?.[field.name] ?? field.name;
      const keys = seen.get(group) ?? new Set<string>();
      seen.set(group, keys);
      const of = field.type.of;
      list(o[field.name]).forEach((item, i) => {
        const key = entryKey(of.kind === 'struct' ? of.name : 'scalar', item);
        if (keys.has(key)) out.push({ path: [...p, field.name, i], message: 'duplicate entry defined', warning: false });
        keys.add(key);
      });
    }
    for (const field of fields) walk(o[field.name], field.type, [...p, field.name]);
  };
  walk(config, { kind: 'struct', name: 'Config' }, []);
  return out;
}
