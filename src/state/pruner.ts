/**
 * Keeps the device store bounded: events past the retention and past the per-device cap,
 * devices whose every event expired (unless an operator set their next boot), and the oldest
 * devices that never booted beyond `state.maxUnknownDevices`.
 *
 * The store prunes in bounded steps (see DeviceStore.prune); this loop runs them one after the
 * other with a turn of the event loop between, so requests keep being answered while a large
 * backlog (a million expired events, say) goes, instead of waiting for one long statement.
 */
import type { DeviceStore } from './store.ts';

export interface PruneSettings {
  retentionDays: number;
  maxEventsPerDevice: number;
}

export interface PrunerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface Pruner {
  /** Runs one whole pass now (steps until nothing is left); resolves with the rows removed. */
  runOnce(): Promise<number>;
  /** Stops the timer and any pass in progress after its current step. */
  stop(): void;
}

export const PRUNE_EVERY_MS = 10 * 60 * 1000;

/** A pass never runs longer than this many steps, whatever happens meanwhile (a flood that keeps up with it). */
const MAX_STEPS_PER_PASS = 100_000;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createPruner(store: DeviceStore, settings: PruneSettings, now: () => number = Date.now): Pruner {
  let stopped = false;
  let running: Promise<number> | undefined;
  const pass = async (): Promise<number> => {
    const before = new Date(now() - settings.retentionDays * 86_400_000);
    let removed = 0;
    for (let step = 0; step < MAX_STEPS_PER_PASS && !stopped; step++) {
      const rows = await store.prune(before, settings.maxEventsPerDevice);
      if (rows === 0) break;
      removed += rows;
      await nextTurn();
    }
    return removed;
  };
  return {
    runOnce() {
      // One pass at a time: a slow pass is not overtaken by the next tick.
      running ??= pass().finally(() => {
        running = undefined;
      });
      return running;
    },
    stop() {
      stopped = true;
    },
  };
}

/** Prunes now and every {@link PRUNE_EVERY_MS}; failures are logged and retried at the next tick. */
export function startPruning(store: DeviceStore, settings: PruneSettings, logger: PrunerLogger): Pruner {
  const pruner = createPruner(store, settings);
  const tick = () => {
    pruner
      .runOnce()
      .then((removed) => removed > 0 && logger.info({ removed }, 'old boot history pruned'))
      .catch((error: unknown) => logger.warn({ err: error }, 'pruning boot history failed'));
  };
  tick();
  const timer = setInterval(tick, PRUNE_EVERY_MS);
  timer.unref();
  return {
    runOnce: () => pruner.runOnce(),
    stop() {
      clearInterval(timer);
      pruner.stop();
    },
  };
}
