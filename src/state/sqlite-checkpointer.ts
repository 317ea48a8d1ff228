/**
 * Worker thread that checkpoints the SQLite WAL into the database file. A checkpoint fsyncs;
 * done by the serving connection (SQLite's automatic checkpoint) it would stall the event loop
 * for as long as the disk takes, which shows up as latency spikes in every script answer. Here
 * it runs beside it.
 *
 * A PASSIVE checkpoint never blocks the writer, but under a steady stream of writes it never
 * lets the WAL start over either: frames written while it runs are left for the next one, and
 * the WAL only restarts from its beginning when a checkpoint has copied every frame. So a flood
 * of writes grew it without end (a gigabyte for 80,000 requests). Hence, every `intervalMs`: a
 * PASSIVE checkpoint, which copies almost everything without blocking; then, when the WAL
 * held more than `resetBytes`, a TRUNCATE checkpoint, which copies the little that came since
 * and empties the file. The writer waits only for that remainder and one fsync, and the WAL
 * stays within about `resetBytes` plus what one interval brings (see docs/benchmarks.md).
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

const { file, intervalMs, resetBytes } = workerData as { file: string; intervalMs: number; resetBytes: number };
const db = new DatabaseSync(file);
db.exec(`PRAGMA busy_timeout = 1000; PRAGMA journal_size_limit = ${resetBytes};`);
const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
const resetPages = Math.max(1, Math.floor(resetBytes / pageSize));

interface CheckpointResult {
  busy: number;
  /** Frames in the WAL. */
  log: number;
  checkpointed: number;
}

const checkpoint = (mode: 'PASSIVE' | 'TRUNCATE') => db.prepare(`PRAGMA wal_checkpoint(${mode})`).get() as unknown as CheckpointResult;

const timer = setInterval(() => {
  try {
    const passive = checkpoint('PASSIVE');
    // Busy (the writer did not let go within busy_timeout): the next interval tries again.
    if (Number(passive.log) > resetPages) checkpoint('TRUNCATE');
  } catch (error) {
    parentPort?.postMessage({ error: (error as Error).message });
  }
}, intervalMs);

parentPort?.on('message', (message: unknown) => {
  if (message === 'stop') {
    clearInterval(timer);
    try {
      // A last full checkpoint leaves a tidy database file behind at shutdown.
      checkpoint('TRUNCATE');
    } catch {
      // the next start checkpoints anyway
    }
    db.close();
    parentPort?.postMessage({ stopped: true });
  }
});
