/**
 * Script routes: `/boot.ipxe` (bootstrap), `/ipxe` (a device's script), `/linuxkit/NAME.ipxe`
 * (a LinuxKit set by name, for a provider URL with no data entry), `/ignition`, `/metadata`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AssetReader } from '../assets/asset-root.ts';
import type { Config } from '../config/schema.ts';
import { requestBaseUrl } from '../http/base-url.ts';
import { renderBootstrap } from './bootstrap.ts';
import type { CatalogueStore } from './catalogue-store.ts';
import type { Profile } from './catalogue.ts';
import { ID_PATTERN } from './data-schema.ts';
import { renderIgnition, renderMetadata } from './device-configs.ts';
import { IdentityError, parseDevice, type IdentityField, type QueryInput } from './identity.ts';
import type { FlatcarVersionSource } from '../mirror/flatcar.ts';
import type { RenderContext } from './render-context.ts';
import { newBootId, type BootState } from '../state/boot-state.ts';
import { renderDeviceScript, renderProfile } from './render.ts';

export interface BootRoutesOptions {
  config: Config;
  catalogue: CatalogueStore;
  assets: AssetReader;
  /** Boot state: decides with the device's next boot and records every script. */
  bootState?: BootState;
  /** The pull-through mirror, for Flatcar profiles that use it. */
  mirror?: FlatcarVersionSource;
}

const SCRIPT_TYPE = 'text/plain; charset=utf-8';
const LINUXKIT_SCRIPT = new RegExp(`${ID_PATTERN.slice(0, -1)}\\.ipxe$`);

function sendScript(reply: FastifyReply, body: string): FastifyReply {
  return reply.header('content-type', SCRIPT_TYPE).header('cache-control', 'no-store').send(body);
}

function sendText(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', SCRIPT_TYPE).header('cache-control', 'no-store').send(message.endsWith('\n') ? message : `${message}\n`);
}

/** iPXE names itself in User-Agent (`iPXE/1.21.1+ (g4e456d99)`). */
function isIpxe(request: FastifyRequest): boolean {
  return /\biPXE\//i.test(String(request.headers['user-agent'] ?? ''));
}

function bootRoutes(app: FastifyInstance, options: BootRoutesOptions): void {
  const { config, catalogue, assets, bootState, mirror } = options;

  function context(request: FastifyRequest, required: readonly IdentityField[]): RenderContext {
    let device;
    try {
      device = parseDevice(request.query as QueryInput, { required });
    } catch (error) {
      if (error instanceof IdentityError) throw Object.assign(error, { statusCode: 400 });
      throw error;
    }
    request.deviceMac = device.identity.mac;
    // One line per request, however many values were dropped (the list itself is capped).
    if (device.warnings.length > 0) request.log.warn({ mac: device.identity.mac, dropped: device.warnings }, `device sent values that were dropped: ${device.warnings[0] ?? ''}`);
    return { baseUrl: requestBaseUrl(request, config.server.baseUrl), device, catalogue: catalogue.current(), assets, boot: config.boot, ...(mirror ? { mirror } : {}) };
  }

  const bootstrap = (request: FastifyRequest, reply: FastifyReply) => sendScript(reply, renderBootstrap(requestBaseUrl(request, config.server.baseUrl)));
  app.get('/boot.ipxe', bootstrap);
  app.get('/boot.ipxe.0', bootstrap);

  app.get('/ipxe', async (request, reply) => {
    const ctx = context(request, ['mac']);
    const mac = ctx.device.identity.mac ?? '';
    if (bootState) {
      ctx.nextBoot = await bootState.nextBootFor(mac);
      ctx.bootId = newBootId();
    }
    const result = await renderDeviceScript(ctx);
    const { decision } = result;
    if (bootState) {
      const starts = result.outcome === 'boot' || result.outcome === 'local';
      const profile = decision.action === 'profile' ? decision.profile.id : undefined;
      const group = 'group' in decision ? decision.group?.id : undefined;
      await bootState.recordScript(
        {
          deviceId: mac,
          ...(starts ? { bootId: ctx.bootId } : {}),
          at: new Date(),
          detail: {
            type: 'script',
            ip: request.ip,
            userAgent: String(request.headers['user-agent'] ?? '').slice(0, 200),
            identity: ctx.device.identity,
            action: result.outcome,
            reason: result.problem ? `${decision.reason}; ${result.problem}` : decision.reason,
            ...(group ? { group } : {}),
            ...(profile ? { profile } : {}),
          },
        },
        result.outcome === 'boot' ? { profile: profile ?? null, downloads: result.downloads ?? {} } : undefined,
      );
    }
    const fields = {
      mac: ctx.device.identity.mac,
      identity: ctx.device.identity,
      group: 'group' in decision ? decision.group?.id : undefined,
      profile: decision.action === 'profile' ? decision.profile.id : undefined,
      outcome: result.outcome,
      reason: decision.reason,
    };
    app.metrics.scripts.inc({ outcome: result.outcome });
    if (result.problem) request.log.warn({ ...fields, problem: result.problem }, 'machine has to wait');
    else request.log.info(fields, 'script decided');
    if (result.outcome === 'notFound') return sendText(reply, 404, result.body);
    return sendScript(reply, result.body);
  });

  app.get<{ Params: { file: string } }>('/linuxkit/:file', async (request, reply) => {
    const { file } = request.params;
    if (!LINUXKIT_SCRIPT.test(file)) return sendText(reply, 404, `not a LinuxKit script name: expected /linuxkit/NAME.ipxe`);
    const name = file.slice(0, -'.ipxe'.length);
    const ctx = context(request, []);
    const profile: Profile = { id: `linuxkit-${name}`, kind: 'linuxkit', linuxkit: { name, dir: 'linuxkit' }, file: request.url };
    ctx.selfUrl = `${ctx.baseUrl}/linuxkit/${file}`;
    const result = await renderProfile(profile, undefined, `LinuxKit set ${name} by URL`, ctx);
    if (result.outcome === 'wait') {
      request.log.warn({ linuxkit: name, problem: result.problem }, 'LinuxKit set not available');
      // LinuxKit checks its URLs with HEAD before booting: a set that is not there must not look
      // fine to it. iPXE, though, stops at a dead prompt on a 404: it gets the wait script, which
      // names the missing files and asks again until they are pushed.
      if (request.method === 'HEAD' || !isIpxe(request)) return sendText(reply, 404, result.problem ?? 'not available');
    }
    return sendScript(reply, result.body);
  });

  app.get('/ignition', async (request, reply) => {
    const result = await renderIgnition(context(request, []));
    if (result.status !== 200) return sendText(reply, result.status, result.message);
    return reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(result.body);
  });

  app.get('/metadata', (request, reply) => {
    const result = renderMetadata(context(request, []));
    if (result.status !== 200) return sendText(reply, result.status, result.message);
    return sendScript(reply, result.body);
  });
}

export default fp(bootRoutes, { name: 'bootdepot-boot-routes' });
