/**
 * matchbox's `boot` profiles: `kernel K ARGS`, one `initrd` line per entry, `boot`, as matchbox
 * renders them. Paths such as `/assets/...` stay relative: iPXE resolves them against the
 * script's own URL.
 */
import type { KindRenderer } from '../render-context.ts';

export const renderMatchboxBoot: KindRenderer = (profile) => {
  const spec = profile.boot;
  if (!spec) throw new Error(`profile ${profile.id} is not a boot profile`);
  return Promise.resolve({
    plan: {
      comments: [`kernel and initrds from profile ${profile.id}`],
      preamble: [],
      steps: [
        { download: ['kernel', spec.kernel, ...spec.args].join(' '), what: spec.kernel },
        ...spec.initrd.map((initrd) => ({ download: `initrd ${initrd}`, what: initrd })),
      ],
    },
  });
};
