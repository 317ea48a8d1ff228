/**
 * Rendering a device's script: decision, then the profile kind, then the text, all into a
 * string before anything is sent. Anything that stops a machine from booting right now (no
 * group, missing images, a template error) becomes a wait script that says why on the
 * machine's screen and asks again later, so fixing the data is enough to get it going.
 */
import type { Group, Profile, ProfileKind } from './catalogue.ts';
import { decideBoot, type BootDecision } from './decision.ts';
import { unservableConfigs } from './device-configs.ts';
import type { Problem } from '../common/problems.ts';
import { renderFlatcar } from './kinds/flatcar.ts';
import { renderLinuxKit } from './kinds/linuxkit.ts';
import { renderMatchboxBoot } from './kinds/matchbox.ts';
import { renderTemplate } from './kinds/template.ts';
import type { DownloadRole, ScriptAction } from '../state/model.ts';
import { askAgainUrl, beaconUrl, type KindRenderer, type RenderContext } from './render-context.ts';
import { echoText, renderScriptPlan, renderWaitScript } from './script.ts';
import { renderGrubBoot, renderGrubLocal, renderGrubWait } from './grub.ts';

const KINDS: Record<ProfileKind, KindRenderer> = {
  boot: renderMatchboxBoot,
  template: renderTemplate,
  linuxkit: renderLinuxKit,
  flatcar: renderFlatcar,
};


export interface RenderedScript {
  /** What the answer does; the same word is recorded with the script event. */
  outcome: ScriptAction;
  /** The script, or for `notFound` a plain-text explanation. */
  body: string;
  decision: BootDecision;
  /** Why the machine waits, when it does; also in the script's `echo`. */
  problem?: string;
  /** When it waits because config files fail for it: those files' problems (for `check`). */
  fileProblems?: Problem[];
  /** For a tracked boot: each download's URL path (`/assets/...`) and whether it is the kernel or an initrd. */
  downloads?: Record<string, DownloadRole>;
  notes?: string[];
}

function deviceLabel(ctx: RenderContext): string {
  return ctx.device.identity.mac ?? ctx.device.identity.uuid ?? 'this machine';
}

/** The key a download is recorded under: its path below `/b/<boot id>`, or the URL itself. */
function downloadKey(ctx: RenderContext, url: string): string {
  const prefix = ctx.bootId ? `${ctx.baseUrl}/b/${ctx.bootId}` : undefined;
  return prefix && url.startsWith(`${prefix}/`) ? url.slice(prefix.length) : url;
}

/** A wait-and-ask-again answer in the context's language. */
function waitBody(ctx: RenderContext, comments: string[], message: string, interval: number): string {
  if (ctx.format === 'grub') return renderGrubWait(comments, message, interval, askAgainUrl(ctx), ctx.baseUrl);
  return renderWaitScript(comments, message, interval, askAgainUrl(ctx));
}

export interface RenderedProfile {
  outcome: 'boot' | 'wait';
  body: string;
  problem?: string;
  fileProblems?: Problem[];
  downloads?: Record<string, DownloadRole>;
  /** Worth the operator's attention, without stopping the boot (e.g. a stale Flatcar release). */
  notes?: string[];
}

