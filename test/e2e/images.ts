/**
 * Boot images for the end-to-end suite: a real Debian kernel and a small busybox initramfs
 * whose /init brings up virtio networking, reports Packet-style state to bootdepot and powers
 * the VM off. Built once and cached in test/e2e/.images/KEY/, where KEY hashes every input
 * (kernel package and version, the busybox binary, the init scripts, the module list), so a
 * changed input builds a new set and an unchanged one is reused.
 *
 * The kernel is extracted from Debian's package (`apt-get download` + `dpkg-deb -x`), never
 * installed. The package ships no modules.dep (depmod writes it on install), so module
 * dependencies are read from each module's own `.modinfo` section.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

/** Bump when the image layout changes in a way the hashed inputs do not show. */
const BUILDER_VERSION = 1;

export const IMAGES_DIR = path.join(import.meta.dirname, '.images');
export const BUSYBOX = '/bin/busybox';
/** The meta package whose dependency names the current kernel package. */
const KERNEL_META_PACKAGE = 'linux-image-amd64';
/** Modules the guest loads, dependencies first once resolved. virtio_pci is a module in Debian's kernel. */
const WANTED_MODULES = ['virtio_pci', 'virtio_net'] as const;

/** Markers /init prints on the serial console. */
export const MARKERS = {
  running: 'BOOTDEPOT-E2E: init running',
  network: 'BOOTDEPOT-E2E: network up',
  done: 'BOOTDEPOT-E2E: done',
  failed: 'BOOTDEPOT-E2E: failed',
} as const;

/** The guest's /init. Reads `bootdepot.url=` from the kernel command line. */
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

say() { echo "BOOTDEPOT-E2E: $*"; }
fail() { say "failed: $*"; sync; poweroff -f; sleep 30; }

say "init running (kernel $(uname -r))"
for module in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$module.ko" || say "insmod $module failed"
done

URL=
for arg in $(cat /proc/cmdline); do
  case "$arg" in bootdepot.url=*) URL="\${arg#bootdepot.url=}" ;; esac
done
[ -n "$URL" ] || fail "no bootdepot.url= on the kernel command line: $(cat /proc/cmdline)"

tries=0
while [ ! -e /sys/class/net/eth0 ]; do
  tries=$((tries + 1))
  [ "$tries" -le 100 ] || fail "no eth0 after 10 seconds"
  sleep 0.1
done
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 5 -T 2 || fail "udhcpc got no lease"
MAC=$(cat /sys/class/net/eth0/address)
say "network up: mac $MAC, $(ip -4 -o addr show dev eth0 | awk '{print $4}'), server $URL"

# Packet-style state report. The server may not have /events (404): that is reported, not fatal.
event() {
  body="{\\"state\\":\\"$1\\",\\"code\\":$2,\\"message\\":\\"$3\\"}"
  # busybox 1.35's wget -T crashes when the connection is refused: bound it with timeout instead.
  if out=$(timeout 20 wget -q -O- --post-data "$body" --header 'Content-Type: application/json' "$URL/events?mac=$MAC" 2>&1); then
    say "event $1 sent: $out"
  else
    say "event $1 not accepted: $out"
  fi
}
event running 1000 init
event succeeded 1000 done

say "done"
sync
poweroff -f
sleep 30
`;

/** udhcpc's hook script: busybox ships none. */
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/\${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      ip -4 route del default 2>/dev/null
      for r in $router; do ip -4 route add default via "$r" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
`;

/** The kernel package could not be fetched: apt has no access to Debian's archive here. */
export class AptUnavailableError extends Error {
  override readonly name = 'AptUnavailableError';
}

export interface BootImages {
  /** Cache entry holding `kernel`, `initrd.img` and `manifest.json`. */
  dir: string;
  kernel: string;
  initrd: string;
  key: string;
  kernelPackage: string;
  kernelPackageVersion: string;
  /** `uname -r` of the kernel. */
  kernelRelease: string;
  /** Modules in the initramfs, in load order. */
  modules: string[];
  /** False when the cache already held this set. */
  built: boolean;
  /** Time this call took (resolving, and building when not cached). */
  seconds: number;
}

interface Manifest {
  key: string;
  kernelPackage: string;
  kernelPackageVersion: string;
  kernelRelease: string;
  modules: string[];
  buildSeconds: number;
}

