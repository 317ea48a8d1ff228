/**
 * buildApp: the whole HTTP service as a Fastify instance that does not listen. The server
 * entry point and the tests both build it; only the server listens.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AssetReader } from './assets/asset-root.ts';
import assetUploads from './api/asset-uploads.ts';
import assetRoutes from './assets/routes.ts';
import type { CatalogueStore } from './boot/catalogue-store.ts';
import bootRoutes from './boot/routes.ts';
import type { Config } from './config/schema.ts';
import errors from './http/errors.ts';
import type { BootState } from './state/boot-state.ts';
import stateRoutes from './state/boot-routes.ts';
import { OneLineRequestLog } from './http/request-log.ts';

export interface AppDependencies {
  config: Config;
  /** A pino logger (the server's) or any Fastify-compatible one. */
  logger: FastifyBaseLogger;
  catalogue: CatalogueStore;
  assets: AssetReader;
  /** Boot state (recording and next-boot rules); without it scripts are decided from data alone. */
  bootState?: BootState;
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new OneLineRequestLog(),
    trustProxy: deps.config.server.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1024 },
  });

  await app.register(errors);
  app.get('/healthz', () => ({ status: 'ok' }));
  await app.register(bootRoutes, { config: deps.config, catalogue: deps.catalogue, assets: deps.assets, ...(deps.bootState ? { bootState: deps.bootState } : {}) });
  await app.register(assetRoutes, { assets: deps.assets, readSize: deps.config.assets.readSize, cacheControl: deps.config.assets.cacheControl });
  if (deps.bootState) await app.register(stateRoutes, { bootState: deps.bootState });
  await app.register(assetUploads, {
    prefix: '/api/v1',
    assetsRoot: deps.assets.root,
    maxUploadBytes: deps.config.assets.maxUploadBytes,
    adminToken: deps.config.admin.token,
  });
  return app;
}
