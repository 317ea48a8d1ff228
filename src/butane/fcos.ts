/**
 * Fedora CoreOS sugar: `boot_device` (a mirrored and/or LUKS-encrypted root disk, laid out like
 * the OS image for the architecture), `grub.users`, and the warning for partitions that reuse a
 * reserved label under another number. The generated config is merged under the operator's.
 */
import type { ButaneObject } from './decode.ts';
import type { IgnObject } from './ignition-schema.ts';
import type { Path } from './messages.ts';
import type { Origins } from './origins.ts';
import { makeDataUrl } from './resources.ts';
import { text } from './values.ts';

const RESERVED_GUID = '8DA63339-0007-60C0-C436-083AC8230908';
const BIOS_GUID = '21686148-6449-6E6F-744E-656564454649';
const PREP_GUID = '9E1A2D38-C612-4316-AA26-8B49521E5A8B';
const ESP_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
// The OS image's layout; the mirrored copies must not be smaller. Never change these.
const RESERVED_MIB = 1;
const BIOS_MIB = 1;
const PREP_MIB = 4;
const ESP_MIB = 127;
const BOOT_MIB = 384;

type O = ButaneObject;

function tang(list: unknown, origins: Origins, at: Path): IgnObject[] | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return (list as O[]).map((t, i) => {
    const out: IgnObject = {};
    for (const [from, to] of [['advertisement', 'advertisement'], ['thumbprint', 'thumbprint'], ['url', 'url']] as const) {
      if (t[from] !== undefined) out[to] = t[from];
    }
    origins.set(out, [...at, i]);
    return out;
  });
}

/** The config boot_device asks for, or undefined when it asks for nothing. */
export function bootDeviceConfig(bootDevice: O | undefined, origins: Origins): IgnObject | undefined {
  const luks = (bootDevice?.['luks'] ?? {}) as O;
  const devices = (((bootDevice?.['mirror'] ?? {}) as O)['devices'] as string[] | undefined) ?? [];
  const cex = (luks['cex'] as O | undefined)?.['enabled'] === true;
  const wantLuks = luks['tpm2'] === true || ((luks['tang'] as unknown[] | undefined) ?? []).length > 0 || cex;
  const wantMirror = devices.length > 0;
  if (!wantLuks && !wantMirror) return undefined;
  const layout = typeof bootDevice?.['layout'] === 'string' ? bootDevice['layout'] : 'x86_64';
  const wantBios = layout === 'x86_64';
  const wantEfi = layout === 'x86_64' || layout === 'aarch64';
  const wantPrep = layout === 'ppc64le';
  const disks: IgnObject[] = [];
  const filesystems: IgnObject[] = [];
  const storage: IgnObject = {};
  if (wantMirror) {
    devices.forEach((device, i) => {
      const n = disks.length + 1;
      const partitions: IgnObject[] = [];
      if (wantBios) partitions.push({ label: `bios-${n}`, sizeMiB: BIOS_MIB, typeGuid: BIOS_GUID });
      else if (wantPrep) partitions.push({ label: `prep-${n}`, sizeMiB: PREP_MIB, typeGuid: PREP_GUID });
      else partitions.push({ label: `reserved-${n}`, sizeMiB: RESERVED_MIB, typeGuid: RESERVED_GUID });
      if (wantEfi) partitions.push({ label: `esp-${n}`, sizeMiB: ESP_MIB, typeGuid: ESP_GUID });
      else partitions.push({ label: `reserved-${n}`, sizeMiB: RESERVED_MIB, typeGuid: RESERVED_GUID });
      partitions.push({ label: `boot-${n}`, sizeMiB: BOOT_MIB }, { label: `root-${n}` });
      const disk: IgnObject = { device, partitions, wipeTable: true };
      origins.set(disk, ['boot_device', 'mirror', 'devices', i]);
      disks.push(disk);
      if (wantEfi) {
        const esp: IgnObject = { device: `/dev/disk/by-partlabel/esp-${n}`, format: 'vfat', label: `esp-${n}`, wipeFilesystem: true };
        origins.set(esp, ['boot_device', 'mirror', 'devices', i]);
        filesystems.push(esp);
      }
    });
    const raidDevices = (prefix: string): string[] => disks.map((_, i) => `/dev/disk/by-partlabel/${prefix}-${i + 1}`);
    const raid: IgnObject[] = [
      { devices: raidDevices('boot'), level: 'raid1', name: 'md-boot', options: ['--metadata=1.0'] },
      { devices: raidDevices('root'), level: 'raid1', name: 'md-root' },
    ];
    for (const r of raid) origins.set(r, ['boot_device', 'mirror']);
    const boot: IgnObject = { device: '/dev/md/md-boot', format: 'ext4', label: 'boot', wipeFilesystem: true };
    origins.set(boot, ['boot_device', 'mirror']);
    filesystems.push(boot);
    storage['disks'] = disks;
    storage['raid'] = raid;
  }
  if (wantLuks) {
    let device = '/dev/disk/by-partlabel/root';
    if (layout === 's390x-eckd') device = `${String(luks['device'])}2`;
    else if (layout === 's390x-zfcp') device = `${String(luks['device'])}4`;
    else if (wantMirror) device = '/dev/md/md-root';
    const entry: IgnObject = { device, label: 'luks-root', name: 'root', wipeVolume: true };
    if (luks['discard'] !== undefined) entry['discard'] = luks['discard'];
    if (cex) entry['cex'] = { enabled: true };
    else {
      const clevis: IgnObject = {};
      const tangs = tang(luks['tang'], origins, ['boot_device', 'luks', 'tang']);
      if (tangs) clevis['tang'] = tangs;
      if (luks['threshold'] !== undefined) clevis['threshold'] = luks['threshold'];
      if (luks['tpm2'] !== undefined) clevis['tpm2'] = luks['tpm2'];
      origins.set(clevis, ['boot_device', 'luks']);
      entry['clevis'] = clevis;
    }
    origins.set(entry, ['boot_device', 'luks']);
    storage['luks'] = [entry];
  }
  const root: IgnObject = { device: wantLuks ? '/dev/mapper/root' : '/dev/md/md-root', format: 'xfs', label: 'root', wipeFilesystem: true };
  origins.set(root, ['boot_device']);
  filesystems.push(root);
  storage['filesystems'] = filesystems;
  origins.set(storage, ['boot_device']);
  return { storage };
}

