/**
 * Worker thread that checkpoints the SQLite WAL into the database file. A checkpoint fsyncs;
 * done by the serving connection (SQLite's automatic checkpoint) it would stall the event loop
 * for as long as the disk takes, which shows up as latency spikes in every script answer. Here
 * it runs beside it, PASSIVE, so it never blocks the writer.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new DatabaseSync(file);
db.exec('PRAGMA busy_timeout = 1000;');

const timer = setInterval(() => {
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE);');
  } catch (error) {
    parentPort?.postMessage({ error: (error as Error).message });
  }
}, intervalMs);

parentPort?.on('message', (message: unknown) => {
  if (message === 'stop') {
    clearInterval(timer);
    try {
      // A last full checkpoint leaves a tidy database file behind at shutdown.
      db.exec('PRAGMA wal_checkpoint(TRUNCATE);');
    } catch {
      // the next start checkpoints anyway
    }
    db.close();
    parentPort?.postMessage({ stopped: true });
  }
});
