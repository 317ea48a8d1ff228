/**
 * Rendering a device's script: decision, then the profile kind, then the text, all into a
 * string before anything is sent. Anything that stops a machine from booting right now (no
 * group, missing images, a template error) becomes a wait script that says why on the
 * machine's screen and asks again later, so fixing the data is enough to get it going.
 */
import type { Group, Profile, ProfileKind } from './catalogue.ts';
import { decideBoot, type BootDecision } from './decision.ts';
import { renderFlatcar } from './kinds/flatcar.ts';
import { renderLinuxKit } from './kinds/linuxkit.ts';
import { renderMatchboxBoot } from './kinds/matchbox.ts';
import { renderTemplate } from './kinds/template.ts';
import { askAgainUrl, type KindRenderer, type RenderContext } from './render-context.ts';
import { renderBootPlan, renderWaitScript } from './script.ts';

const KINDS: Record<ProfileKind, KindRenderer> = {
  boot: renderMatchboxBoot,
  template: renderTemplate,
  linuxkit: renderLinuxKit,
  flatcar: renderFlatcar,
};

export type ScriptOutcome = 'boot' | 'wait' | 'notFound';

export interface RenderedScript {
  outcome: ScriptOutcome;
  /** The script, or for `notFound` a plain-text explanation. */
  body: string;
  decision: BootDecision;
  /** Why the machine waits, when it does; also in the script's `echo`. */
  problem?: string;
}

function deviceLabel(ctx: RenderContext): string {
  return ctx.device.identity.mac ?? ctx.device.identity.uuid ?? 'this machine';
}

/** Renders one profile for a device (also used directly by `/linuxkit/NAME.ipxe`). */
export async function renderProfile(profile: Profile, group: Group | undefined, reason: string, ctx: RenderContext): Promise<{ outcome: 'boot' | 'wait'; body: string; problem?: string }> {
  const comments = [`bootdepot: profile ${profile.id} for ${deviceLabel(ctx)}: ${reason}`];
  const wait = (problem: string) => ({
    outcome: 'wait' as const,
    body: renderWaitScript(comments, `${problem} (${deviceLabel(ctx)})`, ctx.boot.pollInterval, askAgainUrl(ctx)),
    problem,
  });
  let result;
  try {
    result = await KINDS[profile.kind](profile, group, ctx);
  } catch (error) {
    return wait(`profile ${profile.id} failed to render: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  if ('wait' in result) return wait(result.wait);
  if ('script' in result) return { outcome: 'boot', body: result.script };
  const plan = { ...result.plan, comments: [...comments, ...result.plan.comments] };
  return { outcome: 'boot', body: renderBootPlan(plan, ctx.boot.retry, askAgainUrl(ctx)) };
}

export async function renderDeviceScript(ctx: RenderContext): Promise<RenderedScript> {
  const decision = decideBoot({
    catalogue: ctx.catalogue,
    labels: ctx.device.labels,
    boot: ctx.boot,
  });
  switch (decision.action) {
    case 'notFound':
      return { outcome: 'notFound', body: `${decision.reason} (${deviceLabel(ctx)})\n`, decision };
    case 'poll': {
      const comments = [`bootdepot: waiting: ${decision.reason}`];
      const body = renderWaitScript(comments, `${decision.reason} (${deviceLabel(ctx)})`, decision.interval, askAgainUrl(ctx));
      return { outcome: 'wait', body, decision, problem: decision.reason };
    }
    case 'profile': {
      const rendered = await renderProfile(decision.profile, decision.group, decision.reason, ctx);
      return { ...rendered, decision };
    }
  }
}
