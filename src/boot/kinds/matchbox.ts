/**
 * matchbox's `boot` profiles: `kernel K ARGS`, one `initrd` line per entry, `boot`, as matchbox
 * renders them. Paths such as `/assets/...` stay relative: iPXE resolves them against the
 * script's own URL.
 */
import { assetsBase, type KindRenderer, type RenderContext } from '../render-context.ts';

/** Local `/assets/` paths go through the boot's tracked prefix; other URLs stay as written. */
function tracked(ctx: RenderContext, reference: string): string {
  return ctx.bootId ? reference.replace(/(^|\s)\/assets\//, (_, lead: string) => `${lead}${assetsBase(ctx)}/`) : reference;
}

export const renderMatchboxBoot: KindRenderer = (profile, _group, ctx) => {
  const spec = profile.boot;
  if (!spec) throw new Error(`profile ${profile.id} is not a boot profile`);
  const kernel = tracked(ctx, spec.kernel);
  return Promise.resolve({
    plan: {
      comments: [`kernel and initrds from profile ${profile.id}`],
      preamble: [],
      steps: [
        { download: ['kernel', kernel, ...spec.args].join(' '), what: kernel, role: 'kernel' as const },
        ...spec.initrd.map((entry) => {
          const initrd = tracked(ctx, entry);
          return { download: `initrd ${initrd}`, what: initrd.split(/\s+/).at(-1) ?? initrd, role: 'initrd' as const };
        }),
      ],
    },
  });
};
