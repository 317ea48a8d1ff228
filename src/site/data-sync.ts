/**
 * A site's copy of its origin's data directory (docs/sites.md): asks the origin for the data
 * document with If-None-Match, writes a changed one as a complete new copy, checks it as
 * `bootdepot check` checks files, and only then puts it in service (the live catalogue switches
 * to it in one step). A copy that fails the check is not applied; an origin that cannot be
 * reached changes nothing. Either way the site goes on booting the last good copy and says why:
 * in the log, on /metrics and as a problem beside the data's own (the dashboard, the API).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { loadCatalogue } from '../boot/catalogue.ts';
import type { LiveCatalogue } from '../boot/live-catalogue.ts';
import { formatProblem, isWarning, type Problem } from '../common/problems.ts';
import type { DataCopies} from './data-document.ts';
import { DEFAULT_DATA_LIMITS, parseDataDocument, type CopyInfo, type DataLimits } from './data-document.ts';
import type { OriginClient } from './origin-client.ts';

export interface DataSyncStatus {
  /** The ETag of the copy in service; null before the first. */
  etag: string | null;
  appliedAt: string | null;
  /** When the origin last answered a sync (200 or 304). */
  lastSyncAt: string | null;
  /** Why the last sync failed (origin unreachable, refused, a bad document); null when it worked. */
  lastSyncError: string | null;
  /** Since when syncs fail; null when the last one worked. */
  failingSince: string | null;
  /** The origin's newest copy when it failed the check, and its problems; null otherwise. */
  rejected: { etag: string; at: string; problems: string[] } | null;
  /** Syncs in a row that failed. */
  failures: number;
  /** Copies put in service and refused since start. */
  applied: number;
  refused: number;
}

export type SyncOutcome = 'applied' | 'unchanged' | 'rejected' | 'failed';

export interface DataSyncOptions {
  client: OriginClient;
  copies: DataCopies;
  catalogue: Pick<LiveCatalogue, 'switchTo' | 'recheck'>;
  log: Logger;
  /** The copy in service at start (from {@link DataCopies.current}). */
  initial?: { dir: string; info: CopyInfo | undefined } | undefined;
  limits?: DataLimits;
  /** Problems that keep a copy out of service; by default its files' own, as `check` finds them. */
  check?: (dir: string) => Promise<Problem[]>;
}

/** Problems of a refused copy shown at most (the rest are counted). */
const SHOWN_PROBLEMS = 20;

/** The errors `bootdepot check` reports for the files of a data directory. */
export async function checkDataFiles(dir: string): Promise<Problem[]> {
  const catalogue = await loadCatalogue(dir);
  return catalogue.problems.filter((problem) => !isWarning(problem));
}

export class DataSync {
  private readonly options: DataSyncOptions;
  private readonly limits: DataLimits;
  private inService: { dir: string; etag: string | null } | undefined;
  private previousDir: string | undefined;
  private loggedError: string | undefined;
  private readonly state: DataSyncStatus = {
    etag: null,
    appliedAt: null,
    lastSyncAt: null,
    lastSyncError: null,
    failingSince: null,
    rejected: null,
    failures: 0,
    applied: 0,
    refused: 0,
  };

  constructor(options: DataSyncOptions) {
    this.options = options;
    this.limits = options.limits ?? DEFAULT_DATA_LIMITS;
    if (options.initial) {
      this.inService = { dir: options.initial.dir, etag: options.initial.info?.etag ?? null };
      this.state.etag = options.initial.info?.etag ?? null;
      this.state.appliedAt = options.initial.info?.fetchedAt ?? null;
    }
  }

  status(): Readonly<DataSyncStatus> {
    return { ...this.state };
  }

  /** What the site's problems list says about its copy (folded into the catalogue's problems). */
  problems(): Problem[] {
    const source = `origin data (${this.options.client.origin})`;
    const problems: Problem[] = [];
    const serving = this.state.etag ? `serving the copy ${this.state.etag} applied ${this.state.appliedAt ?? '(time unknown)'}` : 'no copy yet: machines wait, since nothing matches';
    if (!this.state.etag) {
      problems.push({ source, message: `no copy of the origin's data yet${this.state.lastSyncError ? `: ${this.state.lastSyncError}` : ' (first sync pending)'}` });
    } else if (this.state.lastSyncError) {
      // No attempt count: the text changes only with the cause, so the log says it once.
      problems.push({ source, message: `sync failing since ${this.state.failingSince ?? '?'}: ${this.state.lastSyncError}; ${serving}` });
    }
    const { rejected } = this.state;
    if (rejected) {
      problems.push({ source, message: `the origin's copy ${rejected.etag} fails the check and is not applied (${rejected.problems.length} problem(s)); ${serving}` });
      for (const text of rejected.problems.slice(0, SHOWN_PROBLEMS)) problems.push({ source, message: `not applied: ${text}` });
    }
    return problems;
  }

