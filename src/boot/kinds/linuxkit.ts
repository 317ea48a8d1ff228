/**
 * LinuxKit: `linuxkit build` output (NAME-kernel, NAME-initrd.img, NAME-cmdline) in the assets
 * directory (`linuxkit/`, or by hand at its root), booted with the script shapes of
 * `linuxkit run packet`:
 *
 * x86_64 (BIOS):  dhcp / set base-url / set kernel-params ip=dhcp nomodeset ro serial CONSOLE CMDLINE /
 *                 kernel ${base-url}/NAME-kernel ${kernel-params} / initrd ${base-url}/NAME-initrd.img / boot
 * arm64 (EFI):    dhcp / set base-url / initrd --name initrd ${base-url}/NAME-initrd.img /
 *                 set kernel-params ip=dhcp nomodeset ro CMDLINE /
 *                 kernel ${base-url}/NAME-kernel initrd=initrd root=/dev/ram0 ${kernel-params} / boot
 *
 * x86_64 under EFI gets the EFI form too (with the serial console): EFI kernels find an initrd
 * only by name, and a plain `initrd URL` boots without it.
 */
import type { Profile } from '../catalogue.ts';
import { assetsBase, assetUrl, type KindRenderer } from '../render-context.ts';
import type { BootStep } from '../script.ts';

const MAX_CMDLINE = 4096;

/** Reads NAME-cmdline as one line: line breaks would start new iPXE commands. */
async function readCmdline(ctx: Parameters<KindRenderer>[2], relativePath: string): Promise<string> {
  const text = await ctx.assets.readText(relativePath, MAX_CMDLINE);
  return (text ?? '').split(/[\r\n\u2028\u2029\u0085]+/).map((s) => s.trim()).filter(Boolean).join(' ');
}

function consoleFor(preset: string, cmdline: string): string | undefined {
  const tty = preset === 'packet' ? 'ttyS1' : 'ttyS0';
  return cmdline.includes(`console=${tty}`) ? undefined : `console=${tty},115200`;
}

/** The directory `linuxkit push` and `bootdepot push linuxkit` write to, and the default `dir`. */
export const LINUXKIT_DIR = 'linuxkit';

/** A set's files in one directory of the assets directory (`''`: its root). */
function setPaths(dir: string, name: string) {
  const prefix = dir === '' ? name : `${dir}/${name}`;
  return { kernel: `${prefix}-kernel`, initrd: `${prefix}-initrd.img`, cmdline: `${prefix}-cmdline` };
}

/**
 * Where a set is: its profile's `dir`; for the default `linuxkit/`, a set copied by hand to the
 * assets root (as `linuxkit run` and an nginx root hold them) is found too. The first directory
 * with both kernel and initrd wins, so `linuxkit/` goes first, and a set never mixes files of
 * two directories. Otherwise the files missing from `dir`.
 */
async function findSet(ctx: Parameters<KindRenderer>[2], dir: string, name: string): Promise<{ dir: string } | { missing: string[] }> {
  const dirs = dir === LINUXKIT_DIR ? [LINUXKIT_DIR, ''] : [dir];
  let missing: string[] = [];
  for (const candidate of dirs) {
    const paths = setPaths(candidate, name);
    const [kernel, initrd] = await Promise.all([ctx.assets.file(paths.kernel), ctx.assets.file(paths.initrd)]);
    if (kernel && initrd) return { dir: candidate };
    if (candidate === dirs[0]) missing = [!kernel && paths.kernel, !initrd && paths.initrd].filter((p): p is string => typeof p === 'string');
  }
  return { missing };
}

export const renderLinuxKit: KindRenderer = async (profile: Profile, _group, ctx) => {
  const spec = profile.linuxkit;
  if (!spec) throw new Error(`profile ${profile.id} is not a linuxkit profile`);
  const found = await findSet(ctx, spec.dir, spec.name);
  if ('missing' in found) {
    const elsewhere = spec.dir === LINUXKIT_DIR ? ' (nor at its root)' : '';
    return { wait: `profile ${profile.id}: ${found.missing.join(' and ')} missing from the assets directory${elsewhere}` };
  }
  const paths = setPaths(found.dir, spec.name);

  const cmdline = [await readCmdline(ctx, paths.cmdline), ...(profile.args ?? [])].filter(Boolean).join(' ');
  const baseUrl = found.dir === '' ? assetsBase(ctx) : assetUrl(ctx, found.dir);
  const preset = profile.preset ?? ctx.boot.preset;
  const arch = ctx.device.identity.arch ?? 'x86_64';
  const efi = arch === 'arm64' || ctx.device.identity.platform === 'efi';
  const kernelUrl = `${baseUrl}/${spec.name}-kernel`;
  const initrdUrl = `${baseUrl}/${spec.name}-initrd.img`;
  const join = (...parts: (string | undefined)[]) => parts.filter((p) => p !== undefined && p !== '').join(' ');

  const words = (text: string) => text.split(/\s+/).filter(Boolean);
  let steps: BootStep[];
  let args: string[];
  if (arch === 'arm64') {
    args = ['root=/dev/ram0', ...words(join('ip=dhcp nomodeset ro', cmdline))];
    steps = [
      { download: `initrd --name initrd \${base-url}/${spec.name}-initrd.img`, what: initrdUrl, role: 'initrd' },
      { line: join('set kernel-params ip=dhcp nomodeset ro', cmdline) },
      { download: `kernel \${base-url}/${spec.name}-kernel initrd=initrd root=/dev/ram0 \${kernel-params}`, what: kernelUrl, role: 'kernel' },
    ];
  } else {
    const params = { line: join('set kernel-params ip=dhcp nomodeset ro serial', consoleFor(preset, cmdline), cmdline) };
    args = words(join('ip=dhcp nomodeset ro serial', consoleFor(preset, cmdline), cmdline));
    steps = efi
      ? [
          { download: `initrd --name initrd \${base-url}/${spec.name}-initrd.img`, what: initrdUrl, role: 'initrd' },
          params,
          { download: `kernel \${base-url}/${spec.name}-kernel initrd=initrd \${kernel-params}`, what: kernelUrl, role: 'kernel' },
        ]
      : [
          params,
          { download: `kernel \${base-url}/${spec.name}-kernel \${kernel-params}`, what: kernelUrl, role: 'kernel' },
          { download: `initrd \${base-url}/${spec.name}-initrd.img`, what: initrdUrl, role: 'initrd' },
        ];
  }
  return {
    plan: {
      comments: [`LinuxKit ${spec.name} (${arch}${efi ? ', EFI' : ''}, preset ${preset})`],
      preamble: ['dhcp', `set base-url ${baseUrl}`],
      steps,
      image: { kernel: kernelUrl, args, initrds: [initrdUrl] },
    },
  };
};