/** Renders one profile for a device (also used directly by `/linuxkit/NAME.ipxe`). */
export async function renderProfile(profile: Profile, group: Group | undefined, reason: string, ctx: RenderContext): Promise<RenderedProfile> {
  const comments = [`bootdepot: profile ${profile.id} for ${deviceLabel(ctx)}: ${reason}`];
  const wait = (problem: string) => ({
    outcome: 'wait' as const,
    body: waitBody(ctx, comments, `${problem} (${deviceLabel(ctx)})`, ctx.boot.pollInterval),
    problem,
  });
  // A request without a MAC is no known machine: with boot state on, configs go only to a
  // machine's boot (docs/security.md), so this one would come up without its configs.
  const config = profile.ignition_id !== undefined ? 'an Ignition' : profile.generic_id !== undefined ? 'a generic' : profile.cloud_id !== undefined ? 'a cloud' : undefined;
  if (ctx.withoutDevice && config && !group?.public) {
    return wait(`profile ${profile.id} has ${config} config, which is served only to the boot of a known machine: ask with mac=${group ? `, or mark group ${group.id} public if its configs hold nothing secret` : ''}`);
  }
  // A profile whose Ignition (or generic, or cloud) config cannot be served must not boot: the
  // machine would come up unconfigured. Rendering them now, for this device, also catches a
  // template that fails for it or Butane that does not translate.
  const unservable = await unservableConfigs({ profile, group }, ctx);
  if (unservable[0]) {
    const fileProblems = unservable.flatMap((result) => (result.problem ? [result.problem] : []));
    return { ...wait(`profile ${profile.id}: ${unservable[0].message}`), ...(fileProblems.length > 0 ? { fileProblems } : {}) };
  }
  let result;
  try {
    result = await KINDS[profile.kind](profile, group, ctx);
  } catch (error) {
    return wait(`profile ${profile.id} failed to render: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  if ('wait' in result) return wait(result.wait);
  if ('script' in result) {
    if (ctx.format === 'grub') return wait(`profile ${profile.id} renders an iPXE template, which GRUB cannot run: boot this machine through /ipxe, or give it a profile of another kind`);
    return { outcome: 'boot', body: result.script };
  }
  if (ctx.format === 'grub' && !result.plan.image) return wait(`profile ${profile.id} cannot be written as a GRUB config`);
  const plan = { ...result.plan, comments: [...comments, ...result.plan.comments] };
  const downloads: Record<string, DownloadRole> = {};
  for (const step of plan.steps) if ('download' in step) downloads[downloadKey(ctx, step.what)] = step.role ?? 'other';
  // A download the mirror already knows it cannot serve now would only loop on HTTP 5xx:
  // the machine waits instead, with the file, the upstream and the error on its screen.
  const mirrored = Object.keys(downloads).flatMap((key) => {
    const file = mirrorFileOf(ctx, key);
    return file ? [file] : [];
  });
  for (const file of mirrored) {
    const problem = ctx.mirror?.knownProblem?.(file.name, file.path);
    if (problem) return wait(`profile ${profile.id}: cannot get /mirror/${file.name}/${file.path} from ${problem.upstream} now: ${problem.error} (since ${problem.since.toISOString()})`);
  }
  // Files machines boot are evicted from the mirror's cache last: requests for other paths
  // must not push out what the fleet is booting.
  let body: string;
  if (ctx.format === 'grub' && plan.image) {
    const grub = renderGrubBoot({ comments: plan.comments, title: profile.id, image: plan.image, baseUrl: ctx.baseUrl, retry: ctx.boot.retry, beaconUrl: beaconUrl(ctx), askAgainUrl: askAgainUrl(ctx) });
    if ('unreachable' in grub) return wait(`profile ${profile.id}: GRUB cannot fetch ${grub.unreachable} (only http:// and https:// URLs)`);
    body = grub.config;
  } else body = renderScriptPlan(plan, ctx.boot.retry, askAgainUrl(ctx), beaconUrl(ctx));
  for (const file of mirrored) ctx.mirror?.protect?.(file.name, file.path);
  return {
    outcome: 'boot',
    body,
    downloads,
    ...(result.notes ? { notes: result.notes } : {}),
  };
}

/** The mirror file a download is (`/mirror/NAME/PATH` or a full URL to it), if it is one. */
function mirrorFileOf(ctx: RenderContext, key: string): { name: string; path: string } | undefined {
  const local = key.startsWith(ctx.baseUrl) ? key.slice(ctx.baseUrl.length) : key;
  const match = /^\/mirror\/([^/]+)\/([^?#]+)/.exec(local);
  if (!match?.[1] || !match[2]) return undefined;
  try {
    return { name: decodeURIComponent(match[1]), path: match[2].split('/').map(decodeURIComponent).join('/') };
  } catch {
    return undefined;
  }
}

/**
 * Hands the machine back to its disk: sanboot of the first BIOS drive, or exit to EFI's boot
 * order. A failed command ends an iPXE script, and a chained script that fails makes the
 * bootstrap ask again: so a sanboot that fails (no disk) must `goto` an explicit `exit`.
 */
function renderLocalBoot(ctx: RenderContext, reason: string): string {
  if (ctx.format === 'grub') return renderGrubLocal(`bootdepot: local disk for ${deviceLabel(ctx)}: ${reason}`, reason);
  const command = ctx.device.identity.platform === 'efi' ? ctx.boot.localBoot.efi : ctx.boot.localBoot.pcbios;
  return [
    '#!ipxe',
    `# bootdepot: local disk for ${deviceLabel(ctx)}: ${reason.replace(/[\r\n]+/g, ' ')}`,
    `echo bootdepot: booting from the local disk (${echoText(reason)})`,
    `${command} || goto bootdepot-local-failed`,
    ':bootdepot-local-failed',
    'echo bootdepot: the local disk did not boot; handing the machine back to its firmware',
    'exit',
    '',
  ].join('\n');
}

export async function renderDeviceScript(ctx: RenderContext): Promise<RenderedScript> {
  const decision = decideBoot({ catalogue: ctx.catalogue, labels: ctx.device.labels, boot: ctx.boot, nextBoot: ctx.nextBoot ?? null });
  switch (decision.action) {
    case 'notFound':
      return { outcome: 'notFound', body: `${decision.reason} (${deviceLabel(ctx)})\n`, decision };
    case 'poll':
    case 'hold': {
      const message = decision.action === 'hold' ? `held by the operator: ${decision.reason}` : decision.reason;
      const body = waitBody(ctx, [`bootdepot: waiting: ${message}`], `${message} (${deviceLabel(ctx)})`, decision.interval);
      return decision.action === 'hold' ? { outcome: 'hold', body, decision } : { outcome: 'wait', body, decision, problem: decision.reason };
    }
    case 'local':
      return { outcome: 'local', body: renderLocalBoot(ctx, decision.reason), decision };
    case 'profile': {
      const rendered = await renderProfile(decision.profile, decision.group, decision.reason, ctx);
      return { ...rendered, decision };
    }
  }
}
