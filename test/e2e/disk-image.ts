/**
 * A disk image for `sanboot` over HTTP: 16 MiB, almost all of it a hole, with a hand-assembled
 * boot sector in sector 0 and a message in the last sector. The boot sector (16-bit real mode,
 * loaded at 0000:7C00 with the BIOS drive number in DL) prints a marker on COM1, reads the last
 * sector through INT 13h's extended read (which iPXE serves with an HTTP Range request) and
 * prints what it holds, then powers the machine off (ACPI, PIIX4 PM at 0x600 as SeaBIOS sets
 * it up) or halts.
 *
 * 16 MiB because iPXE's INT 13 emulation assumes 255 heads x 63 sectors when the disk has no
 * partition table: the disk must hold a whole cylinder (about 8 MiB) at least.
 *
 * Cached beside the boot images in test/e2e/.images/disk-KEY/, built in a temp directory and
 * renamed into place so that concurrent first builds never see a half-written image.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { IMAGES_DIR } from './images.ts';

export const SECTOR = 512;
export const DISK_SECTORS = 32 * 1024;
export const DISK_BYTES = DISK_SECTORS * SECTOR;
/** The sector the boot sector reads: the last one, as far from the first as the image goes. */
export const FAR_LBA = DISK_SECTORS - 1;

export const DISK_MARKERS = {
  bootSector: 'BOOTDEPOT-E2E: sanboot boot sector running',
  farSector: `BOOTDEPOT-E2E: sanboot read LBA ${FAR_LBA}`,
  readFailed: 'BOOTDEPOT-E2E: failed: INT 13h extended read',
  done: 'BOOTDEPOT-E2E: sanboot done',
} as const;

type Item = number[] | { label: string } | { rel8: string } | { rel16: string } | { abs16: string };

/**
 * A minimal two-pass assembler for hand-written machine code: byte runs, labels, and label
 * references as 8- or 16-bit relative displacements (jumps, calls) or 16-bit absolute addresses.
 */
export function assemble(items: readonly Item[], origin: number): Buffer {
  const sizeOf = (item: Item) => (Array.isArray(item) ? item.length : 'label' in item ? 0 : 'rel8' in item ? 1 : 2);
  const labels = new Map<string, number>();
  let at = origin;
  for (const item of items) {
    if (!Array.isArray(item) && 'label' in item) labels.set(item.label, at);
    at += sizeOf(item);
  }
  const out: number[] = [];
  at = origin;
  const target = (name: string) => {
    const address = labels.get(name);
    if (address === undefined) throw new Error(`undefined label ${name}`);
    return address;
  };
  for (const item of items) {
    const size = sizeOf(item);
    if (Array.isArray(item)) out.push(...item);
    else if ('rel8' in item) {
      const delta = target(item.rel8) - (at + 1);
      if (delta < -128 || delta > 127) throw new Error(`jump to ${item.rel8} out of rel8 range`);
      out.push(delta & 0xff);
    } else if ('rel16' in item) {
      const delta = (target(item.rel16) - (at + 2)) & 0xffff;
      out.push(delta & 0xff, delta >> 8);
    } else if ('abs16' in item) {
      const address = target(item.abs16);
      out.push(address & 0xff, address >> 8);
    }
    at += size;
  }
  return Buffer.from(out);
}

const text = (s: string) => [...Buffer.from(`${s}\r\n\0`, 'latin1')];
const u16 = (n: number) => [n & 0xff, (n >> 8) & 0xff];
const u64 = (n: number) => [...u16(n & 0xffff), ...u16(Math.floor(n / 0x10000) & 0xffff), 0, 0, 0, 0];

/** Where the far sector is read to: free conventional memory above the boot sector. */
const BUFFER = 0x8000;

