/**
 * Ignition's rules for disks, partitions, filesystems, RAID and LUKS (spec 3.x), in its words.
 */
import { err, list, notEmpty, str, validatePath, type Ctx, type O } from './ignition-support.ts';
import type { Path } from './messages.ts';
import { validateUrl } from './urls.ts';
import { text } from './values.ts';

const GUID = /^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const LABEL_LIMITS: Record<string, [number, string]> = {
  ext4: [16, 'ext4'],
  btrfs: [256, 'btrfs'],
  xfs: [12, 'xfs'],
  swap: [15, 'swap'],
  vfat: [11, 'vfat'],
};

export const DISK_RULES: Readonly<Record<string, (ctx: Ctx, o: O, p: Path) => void>> = {
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