async function exists(file: string, mode = fsConstants.F_OK): Promise<boolean> {
  try {
    await access(file, mode);
    return true;
  } catch {
    return false;
  }
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (dir && (await exists(path.join(dir, command), fsConstants.X_OK))) return true;
  }
  return false;
}

async function apt(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run(args[0] ?? 'apt-cache', args.slice(1), { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } });
  return stdout;
}

/** The kernel package the meta package depends on right now, and its candidate version. */
async function resolveKernelPackage(): Promise<{ name: string; version: string }> {
  const depends = await apt(['apt-cache', 'depends', '--important', KERNEL_META_PACKAGE]);
  const name = /^\s*Depends:\s*(linux-image-[^\s]+)$/m.exec(depends)?.[1];
  if (!name) throw new Error(`apt-cache depends ${KERNEL_META_PACKAGE} names no kernel package:\n${depends}`);
  const show = await apt(['apt-cache', 'show', '--no-all-versions', name]);
  const version = /^Version:\s*(\S+)$/m.exec(show)?.[1];
  if (!version) throw new Error(`apt-cache show ${name} gives no version`);
  return { name, version };
}

/** Dynamic executables have a PT_INTERP program header; busybox must not (it runs alone in the guest). */
export function isStaticElf(buffer: Buffer): boolean {
  if (buffer.length < 64 || buffer.readUInt32BE(0) !== 0x7f454c46 || buffer[4] !== 2) return false;
  const phoff = Number(buffer.readBigUInt64LE(0x20));
  const phentsize = buffer.readUInt16LE(0x36);
  const phnum = buffer.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > buffer.length) return false;
    if (buffer.readUInt32LE(at) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** The key=value strings of an ELF64 kernel module's `.modinfo` section. */
export function readModinfo(buffer: Buffer): Map<string, string[]> {
  const info = new Map<string, string[]>();
  if (buffer.length < 64 || buffer.readUInt32BE(0) !== 0x7f454c46 || buffer[4] !== 2) throw new Error('not an ELF64 file');
  const shoff = Number(buffer.readBigUInt64LE(0x28));
  const shentsize = buffer.readUInt16LE(0x3a);
  const shnum = buffer.readUInt16LE(0x3c);
  const shstrndx = buffer.readUInt16LE(0x3e);
  const section = (index: number) => {
    const at = shoff + index * shentsize;
    return { name: buffer.readUInt32LE(at), offset: Number(buffer.readBigUInt64LE(at + 24)), size: Number(buffer.readBigUInt64LE(at + 32)) };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameStart = names.offset + s.name;
    const name = buffer.toString('latin1', nameStart, buffer.indexOf(0, nameStart));
    if (name !== '.modinfo') continue;
    for (const entry of buffer.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const key = entry.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), entry.slice(eq + 1)]);
    }
  }
  return info;
}

const moduleName = (file: string) => path.basename(file).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');

async function listModules(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    if (/\.ko\.(xz|gz|zst)$/.test(entry.name)) throw new Error(`${entry.name}: compressed modules are not supported; extend images.ts`);
    if (entry.name.endsWith('.ko')) found.set(moduleName(entry.name), path.join(entry.parentPath, entry.name));
  }
  return found;
}

