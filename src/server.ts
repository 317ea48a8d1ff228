/**
 * The running service: config -> logger, catalogue, assets -> app -> listen; graceful close.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import packageJson from '../package.json' with { type: 'json' };
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { createAssetReader } from './assets/asset-root.ts';
import { removeStaleUploads } from './assets/upload.ts';
import { PullThroughMirror } from './mirror/mirror.ts';
import { createSiteAssetReader } from './mirror/site-assets.ts';
import { auditCatalogue } from './boot/audit.ts';
import { lastGoodDir } from './boot/last-good.ts';
import { openLiveCatalogue, type LiveCatalogue } from './boot/live-catalogue.ts';
import type { Config } from './config/schema.ts';
import { checkDirectories, directoriesFor } from './config/directories.ts';
import { BootState } from './state/boot-state.ts';
import { describeStoreLocation, openDeviceStore, storeRemedy, type StoreChoice } from './state/create-store.ts';
import { startPruning } from './state/pruner.ts';
import { ReconnectingDeviceStore } from './state/reconnecting-store.ts';
import { loadSigner, SigningKeyError, type ResponseSigner } from './http/signing.ts';
import type { Problem } from './common/problems.ts';
import { SiteAgent } from './site/agent.ts';
import { DataCopies } from './site/data-document.ts';
import { DataSync } from './site/data-sync.ts';
import { OriginClient } from './site/origin-client.ts';
import { siteCopiesDir } from './site/served-data.ts';

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  catalogue: LiveCatalogue;
  /** Site mode's loop, when the config has `site:`. */
  site: SiteAgent | undefined;
  close(): Promise<void>;
}

/** The site's token, read at start: a site that cannot present one stops with the reason. */
async function readSiteToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new StartError([`cannot read site.tokenFile ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (write the token \`bootdepot site-token NAME\` prints on the origin into it)`], { cause: error });
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]{16,}$/.test(token)) throw new StartError([`site.tokenFile ${file}: expected one token of at least 16 printable characters (\`bootdepot site-token NAME\` on the origin prints it)`]);
  return token;
}

export interface StartOptions {
  /** How the config file was found, for the start log (see config/locate.ts). */
  configLocation?: string;
  /** Delays between attempts to open a device store that failed at start (tests shorten them). */
  storeRetry?: { initialDelayMs: number; maxDelayMs: number };
}

/**
 * A start that failed for a reason the operator can fix: each line says what and how. The
 * command line prints the lines and exits instead of printing a stack trace.
 */
export class StartError extends Error {
  readonly lines: readonly string[];
  constructor(lines: readonly string[], options?: ErrorOptions) {
    super(lines.join('; '), options);
    this.name = 'StartError';
    this.lines = lines;
  }
}

/** One line for a failed listen, with what to do about it. */
export function describeListenError(error: NodeJS.ErrnoException, host: string, port: number): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: address already in use (another bootdepot running? choose another with --port or server.port)`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --port or server.port)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: no such address on this machine (choose another with --host or server.host)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${where}: the host name does not resolve (choose another with --host or server.host)`;
    default:
      return `cannot listen on ${where}: ${error.message}`;
  }
}

/**
 * The device store and what records into it; closed after the app (pending events flushed).
 * A store that does not open at start does not stop the server: machines boot from the data
 * alone while it is retried in the background, and /readyz says so.
 */
async function openState(config: Config, logger: Logger, catalogue: LiveCatalogue, options: StartOptions) {
  const choice: StoreChoice = {
    databaseUrl: config.state.databaseUrl,
    sqlitePath: config.state.sqlitePath,
    onError: (error) => logger.warn({ err: error }, 'device store connection trouble'),
    limits: config.state,
  };
  const store = await ReconnectingDeviceStore.open({
    kind: config.state.databaseUrl ? 'postgres' : 'sqlite',
    location: describeStoreLocation(choice),
    remedy: storeRemedy(choice),
    open: () => openDeviceStore(choice),
    log: logger,
    ...(options.storeRetry ?? {}),
  });
  const bootState = new BootState({ store, log: logger, catalogue: () => catalogue.current() });
  const pruner = startPruning(store, config.state, logger);
  return {
    bootState,
    store,
    async close() {
      pruner.stop();
      await bootState.close();
      await store.close();
    },
  };
}

