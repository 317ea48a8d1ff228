/**
 * Recording events without making serving slow or fragile.
 *
 * Events are committed in groups: whatever arrives while a commit is running goes into the
 * next one, so a boot storm costs a few transactions, not one per request, and each caller
 * still learns whether its event is durable. A store that fails or hangs (timeout) loses the
 * batch: every lost event is logged and counted, and the caller carries on, because a machine
 * must boot even when the database is down.
 */
import type { NewEvent, StoredEvent } from './model.ts';
import type { DeviceStore } from './store.ts';

export interface RecorderLogger {
  error(fields: object, message: string): void;
}

export interface RecorderStats {
  recorded: number;
  lost: number;
  batches: number;
}

export interface RecorderOptions {
  /** Events per transaction at most. */
  maxBatch?: number;
  /** A commit slower than this counts as failed (its events as lost). */
  timeoutMs?: number;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Pending {
  event: NewEvent;
  resolve: (stored: StoredEvent | undefined) => void;
}

export class EventRecorder {
  readonly stats: RecorderStats = { recorded: 0, lost: 0, batches: 0 };
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private readonly store: DeviceStore;
  private readonly log: RecorderLogger;
  private readonly maxBatch: number;
  private readonly timeoutMs: number;

  constructor(store: DeviceStore, log: RecorderLogger, options: RecorderOptions = {}) {
    this.store = store;
    this.log = log;
    this.maxBatch = options.maxBatch ?? 500;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /** Resolves with the stored event once committed, or undefined when it was lost. Never rejects. */
  record(event: NewEvent): Promise<StoredEvent | undefined> {
    return new Promise((resolve) => {
      this.queue.push({ event, resolve });
      // Start on the next turn so that events of the same burst share a transaction.
      this.running ??= new Promise<void>((done) => setImmediate(done)).then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const stored = await withTimeout(this.store.recordEvents(batch.map((p) => p.event)), this.timeoutMs, 'recording events');
          this.stats.recorded += batch.length;
          this.stats.batches += 1;
          batch.forEach((pending, i) => pending.resolve(stored[i]));
        } catch (error) {
          this.stats.lost += batch.length;
          this.log.error(
            { err: error, lost: batch.length, events: batch.slice(0, 20).map((p) => ({ device: p.event.deviceId, type: p.event.detail.type, boot: p.event.bootId })) },
            'device store unavailable: events lost (machines keep booting)',
          );
          for (const pending of batch) pending.resolve(undefined);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Waits until everything queued so far is committed or lost. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }
}
