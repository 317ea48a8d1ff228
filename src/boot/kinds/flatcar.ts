/**
 * Flatcar Container Linux PXE images, booted the way Flatcar's own Packet script did:
 *   kernel BASE/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz ARGS
 *   initrd BASE/flatcar_production_pxe_image.cpio.gz
 *   boot
 * `initrd=NAME` matches the name iPXE gives the initrd (its URL's basename), which is what EFI
 * kernels need to find it.
 */
import type { BuildArch } from '../../common/identity.ts';
import { flatcarMirrorBaseUrl, flatcarMirrorName, resolveFlatcarVersion } from '../../mirror/flatcar.ts';
import { assetUrl, ignitionUrl, type KindRenderer } from '../render-context.ts';

/** Longest a script answer waits on the upstream to resolve `current`. */
const RESOLVE_BUDGET_MS = 2000;

export const FLATCAR_KERNEL = 'flatcar_production_pxe.vmlinuz';
export const FLATCAR_INITRD = 'flatcar_production_pxe_image.cpio.gz';

/**
 * iPXE reports its own build, not the CPU: BIOS ROMs and undionly.kpxe are usually 32-bit
 * (i386) builds running on 64-bit machines. Flatcar has no 32-bit image, so i386 means amd64.
 */
const FLATCAR_ARCH: Partial<Record<BuildArch, 'amd64' | 'arm64'>> = { x86_64: 'amd64', i386: 'amd64', arm64: 'arm64' };

/** Kernel console arguments per preset and arch. */
const CONSOLES: Record<string, Record<'amd64' | 'arm64', string[]>> = {
  packet: { amd64: ['console=ttyS1,115200n8'], arm64: ['console=ttyAMA0,115200'] },
  generic: { amd64: ['console=tty0', 'console=ttyS0,115200n8'], arm64: ['console=ttyAMA0,115200'] },
};

/**
 * The release server over plain http, as Flatcar's own PXE docs link it: iPXE builds without
 * TLS (Debian's BIOS ROM, many vendor firmwares) cannot fetch https:// at all ("Operation not
 * supported"). Integrity comes from the mirror's digest checks, which `source: mirror` has.
 */
export function flatcarUpstreamUrl(channel: string, arch: string, version: string): string {
  return `http://${channel}.release.flatcar-linux.net/${arch}-usr/${version}`;
}

export const renderFlatcar: KindRenderer = async (profile, _group, ctx) => {
  const spec = profile.flatcar;
  if (!spec) throw new Error(`profile ${profile.id} is not a flatcar profile`);
  const deviceArch = ctx.device.identity.arch ?? 'x86_64';
  const arch = spec.arch === 'auto' ? FLATCAR_ARCH[deviceArch] : spec.arch;
  if (!arch) return { wait: `profile ${profile.id}: Flatcar has no image for iPXE arch ${deviceArch}` };

  let base: string;
  const notes: string[] = [];
  if (spec.source === 'mirror') {
    if (!ctx.mirror) return { wait: `profile ${profile.id}: the mirror is off` };
    const name = flatcarMirrorName(spec.channel);
    let version = spec.version;
    if (ctx.resolveFlatcarCurrent !== false) {
      try {
        // One release per boot: kernel and initrd never come from two releases. A slow or dead
        // upstream never holds a script up for longer than the budget: the last known release
        // answers then (with a note), and with none known the machine waits.
        const resolved = await resolveFlatcarVersion(ctx.mirror, name, arch, spec.version, { budgetMs: RESOLVE_BUDGET_MS });
        version = resolved.version;
        if (resolved.note) notes.push(resolved.note);
      } catch (error) {
        return { wait: `profile ${profile.id}: ${(error as Error).message}` };
      }
    }
    // A tracked boot's downloads go through /b/<boot id>/ like its assets.
    base = flatcarMirrorBaseUrl(ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}` : ctx.baseUrl, name, arch, version);
  } else if (spec.source === 'upstream') {
    base = flatcarUpstreamUrl(spec.channel, arch, spec.version);
  } else if (spec.source === 'local') {
    const dir = `flatcar/${spec.channel}/${arch}/${spec.version}`;
    const [kernel, initrd] = await Promise.all([ctx.assets.file(`${dir}/${FLATCAR_KERNEL}`), ctx.assets.file(`${dir}/${FLATCAR_INITRD}`)]);
    if (!kernel || !initrd) return { wait: `profile ${profile.id}: Flatcar images missing from assets/${dir}/` };
    base = assetUrl(ctx, dir);
  } else {
    base = spec.source.replace(/\/+$/, '');
  }

  const preset = profile.preset ?? ctx.boot.preset;
  // renderProfile has already made the machine wait if the Ignition config cannot be served.
  const hasIgnition = profile.ignition_id !== undefined;
  const args = [
    `initrd=${FLATCAR_INITRD}`,
    'flatcar.first_boot=1',
    ...(hasIgnition ? [`ignition.config.url=${ignitionUrl(ctx)}`] : []),
    ...(preset === 'packet' ? ['flatcar.oem.id=packet'] : []),
    ...(CONSOLES[preset]?.[arch] ?? []),
    ...(spec.autologin ? ['flatcar.autologin'] : []),
    ...(profile.args ?? []),
  ];
  const kernelUrl = `${base}/${FLATCAR_KERNEL}`;
  const initrdUrl = `${base}/${FLATCAR_INITRD}`;
  return {
    ...(notes.length > 0 ? { notes } : {}),
    plan: {
      comments: [`Flatcar ${spec.channel} ${spec.version} ${arch} (preset ${preset})`],
      preamble: [],
      steps: [
        { download: `kernel ${kernelUrl} ${args.join(' ')}`, what: kernelUrl, role: 'kernel' },
        { download: `initrd ${initrdUrl}`, what: initrdUrl, role: 'initrd' },
      ],
      image: { kernel: kernelUrl, args: args.filter((arg) => arg !== `initrd=${FLATCAR_INITRD}`), initrds: [initrdUrl] },
    },
  };
};
