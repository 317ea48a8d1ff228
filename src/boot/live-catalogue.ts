/**
 * Keeps the catalogue in service current: loads it at start, reloads it when anything under the
 * data directory changes (and on demand), and logs each load's problems once.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { formatProblem, type Problem } from '../common/problems.ts';
import { loadCatalogue, type Catalogue } from './catalogue.ts';
import { DATA_FOLDERS, isDataFolder } from './data-folders.ts';
import { saveLastGood } from './last-good.ts';

export interface LiveCatalogue {
  current(): Catalogue;
  /** Loads the data directory again; the new catalogue replaces the old one in one step. */
  reload(): Promise<Catalogue>;
  /**
   * Serves another data directory from now on (a site's new copy of its origin's data): loaded
   * like a reload, and every later reload reads it. A load in progress finishes first.
   */
  switchTo(dataDir: string): Promise<Catalogue>;
  /** Runs the audit again over the catalogue in service (e.g. when what it reports changed). */
  recheck(): Promise<Catalogue>;
  /** The data directory in service. */
  readonly dataDir: string;
  /** Starts reloading on file changes. */
  watch(): void;
  close(): void;
}

const RELOAD_DEBOUNCE_MS = 150;
/**
 * Watches the data directory itself and each data folder, not the tree: Node watches a tree on
 * Linux in JavaScript, with a synchronous stat and readdir for every change under it, and the
 * SQLite store lives in the data directory by default, so every write of boot state cost the
 * event loop a walk (milliseconds each, many per second in a boot storm). The top-level watch
 * only notices folders appearing or being replaced, and ignores the store's files by name.
 */
function watchDataDir(dataDir: string, changed: () => void, failed: (error: Error) => void): { close(): void } {
  const folders = new Map<string, FSWatcher>();
  const attach = (name: string) => {
    folders.get(name)?.close();
    folders.delete(name);
    try {
      const folder = watch(path.join(dataDir, name), { persistent: false }, changed);
      // A folder removed or replaced ends its watch; the top-level watch attaches the new one.
      folder.on('error', () => {
        folder.close();
        if (folders.get(name) === folder) folders.delete(name);
      });
      folders.set(name, folder);
    } catch {
      // Not there (yet): the top-level watch attaches it when it appears.
    }
  };
  const top = watch(dataDir, { persistent: false }, (_event, file) => {
    const name = file === null ? undefined : String(file);
    if (name !== undefined && !isDataFolder(name)) return;
    if (name === undefined) DATA_FOLDERS.forEach(attach);
    else attach(name);
    changed();
  });
  top.on('error', failed);
  DATA_FOLDERS.forEach(attach);
  return {
    close() {
      top.close();
      for (const folder of folders.values()) folder.close();
      folders.clear();
    },
  };
}

export interface LiveCatalogueOptions {
  /**
   * Problems beyond the files' own (what each group's machines would get: `auditCatalogue`),
   * folded into the catalogue's problems so the server reports what `check` reports. Run after
   * every load and every {@link auditIntervalMs}, since images come and go without a reload.
   */
  audit?: (catalogue: Catalogue) => Promise<Problem[]>;
  auditIntervalMs?: number;
  /** Keep last good versions of data files here (read, and written after every load). */
  lastGoodDir?: string;
}

const AUDIT_INTERVAL_MS = 30_000;

export async function openLiveCatalogue(initialDataDir: string, log: Logger, options: LiveCatalogueOptions = {}): Promise<LiveCatalogue> {
  const { audit } = options;
  let dataDir = initialDataDir;
  /** The files' own problems of the catalogue in service, before audit problems are added. */
  let fileProblems: readonly Problem[] = [];
  async function withAudit(loaded: Catalogue): Promise<Catalogue> {
    fileProblems = loaded.problems;
    if (!audit) return loaded;
    let audited: Problem[];
    try {
      audited = await audit(loaded);
    } catch (error) {
      audited = [{ source: dataDir, message: `checking what groups' machines would get failed: ${(error as Error).message}` }];
    }
    return { ...loaded, problems: [...loaded.problems, ...audited] };
  }
  const lastGood = options.lastGoodDir ? { dir: options.lastGoodDir } : undefined;
  let saveFailed = false;
  async function save(loaded: Catalogue): Promise<void> {
    if (!lastGood) return;
    try {
      await saveLastGood(lastGood.dir, loaded);
      saveFailed = false;
    } catch (error) {
      if (!saveFailed) log.error({ err: error, dir: lastGood.dir }, 'cannot save last good versions of data files; a broken file will not survive a restart');
      saveFailed = true;
    }
  }
  let catalogue = await withAudit(await loadCatalogue(dataDir, undefined, lastGood));
  await save(catalogue);
  let lastReport = '';
  let watcher: { close(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let loading: Promise<Catalogue> | undefined;
  let again = false;

  function report(next: Catalogue): void {
    const text = next.problems.map(formatProblem).join('\n');
    if (text === lastReport) return;
    lastReport = text;
    for (const problem of next.problems) log.warn({ problem }, `data: ${formatProblem(problem)}`);
  }
  report(catalogue);
  log.info(
    { dataDir, profiles: catalogue.profiles.size, groups: catalogue.groups.length, problems: catalogue.problems.length },
    'data loaded',
  );

  async function reload(): Promise<Catalogue> {
    // One load at a time; changes that arrive during a load trigger exactly one more.
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        do {
          again = false;
          const next = await withAudit(await loadCatalogue(dataDir, catalogue, lastGood));
          catalogue = next;
          await save(next);
          report(next);
        } while (again);
        log.info({ profiles: catalogue.profiles.size, groups: catalogue.groups.length, problems: catalogue.problems.length }, 'data reloaded');
        return catalogue;
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  }

  async function recheck(): Promise<Catalogue> {
    if (loading) return loading;
    const base = catalogue;
    const next = await withAudit({ ...base, problems: fileProblems });
    // A reload that finished meanwhile has its own, newer audit.
    if (catalogue !== base) return catalogue;
    catalogue = next;
    report(next);
    return next;
  }

  let auditTimer: NodeJS.Timeout | undefined;
  if (audit) {
    auditTimer = setInterval(() => {
      if (loading) return;
      recheck().catch((error: unknown) => log.error({ err: error }, 'data audit failed'));
    }, options.auditIntervalMs ?? AUDIT_INTERVAL_MS);
    auditTimer.unref();
  }

  return {
    current: () => catalogue,
    reload,
    recheck,
    get dataDir() {
      return dataDir;
    },
    switchTo(next: string): Promise<Catalogue> {
      dataDir = next;
      return reload();
    },
    watch() {
      if (watcher) return;
      try {
        watcher = watchDataDir(
          dataDir,
          () => {
            clearTimeout(timer);
            timer = setTimeout(() => {
              reload().catch((error: unknown) => log.error({ err: error }, 'data reload failed'));
            }, RELOAD_DEBOUNCE_MS);
          },
          (error) => log.error({ err: error }, 'watching the data directory failed; send SIGHUP to reload'),
        );
      } catch (error) {
        log.warn({ err: error, dataDir }, 'cannot watch the data directory; send SIGHUP to reload');
      }
    },
    close() {
      clearTimeout(timer);
      clearInterval(auditTimer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
