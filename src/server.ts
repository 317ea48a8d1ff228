/**
 * The running service: config -> logger, catalogue, assets -> app -> listen; graceful close.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { createAssetReader } from './assets/asset-root.ts';
import { removeStaleUploads } from './assets/upload.ts';
import { createCatalogueStore, type CatalogueStore } from './boot/catalogue-store.ts';
import type { Config } from './config/schema.ts';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  catalogue: CatalogueStore;
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const catalogue = await createCatalogueStore(config.paths.data, logger);
  catalogue.watch();
  const assets = createAssetReader(config.paths.assets);
  const stale = await removeStaleUploads(config.paths.assets);
  if (stale.length > 0) logger.warn({ files: stale }, 'removed temp files of interrupted uploads');
  const app = await buildApp({ config, logger, catalogue, assets });
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const shownHost = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  logger.info(
    { url, listen: `${config.server.host}:${port}`, dataDir: config.paths.data, assetsDir: config.paths.assets, config: config.source },
    `bootdepot listening; machines chain ${config.server.baseUrl ?? url}/boot.ipxe`,
  );
  return {
    app,
    url,
    catalogue,
    async close() {
      catalogue.close();
      await app.close();
    },
  };
}
