/**
 * Script routes: `/boot.ipxe` (bootstrap), `/ipxe` (a device's script), `/grub` (the same as a GRUB config), `/linuxkit/NAME.ipxe`
 * (a LinuxKit set by name, for a provider URL with no data entry), `/ignition`, `/metadata`,
 * `/generic`, `/cloud` (and each under `/b/<boot>/`); and, for each script and config,
 * `<path>.sig` and `<path>.asc`: its OpenPGP signature.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AssetReader } from '../assets/asset-root.ts';
import type { GeneratedAssets } from '../assets/routes.ts';
import { LINUXKIT_DIR } from './kinds/linuxkit.ts';
import { labelQuery } from './script.ts';
import { HttpError } from '../common/http-error.ts';
import type { Config } from '../config/schema.ts';
import { requestBaseUrl } from '../http/base-url.ts';
import { renderBootstrap } from './bootstrap.ts';
import type { LiveCatalogue } from './live-catalogue.ts';
import type { Group, Profile } from './catalogue.ts';
import { encodeQueryValue } from '../common/escape.ts';
import { ID_PATTERN } from './data-schema.ts';
import { renderConfigTemplate, renderIgnition, renderMetadata, type ConfigResult, type ConfigTarget, type MetadataRequest } from './device-configs.ts';
import { decideBoot, matchGroup } from './decision.ts';
import type { BootRecord, ConfigWhat } from '../state/model.ts';
import { IdentityError, parseDevice, queryLabels, type IdentityField, type QueryInput } from '../common/identity.ts';
import type { MirrorView, RenderContext, ScriptFormat } from './render-context.ts';
import { isBootId, type BootState } from '../state/boot-state.ts';
import { renderProfile } from './render.ts';
import { answerScript, previewScript } from './script-answer.ts';
import { LRUCache } from 'lru-cache';
import type { ResponseSigner } from '../http/signing.ts';

export interface BootRoutesOptions {
  config: Config;
  catalogue: LiveCatalogue;
  assets: AssetReader;
  /** Boot state: decides with the device's next boot and records every script. */
  bootState?: BootState;
  /** The pull-through mirror, for Flatcar profiles that use it and for what it knows is failing. */
  mirror?: MirrorView;
  /** How long a boot's id opens its Ignition and metadata (default 24 h; see docs/security.md). */
  configLifetimeMs?: number;
  /** Signs answers for `<path>.sig` and `<path>.asc`; without it those answer 404. */
  signer?: ResponseSigner;
}

/** An answer as bytes and headers, so that the same text can be sent or signed. */
interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** How an answer is asked for: to be sent, or to be signed (nothing recorded then). */
type AnswerMode = 'send' | 'sign';

/**
 * How long, and for how many requests at once, a script answer is kept for its signature: a
 * machine that checks signatures fetches `.sig` right after the script. Within the window the
 * signature is of the very bytes that address was sent (each booting answer names its own boot).
 */
const REMEMBER_MS = 10 * 60 * 1000;
const REMEMBERED_ANSWERS = 10_000;

const DEFAULT_CONFIG_LIFETIME_MS = 24 * 3600 * 1000;

/** A config request resolved: whose config (a group without a profile has metadata only), and what was asked with. */
interface ResolvedConfig {
  target: { profile?: Profile; group: Group | undefined };
  ctx: RenderContext;
  asked: MetadataRequest;
}

