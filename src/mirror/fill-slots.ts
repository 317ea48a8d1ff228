/**
 * Slots for upstream transfers: at most `global` at once, and at most each mirror's own limit,
 * so requests for many new paths cannot open as many connections to a release server. Beyond
 * the limits transfers wait in one queue (first come, first served, except that urgent ones,
 * the DIGESTS a running fill is waiting for, go first); beyond `maxQueued` waiting transfers
 * new ones are refused, and the caller answers 503 with Retry-After.
 */

import { HttpError } from '../common/http-error.ts';

/** The queue is full: the caller answers 503 and asks the client to come back. */
export class SlotsFullError extends HttpError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(503, message);
    this.name = 'SlotsFullError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Seconds a refused client is asked to wait before trying again. */
export const RETRY_AFTER_SECONDS = 5;

interface Waiter {
  mirror: string;
  limit: number;
  urgent: boolean;
  grant: (release: () => void) => void;
  reject: (error: Error) => void;
}

export class FillSlots {
  private readonly global: number;
  private readonly maxQueued: number;
  private running = 0;
  private readonly perMirror = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(global: number, maxQueued: number) {
    this.global = global;
    this.maxQueued = maxQueued;
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** True when a transfer for this mirror would start at once. */
  private free(mirror: string, limit: number): boolean {
    return this.running < this.global && (this.perMirror.get(mirror) ?? 0) < limit;
  }

  /**
   * Throws {@link SlotsFullError} when a new transfer for `mirror` could neither start nor
   * wait. Synchronous, so the caller can refuse before it registers anything.
   */
  checkRoom(mirror: string, limit: number, urgent = false): void {
    if (urgent || this.free(mirror, limit) || this.queue.length < this.maxQueued) return;
    throw new SlotsFullError(`too many upstream transfers at once (${this.running} running, ${this.queue.length} waiting); try again in ${RETRY_AFTER_SECONDS} s`, RETRY_AFTER_SECONDS);
  }

  /**
   * Resolves with a release function once the transfer may run; rejects when the signal aborts
   * first (the transfer then never ran and takes no slot).
   */
  acquire(mirror: string, limit: number, options: { urgent?: boolean; signal?: AbortSignal } = {}): Promise<() => void> {
    const urgent = options.urgent ?? false;
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    // Within a mirror, first come first served; a mirror with room does not wait behind a full one.
    if (this.free(mirror, limit) && (urgent || !this.queue.some((queued) => queued.mirror === mirror))) return Promise.resolve(this.take(mirror));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        reject(signal?.reason as Error);
      };
      const waiter: Waiter = {
        mirror,
        limit,
        urgent,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject,
      };
      // Urgent transfers go ahead of every ordinary one (after earlier urgent ones).
      if (urgent) {
        const firstOrdinary = this.queue.findIndex((queued) => !queued.urgent);
        this.queue.splice(firstOrdinary < 0 ? this.queue.length : firstOrdinary, 0, waiter);
      } else this.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private take(mirror: string): () => void {
    this.running += 1;
    this.perMirror.set(mirror, (this.perMirror.get(mirror) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running -= 1;
      const left = (this.perMirror.get(mirror) ?? 1) - 1;
      if (left === 0) this.perMirror.delete(mirror);
      else this.perMirror.set(mirror, left);
      this.grantWaiting();
    };
  }

  /** Starts the first waiting transfers whose mirror has room (a full mirror does not block others). */
  private grantWaiting(): void {
    for (let i = 0; i < this.queue.length && this.running < this.global; ) {
      const waiter = this.queue[i] as Waiter;
      if ((this.perMirror.get(waiter.mirror) ?? 0) < waiter.limit) {
        this.queue.splice(i, 1);
        waiter.grant(this.take(waiter.mirror));
      } else i += 1;
    }
  }
}
