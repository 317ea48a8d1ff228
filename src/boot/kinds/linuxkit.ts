/**
 * LinuxKit: `linuxkit build` output (NAME-kernel, NAME-initrd.img, NAME-cmdline) in the assets
 * directory, booted with the script shapes of `linuxkit run packet`:
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
import { assetUrl, type KindRenderer } from '../render-context.ts';
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

export const renderLinuxKit: KindRenderer = async (profile: Profile, _group, ctx) => {
  const spec = profile.linuxkit;
  if (!spec) throw new Error(`profile ${profile.id} is not a linuxkit profile`);
  const prefix = `${spec.dir}/${spec.name}`;
  const [kernel, initrd] = await Promise.all([ctx.assets.file(`${prefix}-kernel`), ctx.assets.file(`${prefix}-initrd.img`)]);
  const missing = [!kernel && `${prefix}-kernel`, !initrd && `${prefix}-initrd.img`].filter(Boolean);
  if (missing.length > 0) return { wait: `profile ${profile.id}: ${missing.join(' and ')} missing from the assets directory` };

  const cmdline = [await readCmdline(ctx, `${prefix}-cmdline`), ...(profile.args ?? [])].filter(Boolean).join(' ');
  const baseUrl = assetUrl(ctx, spec.dir);
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
