/**
 * matchbox's `boot` profiles: `kernel K ARGS`, one `initrd` line per entry, `boot`, as matchbox
 * renders them. Paths such as `/assets/...` stay relative when the boot is not tracked: iPXE
 * resolves them against the script's own URL.
 *
 * Under UEFI each initrd is named (`initrd --name NAME URL`) and the kernel line gets
 * `initrd=NAME` for each: iPXE builds without LoadFile2 initrd support (Debian's, many vendor
 * firmwares) hand an EFI kernel only the initrds it names, and a plain `initrd URL` boots
 * without its initramfs. A profile that names its initrds itself is left as written.
 */
import type { Profile } from '../catalogue.ts';
import { assetsBase, type KindRenderer, type RenderContext } from '../render-context.ts';
import type { BootStep } from '../script.ts';

/** Local `/assets/` and `/mirror/` paths go through the boot's tracked prefix; other URLs stay as written. */
function tracked(ctx: RenderContext, reference: string): string {
  if (!ctx.bootId) return reference;
  const bootBase = `${ctx.baseUrl}/b/${ctx.bootId}`;
  return reference
    .replace(/(^|\s)\/assets\//, (_, lead: string) => `${lead}${assetsBase(ctx)}/`)
    .replace(/(^|\s)\/mirror\//, (_, lead: string) => `${lead}${bootBase}/mirror/`);
}

/** The URL of a `kernel`/`initrd` entry: its last token (options such as `--name X` come first). */
function urlOf(entry: string): string {
  return entry.trim().split(/\s+/).at(-1) ?? entry;
}

/** The name an entry gives itself with `--name NAME` / `-n NAME`, if any. */
function givenName(entry: string): string | undefined {
  const tokens = entry.trim().split(/\s+/);
  const at = tokens.findIndex((token) => token === '--name' || token === '-n');
  if (at >= 0) return tokens[at + 1];
  return tokens.find((token) => token.startsWith('--name='))?.slice('--name='.length);
}

/** A name for an initrd from its URL's last path segment, safe as one iPXE token. */
function nameFromUrl(url: string): string {
  const pathPart = url.replace(/[?#].*$/, '');
  const base = pathPart.slice(pathPart.lastIndexOf('/') + 1);
  const cleaned = base.replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '' ? 'initrd' : cleaned;
}

/** Local asset paths (`/assets/...`) the profile names that are not in the assets directory. */
async function missingAssets(profile: Profile, ctx: RenderContext): Promise<string[]> {
  const spec = profile.boot;
  if (!spec) return [];
  const paths = [...(spec.kernel !== undefined ? [spec.kernel] : []), ...spec.initrd]
    .map(urlOf)
    .filter((url) => url.startsWith('/assets/'))
    .map((url) => {
      const relative = url.slice('/assets/'.length).replace(/[?#].*$/, '');
      try {
        return decodeURIComponent(relative);
      } catch {
        return relative;
      }
    });
  const found = await Promise.all(paths.map((relative) => ctx.assets.file(relative)));
  return paths.filter((_, index) => !found[index]);
}

export const renderMatchboxBoot: KindRenderer = async (profile, _group, ctx) => {
  const spec = profile.boot;
  if (!spec) throw new Error(`profile ${profile.id} is not a boot profile`);
  // matchbox would answer `kernel` with nothing after it, which iPXE refuses: say so instead.
  if (spec.kernel === undefined) return { wait: `profile ${profile.id} has no kernel (a profile for its configs only, such as Ignition): nothing to boot over the network` };
  const missing = await missingAssets(profile, ctx);
  if (missing.length > 0) return { wait: `profile ${profile.id}: ${missing.map((p) => `assets/${p}`).join(' and ')} missing from the assets directory` };

  const kernel = tracked(ctx, spec.kernel);
  const efi = ctx.device.identity.platform === 'efi';
  const namesItself = spec.args.some((arg) => arg.startsWith('initrd=')) || spec.initrd.some((entry) => givenName(entry) !== undefined);
  const nameInitrds = efi && !namesItself && spec.initrd.length > 0;

  const used = new Set<string>();
  const initrds = spec.initrd.map((entry) => {
    const reference = tracked(ctx, entry);
    if (!nameInitrds) return { line: `initrd ${reference}`, url: urlOf(reference), name: undefined };
    let name = nameFromUrl(urlOf(reference));
    for (let n = 2; used.has(name); n++) name = `${nameFromUrl(urlOf(reference))}-${n}`;
    used.add(name);
    return { line: `initrd --name ${name} ${reference}`, url: urlOf(reference), name };
  });
  const args = [...spec.args, ...initrds.flatMap((initrd) => (initrd.name ? [`initrd=${initrd.name}`] : []))];

  const kernelStep: BootStep = { download: ['kernel', kernel, ...args].join(' '), what: urlOf(kernel), role: 'kernel' };
  const initrdSteps: BootStep[] = initrds.map((initrd) => ({ download: initrd.line, what: initrd.url, role: 'initrd' }));
  return {
    plan: {
      comments: [`kernel and initrds from profile ${profile.id}${nameInitrds ? ' (EFI: initrds named)' : ''}`],
      preamble: [],
      steps: [kernelStep, ...initrdSteps],
      // GRUB gets the profile as matchbox writes it: its own arguments, each initrd's URL.
      image: { kernel: urlOf(kernel), args: [...spec.args], initrds: initrds.map((initrd) => initrd.url) },
    },
  };
};