export async function startServer(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningServer> {
  const directoryProblems = await checkDirectories(directoriesFor(config, 'serve'));
  if (directoryProblems.length > 0) throw new StartError(directoryProblems);
  // A signing key that cannot be used stops the start: signatures that fail later would only
  // make every machine that checks them refuse its script.
  let signer: ResponseSigner | undefined;
  if (config.signing.keyFile !== undefined) {
    try {
      signer = await loadSigner({ keyFile: config.signing.keyFile, passphraseFile: config.signing.passphraseFile, env: process.env });
    } catch (error) {
      if (error instanceof SigningKeyError) throw new StartError([error.message], { cause: error });
      throw error;
    }
  }
  // Upstreams are contacted only when a mirrored file is first asked for.
  const mirror = await PullThroughMirror.open({ settings: config.mirror, log: logger.child({ component: 'mirror' }) });
  // A site's assets are the origin's, through the mirror; elsewhere the assets directory's.
  const assets = config.site ? createSiteAssetReader(mirror, { root: config.paths.assets }) : createAssetReader(config.paths.assets);
  // A site serves its last good copy of the origin's data (or, before the first, nothing).
  const site = config.site;
  const siteToken = site ? await readSiteToken(site.tokenFile) : undefined;
  const copies = site ? new DataCopies(siteCopiesDir(config)) : undefined;
  const initialCopy = await copies?.current();
  const dataDir = copies ? (initialCopy?.dir ?? (await copies.empty())) : config.paths.data;
  let siteProblems: () => Problem[] = () => [];
  // The same audit as `bootdepot check`, so the log and /metrics report what check reports.
  const catalogue = await openLiveCatalogue(dataDir, logger, {
    audit: async (loaded) => [...(await auditCatalogue({ config, catalogue: loaded, assets })), ...siteProblems()],
    lastGoodDir: lastGoodDir(config.state.sqlitePath),
  });
  // A site's copies never change in place: each new one is switched to.
  if (!site) catalogue.watch();
  const stale = await removeStaleUploads(config.paths.assets);
  if (stale.length > 0) logger.warn({ files: stale }, 'removed temp files of interrupted uploads');
  const stateParts = config.state.enabled ? await openState(config, logger, catalogue, options) : undefined;
  const readiness = () => {
    const reason = stateParts?.store.unavailableReason;
    return reason === undefined ? [] : [`device store: ${reason}`];
  };
  let agent: SiteAgent | undefined;
  if (site && copies && siteToken) {
    const client = new OriginClient({ origin: site.origin, site: site.name, token: siteToken });
    const siteLog = logger.child({ component: 'site', site: site.name });
    const sync = new DataSync({ client, copies, catalogue, log: siteLog, initial: initialCopy });
    siteProblems = () => sync.problems();
    agent = new SiteAgent({
      name: site.name,
      client,
      sync,
      store: stateParts?.bootState.store,
      log: siteLog,
      intervalMs: site.syncIntervalSeconds * 1000,
      forwardEvents: site.forwardEvents,
      version: packageJson.version,
      cache: () => {
        const stats = mirror.stats();
        return { bytesUsed: stats.cachedBytes, maxBytes: stats.maxBytes, fills: stats.misses, failedFills: stats.failedFills, staleServed: stats.staleServed };
      },
      storeTrouble: () => stateParts?.store.unavailableReason,
    });
    await catalogue.recheck();
  }
  let app;
  try {
    app = await buildApp({ config, logger, catalogue, assets, mirror, readiness, ...(stateParts ? { bootState: stateParts.bootState } : {}), ...(signer ? { signer } : {}), ...(agent ? { site: agent } : {}) });
  } catch (error) {
    catalogue.close();
    await mirror.close();
    await stateParts?.close();
    throw error;
  }
  app.addHook('onClose', async () => {
    // Its last round first: it reads the store that closes next.
    await agent?.stop();
    await stateParts?.close();
    await mirror.close();
  });
  try {
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    catalogue.close();
    await app.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string') throw new StartError([describeListenError(error as NodeJS.ErrnoException, config.server.host, config.server.port)], { cause: error });
    throw error;
  }
  agent?.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const shownHost = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  logger.info(
    { url, listen: `${config.server.host}:${port}`, dataDir: config.paths.data, assetsDir: config.paths.assets, store: stateParts?.bootState.store.kind ?? 'off', ...(signer ? { signingKey: signer.fingerprint } : {}), ...(site ? { site: site.name, origin: site.origin, dataCopy: initialCopy?.info?.etag ?? 'none yet' } : {}), config: options.configLocation ?? config.source, ...(readiness().length > 0 ? { degraded: readiness() } : {}) },
    `bootdepot listening; machines chain ${config.server.baseUrl ?? url}/boot.ipxe`,
  );
  return {
    app,
    url,
    catalogue,
    site: agent,
    async close() {
      catalogue.close();
      // The app's onClose hooks flush pending events and close the store.
      await app.close();
    },
  };
}
