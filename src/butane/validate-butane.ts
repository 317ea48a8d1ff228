/**
 * Butane's checks of the source config, before anything is translated: one source per resource,
 * modes that look like decimal by mistake, mount units that can be written, the variant's
 * boot_device and grub rules. Walked in Butane's order: a type's rules, then its fields.
 */
import type { ButaneObject } from './decode.ts';
import type { Path, Report } from './messages.ts';
import type { FieldType, Schema } from './schema.ts';
import type { SpecVersion } from './versions.ts';
import { validateInlineIgnition } from './ignition-config.ts';

type O = ButaneObject;
type Rule = (o: O, p: Path, ctx: Ctx) => void;
interface Ctx {
  report: Report;
  spec: SpecVersion;
}

/** Butane's heuristic: a mode written in decimal that would be an ordinary mode in octal. */
export function isDecimalMode(mode: number, directory: boolean): boolean {
  if (mode < 0 || mode > 7777) return false;
  const digits = String(mode).padStart(4, '0');
  if (/[89]/.test(digits)) return false;
  const octal = Number.parseInt(digits, 8);
  return !isTypicalMode(mode, directory) && isTypicalMode(octal, directory);
}

export function isTypicalMode(mode: number, directory: boolean): boolean {
  if (mode === 0) return true;
  let hadR = false;
  let hadW = false;
  let hadX = false;
  for (const perm of [mode & 0o7, (mode & 0o70) >> 3, (mode & 0o700) >> 6]) {
    const r = (perm & 4) !== 0;
    const w = (perm & 2) !== 0;
    const x = (perm & 1) !== 0;
    if ((!r && hadR) || (!w && hadW) || (!x && hadX)) return false;
    if (x && hadR && !hadX) return false;
    if ((w || x) && !r) return false;
    hadR ||= r;
    hadW ||= w;
    hadX ||= x;
  }
  if (!hadR) return false;
  if (directory) {
    if (!hadX) return false;
    if (mode & 0o4000) return false;
    if (mode & 0o3000 && !hadW) return false;
  } else {
    if (mode & 0o6000) {
      if (!hadX) return false;
      if (mode & 0o2) return false;
    }
    if (mode & 0o1000) return false;
  }
  return true;
}

const DECIMAL_MODE = 'unreasonable mode would be reasonable if specified in octal; remember to add a leading zero';
const isSet = (v: unknown): boolean => v !== undefined;
const notEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