  private failed(message: string): SyncOutcome {
    const now = new Date().toISOString();
    this.state.lastSyncError = message;
    this.state.failures += 1;
    this.state.failingSince ??= now;
    // Loud once per cause; an outage's repeats are not a line every interval.
    if (message !== this.loggedError) {
      this.loggedError = message;
      this.options.log.warn({ origin: this.options.client.origin, etag: this.state.etag, error: message }, `site data sync failed: ${message}; ${this.state.etag ? `still serving the copy ${this.state.etag}` : 'no copy yet'}`);
    }
    return 'failed';
  }

  private succeeded(): void {
    if (this.state.lastSyncError) this.options.log.info({ origin: this.options.client.origin, failures: this.state.failures }, 'site data sync works again');
    this.state.lastSyncAt = new Date().toISOString();
    this.state.lastSyncError = null;
    this.state.failingSince = null;
    this.state.failures = 0;
    this.loggedError = undefined;
  }

  /** One sync; resolves with what happened (never rejects). The catalogue's problems are refreshed after. */
  async syncOnce(): Promise<SyncOutcome> {
    const before = JSON.stringify(this.problems());
    let outcome: SyncOutcome;
    try {
      outcome = await this.attempt();
    } catch (error) {
      outcome = this.failed((error as Error).message);
    }
    if (outcome !== 'applied' && JSON.stringify(this.problems()) !== before) {
      await this.options.catalogue.recheck().catch((error: unknown) => this.options.log.error({ err: error }, 'data audit failed'));
    }
    return outcome;
  }

  private async attempt(): Promise<SyncOutcome> {
    const known = [this.state.etag, this.state.rejected?.etag].filter((etag): etag is string => typeof etag === 'string');
    const answer = await this.options.client.fetchData(known.length > 0 ? known.join(', ') : undefined, this.limits.maxBytes);
    if (answer.unchanged) {
      this.succeeded();
      // The origin went back to the copy in service: the refused one is history.
      if (answer.etag !== undefined && answer.etag === this.state.etag) this.state.rejected = null;
      return 'unchanged';
    }
    if (answer.etag === this.state.etag) {
      // Sent whole although unchanged (an origin that ignores If-None-Match): nothing to do.
      this.succeeded();
      this.state.rejected = null;
      return 'unchanged';
    }
    const document = parseDataDocument(answer.body, this.limits);
    const { copies, log } = this.options;
    const info: CopyInfo = { etag: answer.etag, origin: this.options.client.origin, fetchedAt: new Date().toISOString(), files: Object.keys(document.files).length };
    const dir = await copies.write(document, info);
    let problems: Problem[];
    try {
      problems = await (this.options.check ?? checkDataFiles)(dir);
    } catch (error) {
      await copies.discard(dir);
      throw error;
    }
    this.succeeded();
    if (problems.length > 0) {
      await copies.discard(dir);
      const texts = problems.map((problem) => formatProblem({ ...problem, source: relativeSource(dir, problem.source) }));
      this.state.rejected = { etag: answer.etag, at: info.fetchedAt, problems: texts };
      this.state.refused += 1;
      log.warn({ origin: info.origin, etag: answer.etag, problems: texts.slice(0, SHOWN_PROBLEMS) }, `the origin's data ${answer.etag} fails the check (${texts.length} problem(s)): not applied; ${this.state.etag ? `still serving ${this.state.etag}` : 'no copy in service yet'}`);
      return 'rejected';
    }
    await copies.apply(dir);
    this.previousDir = this.inService?.dir;
    this.inService = { dir, etag: answer.etag };
    this.state.etag = answer.etag;
    this.state.appliedAt = info.fetchedAt;
    this.state.rejected = null;
    this.state.applied += 1;
    await this.options.catalogue.switchTo(dir);
    // The copy before stays until the next one: a load that began on it may still be reading.
    await copies.prune([dir, ...(this.previousDir ? [this.previousDir] : [])]).catch((error: unknown) => log.warn({ err: error }, 'cannot remove old data copies'));
    log.info({ origin: info.origin, etag: answer.etag, files: info.files, skipped: document.skipped.length > 0 ? document.skipped : undefined }, `site data: applied the origin's copy ${answer.etag} (${info.files} files)`);
    return 'applied';
  }
}

/** A problem's source inside a written copy, as the origin's data directory names it. */
function relativeSource(dir: string, source: string): string {
  if (!path.isAbsolute(source)) return `origin:${source}`;
  const relative = path.relative(dir, source);
  return relative === '' ? 'origin:' : relative.startsWith('..') ? source : `origin:${relative.split(path.sep).join('/')}`;
}
