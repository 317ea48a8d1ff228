/**
 * Ignition's own validation of a config (spec 3.x), which Butane runs on what it generated: the
 * same checks, in the same walk order (a type's rules before its fields'), with the same words.
 * Paths are those of the Ignition config (camelCase); index.ts maps them back to the source.
 */
import path from 'node:path';
import { DISK_RULES } from './ignition-disk-rules.ts';
import { entryKey, IGNORE_DUPLICATES, MERGED_KEYS, type IgnSchema, type IgnType } from './ignition-schema.ts';
import { err, idOrName, list, notEmpty, str, validateMode, validatePath, warn, type Ctx, type Finding, type O } from './ignition-support.ts';
import type { Path } from './messages.ts';
import { unitSections } from './unit-file.ts';
import { validateUrl } from './urls.ts';
import { text } from './values.ts';

export { validatePath, type Finding } from './ignition-support.ts';

const UNIT_EXTENSIONS = ['.service', '.socket', '.device', '.mount', '.automount', '.swap', '.target', '.path', '.timer', '.snapshot', '.slice', '.scope'];

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
  ...DISK_RULES,
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

/** Visits every struct of a config in output shape, parents first, as Ignition walks it. */
function eachStruct(config: O, schema: IgnSchema, visit: (o: O, name: string, p: Path) => void): void {
  const walk = (value: unknown, type: IgnType, p: Path): void => {
    if (value === undefined || value === null) return;
    if (type.kind === 'list') {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, type.of, [...p, i]));
      return;
    }
    if (type.kind !== 'struct') return;
    const o = value as O;
    visit(o, type.name, p);
    for (const field of schema.get(type.name) ?? []) walk(o[field.name], field.type, [...p, field.name]);
  };
  walk(config, { kind: 'struct', name: 'Config' }, []);
}

/** Ignition's validation of a config in output shape. */
export function validateIgnition(config: O, schema: IgnSchema, minor: number, version: string): Finding[] {
  const ctx: Ctx = { out: [], minor, version };
  eachStruct(config, schema, (o, name, p) => RULES[name]?.(ctx, o, p));
  return ctx.out;
}

/** Entries defined twice in a list (by Ignition's keys), walking like the validation. */
export function findDuplicates(config: O, schema: IgnSchema): Finding[] {
  const out: Finding[] = [];
  eachStruct(config, schema, (o, name, p) => {
    const fields = schema.get(name) ?? [];
    const seen = new Map<string, Set<string>>();
    for (const field of fields) {
      if (field.type.kind !== 'list' || (IGNORE_DUPLICATES[name] ?? []).includes(field.name)) continue;
      const group = MERGED_KEYS[name]?.[field.name] ?? field.name;
      const keys = seen.get(group) ?? new Set<string>();
      seen.set(group, keys);
      const of = field.type.of;
      list(o[field.name]).forEach((item, i) => {
        const key = entryKey(of.kind === 'struct' ? of.name : 'scalar', item);
        if (keys.has(key)) out.push({ path: [...p, field.name, i], message: 'duplicate entry defined', warning: false });
        keys.add(key);
      });
    }
  });
  return out;
}