/** The boot sector: 512 bytes ending in 55 AA, no partition table. */
export function bootSector(): Buffer {
  const code = assemble(
    [
      [0xfa], // cli
      [0x31, 0xc0], // xor ax, ax
      [0x8e, 0xd8], // mov ds, ax
      [0x8e, 0xc0], // mov es, ax
      [0x8e, 0xd0], // mov ss, ax
      [0xbc, ...u16(0x7c00)], // mov sp, 0x7c00
      [0xfb], // sti
      [0xfc], // cld
      [0x88, 0x16], { abs16: 'drive' }, // mov [drive], dl
      [0xba, ...u16(0x3fb)], // mov dx, 0x3fb (COM1 line control)
      [0xb0, 0x03], // mov al, 3 (8N1, divisor latch off)
      [0xee], // out dx, al
      [0xbe], { abs16: 'hello' }, // mov si, hello
      [0xe8], { rel16: 'print' }, // call print
      [0xb4, 0x42], // mov ah, 0x42 (extended read)
      [0x8a, 0x16], { abs16: 'drive' }, // mov dl, [drive]
      [0xbe], { abs16: 'dap' }, // mov si, dap
      [0xcd, 0x13], // int 0x13
      [0x72], { rel8: 'failed' }, // jc failed
      [0xc6, 0x06, ...u16(BUFFER + SECTOR - 1), 0x00], // mov byte [buffer+511], 0 (terminate, whatever the sector holds)
      [0xbe, ...u16(BUFFER)], // mov si, buffer
      [0xe8], { rel16: 'print' }, // call print
      [0xeb], { rel8: 'finish' }, // jmp finish
      { label: 'failed' },
      [0xbe], { abs16: 'readFailed' }, // mov si, readFailed
      [0xe8], { rel16: 'print' }, // call print
      { label: 'finish' },
      [0xbe], { abs16: 'done' }, // mov si, done
      [0xe8], { rel16: 'print' }, // call print
      [0xba, ...u16(0x604)], // mov dx, 0x604 (PIIX4 PM1a control)
      [0xb8, ...u16(0x2000)], // mov ax, 0x2000 (SLP_EN, S5)
      [0xef], // out dx, ax
      { label: 'halt' },
      [0xfa], // cli
      [0xf4], // hlt
      [0xeb], { rel8: 'halt' }, // jmp halt
      // print: writes the NUL-terminated string at DS:SI to COM1, waiting for the transmitter.
      { label: 'print' },
      [0xac], // lodsb
      [0x84, 0xc0], // test al, al
      [0x74], { rel8: 'printed' }, // jz printed
      [0x88, 0xc4], // mov ah, al
      [0xba, ...u16(0x3fd)], // mov dx, 0x3fd (line status)
      { label: 'wait' },
      [0xec], // in al, dx
      [0xa8, 0x20], // test al, 0x20 (transmitter holding register empty)
      [0x74], { rel8: 'wait' }, // jz wait
      [0x88, 0xe0], // mov al, ah
      [0xba, ...u16(0x3f8)], // mov dx, 0x3f8
      [0xee], // out dx, al
      [0xeb], { rel8: 'print' }, // jmp print
      { label: 'printed' },
      [0xc3], // ret
      { label: 'drive' },
      [0x80],
      // INT 13h AH=42h disk address packet: size, reserved, sector count, buffer offset:segment, LBA.
      { label: 'dap' },
      [0x10, 0x00, ...u16(1), ...u16(BUFFER), ...u16(0), ...u64(FAR_LBA)],
      { label: 'hello' },
      text(DISK_MARKERS.bootSector),
      { label: 'readFailed' },
      text(DISK_MARKERS.readFailed),
      { label: 'done' },
      text(DISK_MARKERS.done),
    ],
    0x7c00,
  );
  if (code.length > 446) throw new Error(`boot sector code is ${code.length} bytes; 446 fit before the partition table`);
  const sector = Buffer.alloc(SECTOR);
  code.copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** The last sector: the message the boot sector prints after reading it. */
export function farSector(): Buffer {
  const sector = Buffer.alloc(SECTOR);
  Buffer.from(`${DISK_MARKERS.farSector} (${DISK_BYTES - SECTOR} bytes in)\r\n`, 'latin1').copy(sector);
  return sector;
}

export interface DiskImage {
  path: string;
  key: string;
  bytes: number;
  built: boolean;
}

/** Builds the image, or finds it in the cache. */
export async function buildDiskImage(options: { cacheDir?: string } = {}): Promise<DiskImage> {
  const cacheDir = options.cacheDir ?? IMAGES_DIR;
  const boot = bootSector();
  const far = farSector();
  const key = createHash('sha256').update(boot).update(far).update(String(DISK_BYTES)).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir, `disk-${key}`);
  const file = path.join(dir, 'disk.img');
  const cached = await readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined);
  if (cached === key) return { path: file, key, bytes: DISK_BYTES, built: false };

  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, `.build-disk-${key}-`));
  try {
    const out = path.join(work, 'out');
    await mkdir(out);
    const handle = await open(path.join(out, 'disk.img'), 'w');
    try {
      await handle.write(boot, 0, SECTOR, 0);
      await handle.write(far, 0, SECTOR, FAR_LBA * SECTOR);
      await handle.truncate(DISK_BYTES);
    } finally {
      await handle.close();
    }
    // Written last: a directory with `key` in it is complete.
    const keyHandle = await open(path.join(out, 'key'), 'w');
    await keyHandle.writeFile(key);
    await keyHandle.close();
    try {
      await rename(out, dir);
    } catch (error) {
      // Another process renamed its build first: the same bytes.
      if ((await readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined)) !== key) throw error;
    }
    return { path: file, key, bytes: DISK_BYTES, built: true };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
