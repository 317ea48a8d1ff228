/**
 * One log line per download instead of one per request. A plain GET is logged when it ends.
 * Range requests (iPXE's sanboot reads a disk image in thousands of them, curl resumes, mirrors
 * fetch pieces) are gathered per client and file and logged once the client has been quiet
 * for `idleMs`.
 */
export interface DownloadRecord {
  client: string;
  /** The device's MAC, when the download belongs to a recorded boot. */
  mac?: string | undefined;
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** The body's length, when known (a short `bytes` against it: the transfer stopped early). */
  total?: number | undefined;
  /** False when the client left (or the file failed) before the body was complete. */
  complete: boolean;
  durationMs: number;
  /** True for 206 answers. */
  ranged: boolean;
}

interface RangeSession {
  client: string;
  mac?: string | undefined;
  path: string;
  requests: number;
  bytes: number;
  aborted: number;
  startedAt: number;
  lastAt: number;
  timer: NodeJS.Timeout;
}

export interface SummaryLogger {
  info(fields: object, message: string): void;
}

export interface DownloadLogOptions {
  /** Quiet time after which a client's range requests for a file are summarised. */
  idleMs?: number;
  now?: () => number;
}

/** The average speed of a transfer, rounded (a transfer under a millisecond counts as one). */
export function bytesPerSecond(bytes: number, ms: number): number {
  return Math.round((bytes * 1000) / Math.max(1, ms));
}

export class DownloadLog {
  private readonly sessions = new Map<string, RangeSession>();
  private readonly log: SummaryLogger;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(log: SummaryLogger, options: DownloadLogOptions = {}) {
    this.log = log;
    this.idleMs = options.idleMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  record(record: DownloadRecord): void {
    if (!record.ranged) {
      this.log.info(
        {
          path: record.path,
          client: record.client,
          ...(record.mac ? { mac: record.mac } : {}),
          status: record.status,
          bytes: record.bytes,
          ...(record.total !== undefined ? { total: record.total } : {}),
          ms: Math.round(record.durationMs),
          bytesPerSecond: bytesPerSecond(record.bytes, record.durationMs),
          outcome: record.complete ? 'complete' : 'aborted',
        },
        'download',
      );
      return;
    }
    const key = `${record.client}\0${record.path}`;
    const now = this.now();
    let session = this.sessions.get(key);
    if (session) clearTimeout(session.timer);
    else {
      session = { client: record.client, mac: record.mac, path: record.path, requests: 0, bytes: 0, aborted: 0, startedAt: now - record.durationMs, lastAt: now, timer: undefined as unknown as NodeJS.Timeout };
      this.sessions.set(key, session);
    }
    session.requests += 1;
    session.bytes += record.bytes;
    if (!record.complete) session.aborted += 1;
    session.lastAt = now;
    const current = session;
    session.timer = setTimeout(() => this.flushSession(key, current), this.idleMs);
    session.timer.unref();
  }

  private flushSession(key: string, session: RangeSession): void {
    clearTimeout(session.timer);
    this.sessions.delete(key);
    this.log.info(
      {
        path: session.path,
        client: session.client,
        ...(session.mac ? { mac: session.mac } : {}),
        requests: session.requests,
        bytes: session.bytes,
        ms: Math.round(session.lastAt - session.startedAt),
        outcome: session.aborted === 0 ? 'complete' : `${session.aborted} aborted`,
      },
      'ranged download',
    );
  }

  /** Logs every open session now (at shutdown). */
  flush(): void {
    for (const [key, session] of [...this.sessions]) this.flushSession(key, session);
  }
}