const RESERVED_LABELS: Readonly<Record<string, number>> = { 'BIOS-BOOT': 1, 'PowerPC-PReP-boot': 1, 'EFI-SYSTEM': 2, boot: 3, root: 4 };

/** Partitions that will be created anew because they use a reserved label with the wrong number. */
export function wrongPartitionNumbers(config: IgnObject): Path[] {
  const found: Path[] = [];
  const disks = ((config['storage'] as IgnObject | undefined)?.['disks'] as IgnObject[] | undefined) ?? [];
  disks.forEach((disk, i) => {
    if (disk['wipeTable'] === true) return;
    ((disk['partitions'] as IgnObject[] | undefined) ?? []).forEach((part, j) => {
      const label = part['label'];
      const want = typeof label === 'string' ? RESERVED_LABELS[label] : undefined;
      if (want !== undefined && (part['number'] ?? 0) !== want) found.push(['storage', 'disks', i, 'partitions', j, 'label']);
    });
  });
  return found;
}

/** grub.users: a /boot filesystem and a user.cfg appended with the superusers and their hashes. */
export function grubConfig(grub: O | undefined, origins: Origins): IgnObject | undefined {
  const users = (grub?.['users'] as O[] | undefined) ?? [];
  if (users.length === 0) return undefined;
  const names = users.map((u) => text(u['name']));
  const commands = users.map((u) => `password_pbkdf2 ${text(u['name'])} ${text(u['password_hash'])}`);
  const userCfg = `# Generated by Butane\n\nset superusers="${names.join(' ')}"\n${commands.join('\n')}\n`;
  const url = makeDataUrl(Buffer.from(userCfg, 'utf8'), undefined);
  const file: IgnObject = { path: '/boot/grub2/user.cfg', append: [{ compression: url.compression, source: url.source }] };
  const fs: IgnObject = { device: '/dev/disk/by-label/boot', format: 'ext4', path: '/boot' };
  const storage: IgnObject = { files: [file], filesystems: [fs] };
  for (const o of [file, fs, storage]) origins.set(o, ['grub', 'users']);
  return { storage };
}