const RULES: Readonly<Record<string, Rule>> = {
  Config(o, p, ctx) {
    if (ctx.spec.variant !== 'fcos' || (ctx.spec.level.fcos ?? 0) < 6) return;
    const storage = (o['storage'] ?? {}) as O;
    ((storage['disks'] as O[] | undefined) ?? []).forEach((disk, i) => {
      if (disk['device'] === '/dev/disk/by-id/coreos-boot-disk' || disk['wipe_table'] === true) return;
      ((disk['partitions'] as O[] | undefined) ?? []).forEach((part, j) => {
        if ((part['number'] ?? 0) === 0 && isSet(part['label'])) {
          ctx.report.warn(
            [...p, 'storage', 'disks', i, 'partitions', j, 'number'],
            'partitions cannot be reused by label; number must be specified except on boot disk (/dev/disk/by-id/coreos-boot-disk) or when wipe_table is true',
          );
        }
      });
    });
    ((storage['filesystems'] as O[] | undefined) ?? []).forEach((fs, i) => {
      if (typeof fs['path'] === 'string' && !/^\/(etc|var)(\/|$)/.test(fs['path']) && fs['with_mount_unit'] === true) {
        ctx.report.error([...p, 'storage', 'filesystems', i, 'path'], 'path must be under /etc or /var if with_mount_unit is true');
      }
    });
  },
  Resource(o, p, ctx) {
    const set = (['local', 'inline', 'source'] as const).filter((f) => isSet(o[f]));
    if (set.length > 1) {
      ctx.report.error([...p, set[set.length - 1] ?? 'source'], 'only one of the following can be set: inline, local, source');
      return;
    }
    if (p[0] === 'ignition' && p[1] === 'config' && typeof o['inline'] === 'string') {
      validateInlineIgnition(o['inline'], p, ctx.spec, ctx.report);
    }
  },
  Filesystem(o, p, ctx) {
    if (o['with_mount_unit'] !== true) return;
    if (!notEmpty(o['format'])) ctx.report.error([...p, 'format'], 'format is required if with_mount_unit is true');
    else if (o['format'] !== 'swap' && !notEmpty(o['path'])) ctx.report.error([...p, 'path'], 'path is required if with_mount_unit is true and format is not swap');
  },
  Directory(o, p, ctx) {
    if (typeof o['mode'] === 'number' && isDecimalMode(o['mode'], true)) ctx.report.warn([...p, 'mode'], DECIMAL_MODE);
  },
  File(o, p, ctx) {
    if (typeof o['mode'] === 'number' && isDecimalMode(o['mode'], false)) ctx.report.warn([...p, 'mode'], DECIMAL_MODE);
  },
  Tree(o, p, ctx) {
    if (!notEmpty(o['local'])) ctx.report.error(p, 'local is required');
  },
  Unit: sourcesOfUnit,
  Dropin: sourcesOfUnit,
  BootDevice(o, p, ctx) {
    const layout = o['layout'];
    const fcos = ctx.spec.level.fcos ?? 0;
    const layouts = fcos >= 6 ? ['aarch64', 'ppc64le', 'x86_64', 's390x-eckd', 's390x-virt', 's390x-zfcp'] : ['aarch64', 'ppc64le', 'x86_64'];
    const luks = (o['luks'] ?? {}) as O;
    const mirror = (o['mirror'] ?? {}) as O;
    if (typeof layout === 'string') {
      if (!layouts.includes(layout)) ctx.report.error([...p, 'layout'], 'layout must be one of: aarch64, ppc64le, s390x-eckd, s390x-virt, s390x-zfcp, x86_64');
      else if (layout === 's390x-eckd' || layout === 's390x-zfcp') {
        const device = luks['device'];
        const pattern = layout === 's390x-eckd' ? /\/dev\/dasd[a-z]$/ : /\/dev\/sd[a-z]$/;
        if (!notEmpty(device)) ctx.report.error([...p, 'layout'], 'device is required for layouts: s390x-eckd, s390x-zfcp');
        else if (!pattern.test(device)) {
          ctx.report.error([...p, 'layout'], 'device name must start with /dev/dasd on s390x-eckd layout or /dev/sd on s390x-zfcp layout');
        }
      }
      if (layout.startsWith('s390x') && ((mirror['devices'] as unknown[] | undefined) ?? []).length > 0) {
        ctx.report.error([...p, 'layout'], 'mirroring not supported on layouts: s390x-eckd, s390x-zfcp, s390x-virt');
      }
    }
    // Butane checks the mirror here and again as a field of its own: the error is reported twice.
    RULES['BootDeviceMirror']?.(mirror, [...p, 'mirror'], ctx);
    if (fcos >= 6 && (luks['cex'] as O | undefined)?.['enabled'] === true) {
      if (typeof layout !== 'string') ctx.report.error([...p, 'luks', 'cex'], 'when using cex the targeted architecture must match s390x');
      else if (!layout.startsWith('s390x')) ctx.report.error([...p, 'layout'], 'when using cex the targeted architecture must match s390x');
      if (((luks['tang'] as unknown[] | undefined) ?? []).length > 0 || luks['tpm2'] === true) ctx.report.error([...p, 'luks'], 'cannot use cex with clevis');
    }
  },
  BootDeviceLuks(o, p, ctx) {
    // fcos 1.7.0-experimental: a LUKS device needs a way to unlock it (Butane names the path luks.luks).
    if ((ctx.spec.level.fcos ?? 0) < 7 || !notEmpty(o['device'])) return;
    const tang = ((o['tang'] as O[] | undefined) ?? []).some((t) => Object.values(t).some((v) => v !== undefined && v !== ''));
    if (!tang && o['tpm2'] !== true && (o['cex'] as O | undefined)?.['enabled'] !== true) ctx.report.error([...p, 'luks'], 'no method specified for luks');
  },
  BootDeviceMirror(o, p, ctx) {
    if (((o['devices'] as unknown[] | undefined) ?? []).length === 1) ctx.report.error([...p, 'devices'], 'mirroring requires at least two devices');
  },
  GrubUser(o, p, ctx) {
    if (!notEmpty(o['name'])) ctx.report.error([...p, 'name'], 'field "name" is required');
    if (!notEmpty(o['password_hash'])) ctx.report.error([...p, 'password_hash'], 'field "password_hash" is required');
  },
};

function sourcesOfUnit(o: O, p: Path, ctx: Ctx): void {
  if (isSet(o['contents_local']) && isSet(o['contents'])) ctx.report.error([...p, 'contents_local'], 'only one of the following can be set: contents, contents_local');
}

export function validateButane(config: O, schema: Schema, spec: SpecVersion, report: Report): void {
  const ctx: Ctx = { report, spec };
  const walk = (value: unknown, type: FieldType, p: Path): void => {
    if (value === undefined) return;
    if (type.kind === 'list') {
      (value as unknown[]).forEach((item, i) => walk(item, type.of, [...p, i]));
      return;
    }
    if (type.kind !== 'struct') return;
    const o = value as O;
    RULES[type.name]?.(o, p, ctx);
    for (const field of schema.get(type.name) ?? []) walk(o[field.name], field.type, [...p, field.name]);
  };
  walk(config, { kind: 'struct', name: 'Config' }, []);
}