/** The wanted modules and their dependencies, dependencies first; built-in ones left out. */
async function resolveModules(modulesDir: string, wanted: readonly string[]): Promise<{ name: string; file: string }[]> {
  const files = await listModules(path.join(modulesDir, 'kernel'));
  const builtin = new Set(
    (await readFile(path.join(modulesDir, 'modules.builtin'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map(moduleName),
  );
  const order: { name: string; file: string }[] = [];
  const visiting = new Set<string>();
  const done = new Set<string>();
  async function visit(name: string, from: string): Promise<void> {
    if (done.has(name) || builtin.has(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle at ${name}`);
    const file = files.get(name);
    if (!file) throw new Error(`module ${name} (needed by ${from}) is neither in the package nor built in`);
    visiting.add(name);
    const depends = (readModinfo(await readFile(file)).get('depends') ?? []).flatMap((d) => d.split(',')).filter(Boolean);
    for (const dep of depends) await visit(dep.replace(/-/g, '_'), name);
    visiting.delete(name);
    done.add(name);
    order.push({ name, file });
  }
  for (const name of wanted) await visit(name, 'the e2e initramfs');
  return order;
}

export interface CpioEntry {
  path: string;
  /** Full mode including the file type bits (0o100755, 0o040755, 0o120777, 0o020600 ...). */
  mode: number;
  data?: Buffer;
  /** For device nodes. */
  rdev?: { major: number; minor: number };
}

/** A newc ("070701") cpio archive, as the kernel unpacks into its initramfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(Buffer.alloc(pad));
      size += pad;
    }
  };
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const all = [...entries, { path: 'TRAILER!!!', mode: 0 }];
  all.forEach((entry, index) => {
    const data = entry.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${entry.path.replace(/^\/+/, '')}\0`);
    const isDir = (entry.mode & 0o170000) === 0o040000;
    const fields = [
      entry.path === 'TRAILER!!!' ? 0 : index + 1, // ino
      entry.mode,
      0, // uid
      0, // gid
      isDir ? 2 : 1, // nlink
      0, // mtime: fixed, so the archive depends on its content only
      data.length,
      0, // devmajor
      0, // devminor
      entry.rdev?.major ?? 0,
      entry.rdev?.minor ?? 0,
      name.length,
      0, // check
    ];
    push(Buffer.concat([Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii'), name]));
    if (data.length > 0) push(data);
  });
  return Buffer.concat(parts);
}

/** What is missing for building the images here, as sentences; empty when all is there. */
export async function missingImagePrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  const busybox = await readFile(BUSYBOX).catch(() => undefined);
  if (!busybox) missing.push(`${BUSYBOX} is missing: apt-get install busybox-static`);
  else if (!isStaticElf(busybox)) missing.push(`${BUSYBOX} is dynamically linked: apt-get install busybox-static`);
  for (const command of ['apt-get', 'apt-cache', 'dpkg-deb']) {
    if (!(await onPath(command))) missing.push(`${command} is not on PATH (the kernel comes from Debian's ${KERNEL_META_PACKAGE})`);
  }
  if (missing.length === 0) {
    try {
      await resolveKernelPackage();
    } catch (error) {
      missing.push(`apt cannot resolve ${KERNEL_META_PACKAGE} (run apt-get update): ${(error as Error).message.split('\n')[0] ?? ''}`);
    }
  }
  return missing;
}

/** Builds the kernel and initramfs, or finds them in the cache. */
export async function buildImages(options: { cacheDir?: string; log?: (message: string) => void } = {}): Promise<BootImages> {
  const started = performance.now();
  const cacheDir = options.cacheDir ?? IMAGES_DIR;
  const log = options.log ?? (() => {});
  const kernelPackage = await resolveKernelPackage();
  const busybox = await readFile(BUSYBOX);
  if (!isStaticElf(busybox)) throw new Error(`${BUSYBOX} is dynamically linked: apt-get install busybox-static`);

  const key = createHash('sha256')
    .update(
      JSON.stringify({
        builder: BUILDER_VERSION,
        kernel: kernelPackage,
        busybox: createHash('sha256').update(busybox).digest('hex'),
        init: INIT_SCRIPT,
        udhcpc: UDHCPC_SCRIPT,
        modules: WANTED_MODULES,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(cacheDir, key);
  const result = (manifest: Manifest, built: boolean): BootImages => ({
    dir,
    kernel: path.join(dir, 'kernel'),
    initrd: path.join(dir, 'initrd.img'),
    key,
    kernelPackage: manifest.kernelPackage,
    kernelPackageVersion: manifest.kernelPackageVersion,
    kernelRelease: manifest.kernelRelease,
    modules: manifest.modules,
    built,
    seconds: (performance.now() - started) / 1000,
  });

  const cached = await readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
  if (cached) {
    log(`images: using cached set ${dir}`);
    return result(JSON.parse(cached) as Manifest, false);
  }

  log(`images: building ${key} from ${kernelPackage.name} ${kernelPackage.version} and ${BUSYBOX}`);
  await mkdir(cacheDir, { recursive: true });
  await removeStaleBuilds(cacheDir);
  // Build beside the final place and rename: parallel builds of one key cannot see half a set.
  const work = await mkdtemp(path.join(cacheDir, `.build-${key}-`));
  try {
    const download = path.join(work, 'download');
    await mkdir(download, { mode: 0o777 });
    try {
      await apt(['apt-get', 'download', '-q', `${kernelPackage.name}=${kernelPackage.version}`], download);
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new AptUnavailableError(`apt-get download ${kernelPackage.name}=${kernelPackage.version} failed (no access to Debian's archive? stale lists: run apt-get update): ${stderr.trim() || (error as Error).message}`);
    }
    const deb = (await readdir(download)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${kernelPackage.name} left no .deb`);
    const root = path.join(work, 'root');
    await run('dpkg-deb', ['-x', path.join(download, deb), root]);
    const vmlinuz = (await readdir(path.join(root, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${deb} has no /boot/vmlinuz-*`);
    const kernelRelease = vmlinuz.slice('vmlinuz-'.length);
    const modulesDir = path.join(root, 'lib', 'modules', kernelRelease);
    const modules = await resolveModules(modulesDir, WANTED_MODULES);

    const entries: CpioEntry[] = [];
    for (const d of ['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'root', 'run', 'sbin', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin']) {
      entries.push({ path: d, mode: 0o040755 });
    }
    // The kernel opens /dev/console for init before init can mount devtmpfs.
    entries.push({ path: 'dev/console', mode: 0o020600, rdev: { major: 5, minor: 1 } });
    entries.push({ path: 'bin/busybox', mode: 0o100755, data: busybox });
    entries.push({ path: 'bin/sh', mode: 0o120777, data: Buffer.from('busybox') });
    entries.push({ path: 'init', mode: 0o100755, data: Buffer.from(INIT_SCRIPT) });
    entries.push({ path: 'etc/udhcpc.script', mode: 0o100755, data: Buffer.from(UDHCPC_SCRIPT) });
    for (const m of modules) entries.push({ path: `lib/modules/${m.name}.ko`, mode: 0o100644, data: await readFile(m.file) });
    entries.push({ path: 'lib/modules/load-order', mode: 0o100644, data: Buffer.from(`${modules.map((m) => m.name).join('\n')}\n`) });

    const out = path.join(work, 'out');
    await mkdir(out);
    await copyFile(path.join(root, 'boot', vmlinuz), path.join(out, 'kernel'));
    await writeFile(path.join(out, 'initrd.img'), gzipSync(cpioNewc(entries), { level: 9 }));
    const manifest: Manifest = {
      key,
      kernelPackage: kernelPackage.name,
      kernelPackageVersion: kernelPackage.version,
      kernelRelease,
      modules: modules.map((m) => m.name),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
    };
    await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      await rename(out, dir);
    } catch (error) {
      // Another process finished the same key first: its set is as good as ours.
      if (!(await exists(path.join(dir, 'manifest.json')))) throw error;
    }
    log(`images: built ${dir} in ${manifest.buildSeconds} s (modules: ${manifest.modules.join(', ')})`);
    return result(manifest, true);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Build directories left by a process that died mid-build (an hour old: no build takes that long). */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (!name.startsWith('.build-')) continue;
    const dir = path.join(cacheDir, name);
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 3600_000) await rm(dir, { recursive: true, force: true });
  }
}

export interface LinuxKitSetOptions {
  /** Set name: NAME-kernel, NAME-initrd.img, NAME-cmdline. */
  name?: string;
  /** Directory under the assets directory; `linuxkit` as the profile default. */
  dir?: string;
  /** Where the guest reaches bootdepot, e.g. `http://10.0.2.2:PORT`. */
  bootdepotUrl: string;
  /** More kernel arguments for NAME-cmdline. */
  args?: string[];
}

/**
 * Lays the images out as a LinuxKit set in an assets directory. The cmdline names ttyS0 itself
 * (so the generic preset adds no second console) and reboots at once on a panic, which under
 * `-no-reboot` ends the VM instead of leaving it hung.
 */
export async function layOutLinuxKitSet(images: BootImages, assetsDir: string, options: LinuxKitSetOptions): Promise<{ files: string[] }> {
  const name = options.name ?? 'e2e';
  const dir = path.join(assetsDir, options.dir ?? 'linuxkit');
  await mkdir(dir, { recursive: true });
  const kernel = path.join(dir, `${name}-kernel`);
  const initrd = path.join(dir, `${name}-initrd.img`);
  const cmdline = path.join(dir, `${name}-cmdline`);
  await copyFile(images.kernel, kernel);
  await copyFile(images.initrd, initrd);
  await writeFile(cmdline, `${['console=ttyS0', 'panic=-1', `bootdepot.url=${options.bootdepotUrl}`, ...(options.args ?? [])].join(' ')}\n`);
  return { files: [kernel, initrd, cmdline] };
}
