/**
 * Admission control for the wire: at most `limit` large downloads send their bodies at once;
 * the others wait their turn, first come, first served. On a link that cannot carry every
 * machine of a storm at full speed, sharing it among all of them makes every machine late;
 * taking them a few at a time finishes each admitted machine sooner, and the last no later.
 *
 * A queued download already has its status line and headers (the client sees its first byte
 * at once) and waits only for its body. Nobody waits past `maxWaitMs`: then the body starts
 * anyway, over the limit, because a machine that gives up (iPXE) or a connection cut for
 * idleness costs more than a busier link. Off (`limit` 0) by default; small bodies (scripts,
 * configs, checksums) never wait.
 */
import { ClientGoneError } from './file-stream.ts';

/** Bodies smaller than this are never held back. */
export const LARGE_DOWNLOAD_BYTES = 1024 * 1024;

export interface AdmissionStats {
  active: number;
  queued: number;
  /** Downloads that waited `maxWaitMs` and then started over the limit. */
  overdue: number;
}

interface Waiter {
  grant(): void;
}

export class DownloadAdmission {
  private readonly limit: number;
  private readonly maxWaitMs: number;
  private active = 0;
  private overdue = 0;
  private readonly queue: Waiter[] = [];

  constructor(limit: number, maxWaitMs: number) {
    this.limit = limit;
    this.maxWaitMs = maxWaitMs;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  stats(): AdmissionStats {
    return { active: this.active, queued: this.queue.length, overdue: this.overdue };
  }

  /** True when a body of this size would have to wait for its turn now. */
  wouldWait(bodyBytes: number): boolean {
    return this.enabled && bodyBytes >= LARGE_DOWNLOAD_BYTES && (this.active >= this.limit || this.queue.length > 0);
  }

  /**
   * Resolves with the release to call when the body is done, once the download may send it.
   * Rejects with ClientGoneError when `signal` aborts while it waits.
   */
  admit(bodyBytes: number, signal: AbortSignal): Promise<() => void> {
    if (!this.enabled || bodyBytes < LARGE_DOWNLOAD_BYTES) return Promise.resolve(noop);
    if (signal.aborted) return Promise.reject(new ClientGoneError());
    if (this.active < this.limit && this.queue.length === 0) return Promise.resolve(this.start());
    return new Promise((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const index = this.queue.indexOf(waiter);
        if (index >= 0) this.queue.splice(index, 1);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          resolve(this.start());
        },
      };
      const onAbort = () => {
        leave();
        reject(new ClientGoneError());
      };
      const timer = setTimeout(() => {
        this.overdue += 1;
        waiter.grant();
      }, this.maxWaitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private start(): () => void {
    this.active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      if (this.active < this.limit) this.queue[0]?.grant();
    };
  }
}

function noop(): void {}

/** The admission's state for /metrics (read when Prometheus scrapes). */
export function admissionGauges(admission: DownloadAdmission): Record<string, { help: string; value: number }> {
  const { active, queued, overdue } = admission.stats();
  return {
    bootdepot_downloads_admitted: { help: 'Large downloads sending their bodies under assets.maxActiveDownloads', value: active },
    bootdepot_downloads_queued: { help: 'Large downloads waiting for their turn (headers sent)', value: queued },
    bootdepot_downloads_overdue: { help: 'Large downloads that waited assets.downloadQueueSeconds and started over the limit (since start)', value: overdue },
  };
}