/** Labels written as a plain query string (`k=v&...`, values percent-encoded). */
function labelQueryString(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${encodeQueryValue(key)}=${encodeQueryValue(value)}`)
    .join('&');
}

const SCRIPT_TYPE = 'text/plain; charset=utf-8';
const LINUXKIT_SCRIPT = new RegExp(`${ID_PATTERN.slice(0, -1)}\\.ipxe$`);
/** `[linuxkit/]NAME-equinixmetal.ipxe` or `[linuxkit/]NAME-packet.ipxe`, as `linuxkit push` names them. */
const PROVIDER_SCRIPT = new RegExp(`^(linuxkit/)?(${ID_PATTERN.slice(1, -1)})-(?:equinixmetal|packet)\\.ipxe$`);

declare module 'fastify' {
  interface FastifyInstance {
    /** LinuxKit's provider scripts, for the assets route to answer when no file holds one. */
    linuxkitProviderScripts: GeneratedAssets;
  }
}

function sendScript(reply: FastifyReply, body: string): FastifyReply {
  return reply.header('content-type', SCRIPT_TYPE).header('cache-control', 'no-store').send(body);
}

function sendText(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', SCRIPT_TYPE).header('cache-control', 'no-store').send(message.endsWith('\n') ? message : `${message}\n`);
}

function text(status: number, message: string): Answer {
  return { status, contentType: SCRIPT_TYPE, body: message.endsWith('\n') ? message : `${message}\n` };
}

function sendAnswer(reply: FastifyReply, answer: Answer): FastifyReply {
  return reply.code(answer.status).header('content-type', answer.contentType).header('cache-control', 'no-store').send(answer.body);
}

/**
 * Sends an answer with its header names written as `Content-Length` and `Content-Type`: GRUB's
 * HTTP client (2.06) matches `Content-Length: ` case-sensitively, and Fastify writes header
 * names in lower case, with which GRUB reads a config as empty and drops to its prompt.
 */
function sendWithCanonicalHeaders(request: FastifyRequest, reply: FastifyReply, answer: Answer): void {
  const body = Buffer.from(answer.body, 'utf8');
  // The status the request log line reports.
  void reply.code(answer.status);
  reply.hijack();
  reply.raw.writeHead(answer.status, { 'Content-Type': answer.contentType, 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
  reply.raw.end(request.method === 'HEAD' ? undefined : body);
}

/** The query string as sent, which a signature request repeats (and matchbox's `request.raw_query`). */
function rawQuery(request: FastifyRequest): string {
  const at = request.url.indexOf('?');
  return at < 0 ? '' : request.url.slice(at + 1);
}

/** iPXE names itself in User-Agent (`iPXE/1.21.1+ (g4e456d99)`). */
function isIpxe(request: FastifyRequest): boolean {
  return /\biPXE\//i.test(String(request.headers['user-agent'] ?? ''));
}

function bootRoutes(app: FastifyInstance, options: BootRoutesOptions): void {
  const { config, catalogue, assets, bootState, mirror } = options;
  const configLifetimeMs = options.configLifetimeMs ?? DEFAULT_CONFIG_LIFETIME_MS;

  function context(request: FastifyRequest, required: readonly IdentityField[], query: QueryInput = request.query as QueryInput): RenderContext {
    let device;
    try {
      device = parseDevice(query, { required });
    } catch (error) {
      if (error instanceof IdentityError) throw new HttpError(400, error.message, { cause: error });
      throw error;
    }
    request.deviceMac = device.identity.mac;
    // One line per request, however many values were dropped (the list itself is capped).
    if (device.warnings.length > 0) request.log.warn({ mac: device.identity.mac, dropped: device.warnings }, `device sent values that were dropped: ${device.warnings[0] ?? ''}`);
    const portFromSocket = /^\/grub(\.sig|\.asc)?$/.test(request.routeOptions.url ?? '') && !config.server.trustProxy;
    return { baseUrl: requestBaseUrl(request, config.server.baseUrl, { portFromSocket }), device, catalogue: catalogue.current(), assets, boot: config.boot, ...(mirror ? { mirror } : {}) };
  }

  const { signer } = options;
  /**
   * Registers `path` and its signatures `path.sig` (binary) and `path.asc` (armored): each signs
   * exactly the body `answer` gives in `sign` mode, which is what `path` answers this request
   * now, without recording anything a second time. Anything but a 200 is passed on unsigned.
   */
  function signable<P extends Record<string, string> = Record<string, never>>(path: string, answer: (request: FastifyRequest<{ Params: P }>, mode: AnswerMode) => Promise<Answer>, options: { forGrub?: boolean } = {}): void {
    app.get<{ Params: P }>(path, async (request, reply) => {
      const answered = await answer(request, 'send');
      if (options.forGrub) return sendWithCanonicalHeaders(request, reply, answered);
      return sendAnswer(reply, answered);
    });
    for (const [suffix, armored] of [['.sig', false], ['.asc', true]] as const) {
      app.get<{ Params: P }>(`${path}${suffix}`, async (request, reply) => {
        if (!signer) return sendText(reply, 404, `no signatures here: this bootdepot has no signing key (signing.keyFile)`);
        const signed = await answer(request, 'sign');
        if (signed.status !== 200) return sendAnswer(reply, { ...signed, body: `nothing to sign: ${signed.body}` });
        const signature = await signer.sign(signed.body, armored);
        return reply
          .header('content-type', armored ? 'application/pgp-signature' : 'application/octet-stream')
          .header('cache-control', 'no-store')
          .send(typeof signature === 'string' ? signature : Buffer.from(signature));
      });
    }
  }

  const bootstrap = (request: FastifyRequest): Promise<Answer> => Promise.resolve({ status: 200, contentType: SCRIPT_TYPE, body: renderBootstrap(requestBaseUrl(request, config.server.baseUrl)) });
  // matchbox answers its name at `/`; setups health-check it there.
  app.get('/', (_request, reply) => reply.header('content-type', SCRIPT_TYPE).header('cache-control', 'no-store').send('bootdepot\n'));
  signable('/boot.ipxe', bootstrap);
  signable('/boot.ipxe.0', bootstrap);

  /** Script answers kept for their signatures, by address, language and query (only with a signing key). */
  const answered = signer ? new LRUCache<string, string>({ max: REMEMBERED_ANSWERS, ttl: REMEMBER_MS }) : undefined;

  /**
   * `/ipxe` and `/grub`: one decision, recording and logging, answered in the machine's language.
   * Signing never decides a boot again: it signs the answer this address was given for this URL
   * in the last ten minutes; with none, what the URL would answer now if that records no boot
   * (a wait, a hold, the local disk, or anything while boot state is off); otherwise 404, since
   * a booting answer names a boot of its own that no other request can reproduce.
   */
  const deviceScript = (format: ScriptFormat) => async (request: FastifyRequest, mode: AnswerMode): Promise<Answer> => {
    // No MAC at all: answered from the groups the other labels select, as matchbox does. A MAC
    // that is there but not a MAC is a 400: which machine it meant cannot be known.
    const sent = (request.query as QueryInput).mac;
    const ctx = context(request, sent === undefined || sent === '' ? [] : ['mac']);
    ctx.format = format;
    const key = `${request.ip} ${format} ${rawQuery(request)}`;
    if (mode === 'sign') {
      const remembered = answered?.get(key);
      if (remembered !== undefined) return { status: 200, contentType: SCRIPT_TYPE, body: remembered };
      const preview = await previewScript({ ctx }, bootState);
      if (preview.startsBoot) return text(404, `no ${format === 'grub' ? 'GRUB config' : 'script'} was answered to this address for this URL in the last ${REMEMBER_MS / 60000} minutes: fetch it first, then its signature (each booting answer names a boot of its own)`);
      if (preview.outcome === 'notFound') return text(404, preview.body);
      return { status: 200, contentType: SCRIPT_TYPE, body: preview.body };
    }
    const result = await answerScript(
      { ctx, ip: request.ip, userAgent: String(request.headers['user-agent'] ?? '') },
      { recorder: bootState, log: request.log, count: (outcome) => app.metrics.scripts.inc({ outcome }) },
    );
    if (result.outcome === 'notFound') return text(404, result.body);
    answered?.set(key, result.body);
    return { status: 200, contentType: SCRIPT_TYPE, body: result.body };
  };
  signable('/ipxe', deviceScript('ipxe'));
  signable('/grub', deviceScript('grub'), { forGrub: true });

  /**
   * A LinuxKit set by name, for URLs with no data entry behind them (a provider's custom iPXE
   * field, `linuxkit run equinixmetal -base-url`). Not recorded: there is no decision to record.
   */
  async function answerLinuxKitSet(request: FastifyRequest, reply: FastifyReply, set: { name: string; dir: string; selfPath: string; dispatch?: boolean; preset?: Profile['preset'] }) {
    const ctx = context(request, []);
    const labels = labelQuery(ctx.device.labels);
    ctx.selfUrl = `${ctx.baseUrl}${set.selfPath}${labels ? `?${labels}` : ''}`;
    const profile: Profile = { id: `linuxkit-${set.name}`, kind: 'linuxkit', linuxkit: { name: set.name, dir: set.dir }, file: request.url, ...(set.preset ? { preset: set.preset } : {}) };
    const result = await renderProfile(profile, undefined, `LinuxKit set ${set.name} by URL`, ctx);
    if (result.outcome === 'wait') {
      request.log.warn({ linuxkit: set.name, problem: result.problem }, 'LinuxKit set not available');
      // LinuxKit checks its URLs with HEAD before booting: a set that is not there must not look
      // fine to it. iPXE, though, stops at a dead prompt on a 404: it gets the wait script, which
      // names the missing files and asks again until they are pushed.
      if (request.method === 'HEAD' || !isIpxe(request)) return sendText(reply, 404, result.problem ?? 'not available');
      return sendScript(reply, result.body);
    }
    // The URL a provider is given carries no arch: a machine that is not a BIOS one asks again
    // saying what it is, and gets the EFI (x86_64) or arm64 form of the same set.
    const unsaid = set.dispatch === true && ctx.device.identity.arch === undefined && ctx.device.identity.platform === undefined;
    if (!unsaid) return sendScript(reply, result.body);
    const lines = result.body.split('\n');
    const afterComments = lines.findIndex((line, index) => index > 0 && !line.startsWith('#'));
    lines.splice(afterComments, 0, `iseq \${platform} pcbios || chain --autofree ${ctx.baseUrl}${set.selfPath}?arch=\${buildarch:uristring}&platform=\${platform:uristring} ||`);
    return sendScript(reply, lines.join('\n'));
  }

  app.get<{ Params: { file: string } }>('/linuxkit/:file', async (request, reply) => {
    const { file } = request.params;
    if (!LINUXKIT_SCRIPT.test(file)) return sendText(reply, 404, `not a LinuxKit script name: expected /linuxkit/NAME.ipxe`);
    return answerLinuxKitSet(request, reply, { name: file.slice(0, -'.ipxe'.length), dir: LINUXKIT_DIR, selfPath: `/linuxkit/${file}` });
  });

  /**
   * `NAME-equinixmetal.ipxe` (and `NAME-packet.ipxe`, its older name) beside a set under
   * `/assets/` or `/assets/linuxkit/`: what `linuxkit push equinixmetal` writes there and
   * `linuxkit run equinixmetal -base-url URL` checks with HEAD and hands to the provider. A real
   * file of that name is served as it is; only when there is none is the script written here,
   * from the set in the same directory.
   */
  app.decorate('linuxkitProviderScripts', {
    handles: (relativePath: string) => PROVIDER_SCRIPT.test(relativePath),
    answer: async (request: FastifyRequest, reply: FastifyReply, relativePath: string) => {
      const match = PROVIDER_SCRIPT.exec(relativePath);
      if (!match?.[2]) return sendText(reply, 404, 'not found');
      return answerLinuxKitSet(request, reply, { name: match[2], dir: match[1] ? LINUXKIT_DIR : '', selfPath: `/assets/${relativePath}`, dispatch: true, preset: 'packet' });
    },
  });

  /**
   * Whose config a request is for, and whether the caller may have it. Under `/b/<boot>/` the
   * boot's id is the credential and the boot's own decision answers. A plain matchbox URL
   * (`/ignition?mac=...`) is answered from the device's current boot, and only to the address
   * that fetched that boot's script; when it carries labels that boot's script request did not
   * (matchbox's `&os=installed`), the same caller gets what matchbox would answer: decided from
   * the labels it sent. Groups marked `public` are answered to anyone, decided afresh (recorded
   * next boot included). Without boot state there are no boots to hold a credential, so plain
   * URLs are decided from the data alone, as matchbox does.
   */
  async function configRequest(request: FastifyRequest, what: ConfigWhat, bootId: string | undefined): Promise<ResolvedConfig | ConfigResult> {
    const now = catalogue.current();
    const targetOf = (profileId: string | null | undefined, groupId: string | null | undefined): ConfigTarget | ConfigResult => {
      const profile = profileId ? now.profiles.get(profileId) : undefined;
      if (!profile) return { status: 503, message: `profile ${profileId ?? '(none)'} of this boot is not loaded now` };
      return { profile, group: groupId ? now.groups.find((g) => g.id === groupId) : undefined };
    };
    const refuse = async (deviceId: string | undefined, plan: BootRecord | undefined, reason: string): Promise<ConfigResult> => {
      request.log.warn({ device: deviceId, boot: plan?.id, ip: request.ip, what, reason }, `${what} refused`);
      // Recorded on a device bootdepot knows (one with a boot): refusals must not create devices.
      if (plan && bootState) await bootState.recordConfig(plan.deviceId, plan.id, { what, status: 403, ip: request.ip, reason });
      return { status: 403, message: `${what} refused: ${reason}` };
    };
    const query = request.query as QueryInput;
    const asked: MetadataRequest = { query: queryLabels(query), rawQuery: rawQuery(request) };
    const ctx = context(request, []);
    /** As matchbox answers: from the group the request's own labels select. */
    const decided = (nextBoot: RenderContext['nextBoot'] = ctx.nextBoot ?? null): ResolvedConfig | ConfigResult => {
      const decision = decideBoot({ catalogue: ctx.catalogue, labels: ctx.device.labels, boot: ctx.boot, nextBoot });
      if (decision.action === 'profile') return { target: { profile: decision.profile, group: decision.group }, ctx, asked };
      // A group without a profile still has metadata, as in matchbox.
      if (what === 'metadata' && decision.action === 'poll' && decision.group && decision.group.profile === undefined) return { target: { group: decision.group }, ctx, asked };
      return { status: 404, message: `no profile for this machine: ${decision.reason}` };
    };
    /** Answers from a boot whose credential the caller has shown: unless it expired, or the boot was unverified. */
    const fromPlan = async (plan: BootRecord, relabelled = false): Promise<ResolvedConfig | ConfigResult> => {
      if (Date.now() - Date.parse(plan.createdAt) > configLifetimeMs) return refuse(plan.deviceId, plan, `this boot's credential expired (boot started ${plan.createdAt}); boot again`);
      if (plan.verified === false) return refuse(plan.deviceId, plan, 'the script request of this boot did not agree with the device\'s recorded UUID or serial (a replaced board? `bootdepot devices delete` the device)');
      if (relabelled) {
        ctx.bootId = plan.id;
        return decided(null);
      }
      const target = targetOf(plan.profile, plan.group);
      if ('status' in target) return target;
      const labels = plan.labels ?? { mac: plan.deviceId };
      const planCtx = context(request, [], labels);
      planCtx.bootId = plan.id;
      // Under /b/<boot>/ the request is the boot's: its script request's labels.
      return { target, ctx: planCtx, asked: bootId !== undefined ? { query: labels, rawQuery: labelQueryString(labels) } : asked };
    };

    if (bootId !== undefined) {
      if (!bootState || !isBootId(bootId)) return { status: 404, message: 'unknown boot' };
      const plan = await bootState.planFor(bootId);
      if (!plan) return { status: 404, message: 'unknown boot' };
      request.deviceMac = plan.deviceId;
      return fromPlan(plan);
    }

    if (!bootState) return decided();
    let mac = ctx.device.identity.mac;
    let plan: BootRecord | undefined;
    try {
      mac ??= await bootState.deviceByIp(request.ip);
      plan = mac ? await bootState.currentBootOf(mac) : undefined;
    } catch (error) {
      request.log.error({ err: error, mac }, `device store unavailable: cannot tell whose ${what} this is`);
      return { status: 503, message: `the device store is unavailable, so this request cannot be verified; ask again later` };
    }
    const group = matchGroup(ctx.catalogue.groups, ctx.device.labels);
    if (group?.public) return decided(mac ? await bootState.nextBootFor(mac) : null);
    if (!plan) return refuse(mac, undefined, 'this machine has no boot in progress: fetch it from the URL in its boot script');
    if (plan.ip !== undefined && plan.ip !== request.ip) return refuse(mac, plan, `asked from ${request.ip}, but this boot's script went to ${plan.ip}`);
    // Labels beyond the boot's (with the device's own MAC): matchbox answers by them.
    const planLabels: Readonly<Record<string, string>> = plan.labels ?? { mac: plan.deviceId };
    const relabelled = ctx.device.identity.mac !== undefined && Object.entries(ctx.device.labels).some(([key, value]) => planLabels[key] !== value);
    return fromPlan(plan, relabelled);
  }

  async function renderConfig(what: ConfigWhat, resolved: ResolvedConfig): Promise<ConfigResult> {
    const { ctx } = resolved;
    if (what === 'metadata') return renderMetadata(resolved.target.group, resolved.asked);
    // A group without a profile has metadata only.
    if (!resolved.target.profile) return { status: 404, message: `no profile for this machine: group ${resolved.target.group?.id ?? '(none)'} has none` };
    const target: ConfigTarget = { profile: resolved.target.profile, group: resolved.target.group };
    switch (what) {
      case 'ignition':
        return renderIgnition(target, ctx);
      case 'generic':
      case 'cloud':
        return renderConfigTemplate(what, target, ctx);
    }
  }

  /** A config answered, or (mode `sign`) rendered for its signature: the same checks, refusals recorded, a 200 not. */
  async function answerConfig(request: FastifyRequest, what: ConfigWhat, bootId: string | undefined, mode: AnswerMode): Promise<Answer> {
    const resolved = await configRequest(request, what, bootId);
    const result = !('target' in resolved) ? resolved : await renderConfig(what, resolved);
    if (result.status !== 200) {
      if (result.status >= 500) request.log.error({ what, problem: result.message }, `${what} cannot be served`);
      return text(result.status, result.message);
    }
    const deviceId = 'target' in resolved ? resolved.ctx.device.identity.mac : undefined;
    if (mode === 'send' && bootState && deviceId && 'target' in resolved) void bootState.recordConfig(deviceId, resolved.ctx.bootId, { what, status: 200, ip: request.ip });
    return { status: 200, contentType: what === 'ignition' ? 'application/json' : SCRIPT_TYPE, body: result.body };
  }

  for (const what of ['ignition', 'metadata', 'generic', 'cloud'] as const) {
    signable(`/${what}`, (request, mode) => answerConfig(request, what, undefined, mode));
    signable<{ bootId: string }>(`/b/:bootId/${what}`, (request, mode) => answerConfig(request, what, request.params.bootId, mode));
  }
}

export default fp(bootRoutes, { name: 'bootdepot-boot-routes' });
