/**
 * The running service: config -> logger, catalogue, assets -> app -> listen; graceful close.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { createAssetReader } from './assets/asset-root.ts';
import { removeStaleUploads } from './assets/upload.ts';
import { PullThroughMirror } from './mirror/mirror.ts';
import { createCatalogueStore, type CatalogueStore } from './boot/catalogue-store.ts';
import type { Config } from './config/schema.ts';
import { BootState } from './state/boot-state.ts';
import { openDeviceStore } from './state/create-store.ts';
import type { DeviceStore } from './state/store.ts';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  catalogue: CatalogueStore;
  close(): Promise<void>;
}

const PRUNE_EVERY_MS = 10 * 60 * 1000;

/** Keeps history bounded: events past the retention, and past the per-device cap, go. */
function startPruning(store: DeviceStore, config: Config, logger: Logger): NodeJS.Timeout {
  const prune = () => {
    const before = new Date(Date.now() - config.state.retentionDays * 86_400_000);
    store
      .prune(before, config.state.maxEventsPerDevice)
      .then((removed) => removed > 0 && logger.info({ removed }, 'old boot events pruned'))
      .catch((error: unknown) => logger.warn({ err: error }, 'pruning boot events failed'));
  };
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS);
  timer.unref();
  return timer;
}

/** The device store and what records into it; closed after the app (pending events flushed). */
async function openState(config: Config, logger: Logger, catalogue: CatalogueStore) {
  let store: DeviceStore;
  try {
    store = await openDeviceStore({
      databaseUrl: config.state.databaseUrl,
      sqlitePath: config.state.sqlitePath,
      onError: (error) => logger.warn({ err: error }, 'device store connection trouble'),
    });
  } catch (error) {
    catalogue.close();
    throw new Error(`cannot open the device store (${config.state.databaseUrl ? 'PostgreSQL' : config.state.sqlitePath}): ${(error as Error).message}`, { cause: error });
  }
  const bootState = new BootState({ store, log: logger, catalogue: () => catalogue.current() });
  const pruner = startPruning(store, config, logger);
  return {
    bootState,
    async close() {
      clearInterval(pruner);
      await bootState.close();
      await store.close();
    },
  };
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const catalogue = await createCatalogueStore(config.paths.data, logger);
  catalogue.watch();
  const assets = createAssetReader(config.paths.assets);
  const stale = await removeStaleUploads(config.paths.assets);
  if (stale.length > 0) logger.warn({ files: stale }, 'removed temp files of interrupted uploads');
  const stateParts = config.state.enabled ? await openState(config, logger, catalogue) : undefined;
  // Upstreams are contacted only when a mirrored file is first asked for.
  const mirror = await PullThroughMirror.open({ settings: config.mirror, log: logger.child({ component: 'mirror' }) });
  let app;
  try {
    app = await buildApp({ config, logger, catalogue, assets, mirror, ...(stateParts ? { bootState: stateParts.bootState } : {}) });
  } catch (error) {
    await mirror.close();
    await stateParts?.close();
    throw error;
  }
  app.addHook('onClose', async () => {
    await stateParts?.close();
    await mirror.close();
  });
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const shownHost = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  logger.info(
    { url, listen: `${config.server.host}:${port}`, dataDir: config.paths.data, assetsDir: config.paths.assets, store: stateParts?.bootState.store.kind ?? 'off', config: config.source },
    `bootdepot listening; machines chain ${config.server.baseUrl ?? url}/boot.ipxe`,
  );
  return {
    app,
    url,
    catalogue,
    async close() {
      catalogue.close();
      // The app's onClose hooks flush pending events and close the store.
      await app.close();
    },
  };
}
