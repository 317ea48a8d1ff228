/**
 * buildApp: the whole HTTP service as a Fastify instance that does not listen. The server
 * entry point and the tests both build it; only the server listens.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AssetReader } from './assets/asset-root.ts';
import swagger from '@fastify/swagger';
import assetUploads from './api/asset-uploads.ts';
import siteAssetRedirects from './api/site-redirects.ts';
import deviceApi from './api/devices.ts';
import { admissionGauges, DownloadAdmission } from './assets/admission.ts';
import { ReprDigests } from './assets/repr-digest.ts';
import assetRoutes, { type RemoteRequest } from './assets/routes.ts';
import type { LiveCatalogue } from './boot/live-catalogue.ts';
import bootRoutes from './boot/routes.ts';
import type { Config } from './config/schema.ts';
import { isWarning } from './common/problems.ts';
import errors from './http/errors.ts';
import metricsPlugin, { Metrics } from './http/metrics.ts';
import mirrorAdminRoutes from './mirror/admin-routes.ts';
import { mirrorGauges } from './mirror/metrics.ts';
import type { PullThroughMirror } from './mirror/mirror.ts';
import mirrorRoutes from './mirror/routes.ts';
import { DEFAULT_CACHE_CONTROL, resolveMirrorDownload } from './mirror/serve.ts';
import { SITE_ORIGIN_MIRROR } from './mirror/site-assets.ts';
import type { BootState } from './state/boot-state.ts';
import stateRoutes from './state/boot-routes.ts';
import { OneLineRequestLog } from './http/request-log.ts';
import connectionLimits, { serverTimeouts } from './http/connection-limits.ts';
import { hygienicLogger } from './http/log-hygiene.ts';
import rateLimits from './http/rate-limits.ts';
import type { ResponseSigner } from './http/signing.ts';
import type { SiteAgent } from './site/agent.ts';
import originRoutes from './site/origin-routes.ts';
import siteRoutes from './site/site-routes.ts';

export interface AppDependencies {
  config: Config;
  /** A pino logger (the server's) or any Fastify-compatible one. */
  logger: FastifyBaseLogger;
  catalogue: LiveCatalogue;
  assets: AssetReader;
  /** Boot state (recording and next-boot rules); without it scripts are decided from data alone. */
  bootState?: BootState;
  /** The pull-through mirror behind /mirror/NAME/; without it those routes do not exist. */
  mirror?: PullThroughMirror;
  /** Signs answers for `<path>.sig` / `.asc`; without it those answer 404. */
  signer?: ResponseSigner;
  /**
   * Why the service is degraded (e.g. the device store is not open), for /readyz; empty when
   * it is fully ready. Without it the app counts as ready once it answers.
   */
  readiness?: () => readonly string[];
  /** Site mode's loop (config `site:`): its state at /api/v1/site and on /metrics. */
  site?: SiteAgent;
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { server } = deps.config;
  const app = Fastify({
    // Device-sent text in any field or message is escaped before it reaches a log (and a terminal).
    loggerInstance: hygienicLogger(deps.logger),
    logController: new OneLineRequestLog(),
    ...serverTimeouts(server),
    trustProxy: deps.config.server.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1024 },
    // Unknown fields in a request body are an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });

  await app.register(errors);
  const admission = new DownloadAdmission(deps.config.assets.maxActiveDownloads, deps.config.assets.downloadQueueSeconds * 1000);
  const mirrorExtra = deps.mirror ? mirrorGauges(deps.mirror) : undefined;
  const metrics = new Metrics({
    dataProblems: () => deps.catalogue.current().problems.filter((problem) => !isWarning(problem)).length,
    extra: () => ({ ...admissionGauges(admission), ...mirrorExtra?.(), ...deps.site?.gauges() }),
    ...(deps.bootState
      ? {
          state: () => {
            const state = deps.bootState as BootState;
            return { recorded: state.recorder.stats.recorded, lost: state.recorder.stats.lost, readFailures: state.failures.reads };
          },
        }
      : {}),
  });
  await app.register(metricsPlugin, { metrics, token: server.metricsToken });
  // Limits come before every route: their hooks must see each request first.
  await app.register(connectionLimits, { settings: server, adminToken: deps.config.admin.token });
  await app.register(rateLimits, { ...deps.config.limits, adminToken: deps.config.admin.token, baseUrl: server.baseUrl });
  // Collects the route schemas registered after it into /api/v1/openapi.json.
  await app.register(swagger, {
    // Only the API's routes (they carry tags); scripts and assets are not a JSON API.
    hideUntagged: true,
    openapi: {
      info: { title: 'bootdepot admin API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // Liveness: the process answers. Readiness: everything it depends on works; a degraded
  // server still boots machines (from the data alone), so it stays up, but says why it is not ready.
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => {
    const reasons = deps.readiness?.() ?? [];
    reply.header('cache-control', 'no-store');
    return reasons.length === 0 ? { status: 'ready' } : reply.code(503).send({ status: 'degraded', reasons });
  });
  await app.register(bootRoutes, {
    config: deps.config,
    configLifetimeMs: deps.config.boot.bootCredentialHours * 3600 * 1000,
    catalogue: deps.catalogue,
    assets: deps.assets,
    ...(deps.bootState ? { bootState: deps.bootState } : {}),
    ...(deps.mirror ? { mirror: deps.mirror } : {}),
    ...(deps.signer ? { signer: deps.signer } : {}),
  });
  // Repr-Digest of every file version served from the assets directory (and of every upload).
  const digests = new ReprDigests({ root: deps.assets.root, log: app.log });
  // Hashing that runs at close writes its sidecar before the app is gone.
  app.addHook('onClose', () => digests.settled());
  // A site's /assets/ are the origin's, through the mirror (its implicit upstream `origin`).
  const site = deps.config.site;
  const siteMirror = site ? deps.mirror : undefined;
  if (site && !siteMirror) throw new Error('site mode needs the mirror: /assets/ are pulled from the origin through it');
  await app.register(assetRoutes, {
    assets: deps.assets,
    ...(siteMirror ? { remote: (relativePath: string, request: RemoteRequest) => resolveMirrorDownload(siteMirror, SITE_ORIGIN_MIRROR, relativePath, request, DEFAULT_CACHE_CONTROL) } : { digests }),
    generated: app.linuxkitProviderScripts,
    readSize: deps.config.assets.readSize,
    readBufferBudget: deps.config.assets.readBufferBudget,
    cacheControl: deps.config.assets.cacheControl,
    admission,
  });
  if (deps.mirror) {
    await app.register(mirrorRoutes, { mirror: deps.mirror, readSize: deps.config.assets.readSize });
    await app.register(mirrorAdminRoutes, { prefix: '/api/v1', mirror: deps.mirror, adminToken: deps.config.admin.token });
  }
  if (deps.bootState) {
    const mirror = deps.mirror;
    await app.register(stateRoutes, { bootState: deps.bootState, ...(mirror ? { mirrorProblem: (name: string, relativePath: string) => mirror.knownProblem(name, relativePath) } : {}) });
    await app.register(deviceApi, { prefix: '/api/v1', store: deps.bootState.store, catalogue: () => deps.catalogue.current(), adminToken: deps.config.admin.token });
  }
  const token = deps.config.admin.token;
  if (token !== undefined && deps.bootState) {
    // Loaded only when it can be used: a server without the admin token pays nothing for it.
    const { default: dashboard } = await import('./ui/routes.ts');
    await app.register(dashboard, {
      config: deps.config,
      token,
      store: deps.bootState.store,
      catalogue: () => deps.catalogue.current(),
      assets: deps.assets,
      ...(deps.mirror ? { mirror: deps.mirror, mirrorAdmin: deps.mirror } : {}),
      ...(deps.readiness ? { readiness: deps.readiness } : {}),
      storeStats: () => {
        const state = deps.bootState as BootState;
        return { lost: state.recorder.stats.lost, readFailures: state.failures.reads };
      },
    });
  } else {
    const why = token === undefined ? 'start bootdepot with --admin-token or BOOTDEPOT_ADMIN_TOKEN' : 'it needs the device store (state.enabled)';
    app.get('/ui/*', (_request, reply) => reply.code(403).type('text/plain; charset=utf-8').send(`the dashboard is off: ${why}\n`));
  }
  // Every server can be an origin: sites sync its data and report to it with their tokens.
  await app.register(originRoutes, {
    prefix: '/api/v1',
    dataDir: () => deps.catalogue.dataDir,
    store: deps.bootState?.store,
    adminToken: deps.config.admin.token,
  });
  if (deps.site) await app.register(siteRoutes, { prefix: '/api/v1', agent: deps.site, adminToken: deps.config.admin.token });
  if (site) {
    await app.register(siteAssetRedirects, { prefix: '/api/v1', site: site.name, origin: site.origin });
    await app.register(siteAssetRedirects, { site: site.name, origin: site.origin });
  } else await app.register(assetUploads, {
    prefix: '/api/v1',
    assetsRoot: deps.assets.root,
    onChange: (relativePath: string) => deps.assets.invalidate(relativePath),
    maxUploadBytes: deps.config.assets.maxUploadBytes,
    adminToken: deps.config.admin.token,
    digests,
  });
  return app;
}
