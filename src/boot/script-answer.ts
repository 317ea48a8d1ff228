/**
 * Answering a device's script request, framework-free: read what is recorded about the device,
 * decide and render (`renderDeviceScript`), record the script with its boot, log and count it.
 * The `/ipxe` route only turns HTTP into this call and the result back into a reply.
 */
import { newBootId } from '../state/boot-state.ts';
import { identityAgrees, type BootRecord, type Device, type NewEvent, type ScriptAction } from '../state/model.ts';
import type { RenderContext } from './render-context.ts';
import { renderDeviceScript, type RenderedScript } from './render.ts';

/** What answering needs of boot state (declared here, where it is used; BootState is one). */
export interface ScriptRecorder {
  deviceFor(deviceId: string): Promise<Device | null>;
  recordScript(event: NewEvent, plan: Omit<BootRecord, 'id' | 'deviceId' | 'createdAt'> | undefined): Promise<void>;
}

export interface ScriptLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface ScriptRequest {
  ctx: RenderContext;
  /** Source address of the request. */
  ip: string;
  userAgent: string;
}

export interface ScriptAnswerDeps {
  /** Absent when boot state is off: decided from the data alone, nothing recorded. */
  recorder?: ScriptRecorder | undefined;
  log: ScriptLog;
  count(outcome: ScriptAction): void;
}

export async function answerScript(request: ScriptRequest, deps: ScriptAnswerDeps): Promise<RenderedScript> {
  const { ctx } = request;
  const { recorder, log } = deps;
  const mac = ctx.device.identity.mac ?? '';
  let verified = true;
  // Without a MAC there is no device to record on, nor a next boot to read: decided from the
  // labels alone, as matchbox does, and the boot is not tracked (no boot id, nothing recorded).
  if (mac === '') ctx.withoutDevice = true;
  if (recorder && mac !== '') {
    const recorded = await recorder.deviceFor(mac);
    ctx.nextBoot = recorded?.nextBoot ?? null;
    ctx.bootId = newBootId();
    // A request that contradicts the recorded UUID or serial is answered, but its boot changes
    // nothing about the device: it cannot spoil a boot in progress or use up a `once`.
    verified = !recorded || identityAgrees(recorded.identity, ctx.device.identity);
    if (!verified) log.warn({ mac, sent: ctx.device.identity, recorded: recorded?.identity }, 'script request does not agree with the device\'s recorded identity: recorded as unverified');
  }
  const result = await renderDeviceScript(ctx);
  const { decision } = result;
  const profile = decision.action === 'profile' ? decision.profile.id : undefined;
  const group = 'group' in decision ? decision.group?.id : undefined;
  if (recorder && mac !== '') {
    const starts = result.outcome === 'boot' || result.outcome === 'local';
    await recorder.recordScript(
      {
        deviceId: mac,
        ...(starts ? { bootId: ctx.bootId } : {}),
        at: new Date(),
        detail: {
          type: 'script',
          ip: request.ip,
          userAgent: request.userAgent.slice(0, 200),
          identity: ctx.device.identity,
          action: result.outcome,
          // A wait's problem is often its decision's reason itself: said once.
          reason: result.problem && result.problem !== decision.reason ? `${decision.reason}; ${result.problem}` : decision.reason,
          ...(group ? { group } : {}),
          ...(profile ? { profile } : {}),
          ...(decision.action === 'profile' && decision.unmatched ? { unmatched: true } : {}),
          ...(verified ? {} : { verified: false }),
        },
      },
      result.outcome === 'boot' ? { profile: profile ?? null, group: group ?? null, labels: ctx.device.labels, ip: request.ip, downloads: result.downloads ?? {}, ...(verified ? {} : { verified: false }) } : undefined,
    );
  }
  const fields = { mac: ctx.device.identity.mac, identity: ctx.device.identity, group, profile, outcome: result.outcome, reason: decision.reason };
  deps.count(result.outcome);
  for (const note of result.notes ?? []) log.warn({ ...fields, note }, note);
  if (result.problem) log.warn({ ...fields, problem: result.problem }, 'machine has to wait');
  else log.info(fields, 'script decided');
  return result;
}

/**
 * What `/ipxe` (or `/grub`) would answer this request now, decided the same way but recording,
 * logging and counting nothing: for signing an answer that was not remembered. The device's
 * recorded next boot is read as for a real answer, but no boot id is made, so a booting answer
 * here is not what the machine would get when boot state is on (`startsBoot` says so).
 */
export async function previewScript(request: Pick<ScriptRequest, 'ctx'>, recorder: Pick<ScriptRecorder, 'deviceFor'> | undefined): Promise<RenderedScript & { startsBoot: boolean }> {
  const { ctx } = request;
  if (recorder) ctx.nextBoot = (await recorder.deviceFor(ctx.device.identity.mac ?? ''))?.nextBoot ?? null;
  const result = await renderDeviceScript(ctx);
  return { ...result, startsBoot: recorder !== undefined && result.outcome === 'boot' };
}
