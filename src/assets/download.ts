/**
 * The one download path: `/assets`, `/mirror` and their `/b/<boot>/` forms all answer through
 * {@link DownloadResponder}. The caller resolves what to send first (an open file, a cached
 * object, a growing fill) without touching the reply; an answer that is no file (404, 502, 503)
 * goes back through Fastify (its error handler, its request log). Only then is the reply taken
 * over and the content streamed with the shared buffer pool. Here, and only here, a download is
 * recorded: the boot's observer hears `started` when a body starts (a HEAD or a 304 is no
 * download), the metrics count it, and the download log writes its one summary line.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../common/http-error.ts';
import type { RequestHeaders } from './conditional.ts';
import type { DownloadAdmission } from './admission.ts';
import { DownloadLog } from './download-log.ts';
import { ClientGoneError, type BufferPool } from './file-stream.ts';
import type { BodyStart } from './send-file.ts';

/** A download still running: bytes sent so far, of `total` when the length is known. */
export interface DownloadProgress {
  bytes: number;
  total?: number | undefined;
  /** Milliseconds since the body started. */
  ms: number;
  /** Bytes a second since the previous progress (or the start). */
  rate: number;
}

/** Told when a download with a body starts, how far it got while it runs, and how it ended (for boot tracking). */
export interface DownloadObserver {
  /** `total`: the body's length, when known. */
  started(total?: number): void;
  /**
   * At most once per progress interval, when bytes went out since the last time; once more
   * (with `rate` 0) when they stopped, so a stalled download does not keep its last speed.
   */
  progress?(progress: DownloadProgress): void;
  /** `ms`: since the body started (absent for answers without one). */
  finished(outcome: { status: number; bytes: number; complete: boolean; ms?: number }): void;
}

/** How often a running download's progress is told to its observer by default. */
export const PROGRESS_INTERVAL_MS = 1000;

/** What streaming needs from the request, and reports back while it runs. */
export interface StreamIo {
  method: string;
  headers: RequestHeaders;
  pool: BufferPool;
  /** Body bytes the socket has taken; still meaningful when the transfer breaks. */
  sent: { bytes: number };
  /** To be awaited once the headers are out and a body is about to be streamed (admission may hold it). */
  onBody: BodyStart;
  /** Aborts when the client has gone. */
  signal: AbortSignal;
}

export interface StreamOutcome {
  status: number;
  /** Body bytes written. */
  bytes: number;
  /** For the request line of answers without a body (e.g. `cache`, `fill`). */
  from?: string;
}

/** What a request resolved to, before the reply is touched. */
export type Download =
  /** No file: answered through Fastify as a short text. */
  | { kind: 'answer'; status: number; message: string; retryAfter?: number }
  /** Content to stream: `stream` writes status, headers and body to the raw response. */
  | { kind: 'content'; stream(res: ServerResponse, io: StreamIo): Promise<StreamOutcome>; release?(): void | Promise<void> };

export interface DownloadMetrics {
  downloads: { inc(labels: { outcome: 'complete' | 'aborted' }): void };
  downloadBytes: { inc(value: number): void };
}

export interface DownloadResponderOptions {
  pool: BufferPool;
  log: FastifyBaseLogger;
  metrics: DownloadMetrics;
  /** Holds large bodies back beyond a number at once (see admission.ts); none: no limit. */
  admission?: DownloadAdmission;
  /** Milliseconds between a running download's progress reports (default {@link PROGRESS_INTERVAL_MS}). */
  progressIntervalMs?: number;
}

export class DownloadResponder {
  readonly pool: BufferPool;
  private readonly downloads: DownloadLog;
  private readonly metrics: DownloadMetrics;
  private readonly admission: DownloadAdmission | undefined;
  private readonly progressIntervalMs: number;

  constructor(options: DownloadResponderOptions) {
    this.pool = options.pool;
    this.progressIntervalMs = options.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
    this.metrics = options.metrics;
    this.admission = options.admission;
    this.downloads = new DownloadLog(options.log);
  }

  /** Writes out the summary lines of ranged sessions still open (at close). */
  flush(): void {
    this.downloads.flush();
  }

  /**
   * Answers one request. `logPath` names the file in the download log (`linuxkit/x-kernel`,
   * `mirror/NAME/PATH`); `left` aborts when the client hangs up (the caller may have passed it
   * to the resolution already, so a fill stops being wanted).
   */
  async respond(request: FastifyRequest, reply: FastifyReply, download: Download, logPath: string, observer: DownloadObserver | undefined, left: AbortController): Promise<void> {
    if (download.kind === 'answer') {
      if (download.retryAfter !== undefined) void reply.header('retry-after', String(download.retryAfter));
      await reply.code(download.status).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(`${download.message}\n`);
      // The boot's history shows the failed download with its status.
      if (request.method === 'GET') {
        observer?.started();
        observer?.finished({ status: download.status, bytes: 0, complete: false });
      }
      return;
    }
    const started = performance.now();
    reply.hijack();
    // This handler writes its own line: a download summary, or the usual request line.
    reply.quietRequestLog = true;
    const res = reply.raw;
    res.once('close', () => left.abort());
    const sent = { bytes: 0 };
    let announced = false;
    let admitted: (() => void) | undefined;
    let bodyStarted = started;
    // One timer per tracked download reads the byte count: nothing is done per chunk.
    let ticker: NodeJS.Timeout | undefined;
    const stopProgress = () => {
      clearInterval(ticker);
      ticker = undefined;
    };
    const startProgress = (total: number | undefined) => {
      const report = observer?.progress?.bind(observer);
      if (!report) return;
      let lastBytes = 0;
      let lastAt = bodyStarted;
      let stalled = false;
      ticker = setInterval(() => {
        const now = performance.now();
        if (sent.bytes === lastBytes) {
          if (!stalled && lastBytes > 0) report({ bytes: sent.bytes, total, ms: Math.round(now - bodyStarted), rate: 0 });
          stalled = true;
          return;
        }
        stalled = false;
        const rate = Math.round(((sent.bytes - lastBytes) * 1000) / Math.max(1, now - lastAt));
        lastBytes = sent.bytes;
        lastAt = now;
        report({ bytes: sent.bytes, total, ms: Math.round(now - bodyStarted), rate });
      }, this.progressIntervalMs);
      ticker.unref();
    };
    const bodyMs = () => Math.round(performance.now() - bodyStarted);
    let bodyTotal: number | undefined;
    const summary = (status: number, bytes: number, complete: boolean) => {
      this.downloads.record({ client: request.ip, mac: request.deviceMac, path: logPath, status, bytes, total: bodyTotal, complete, durationMs: performance.now() - started, ranged: status === 206 });
    };
    try {
      const outcome = await download.stream(res, {
        method: request.method,
        headers: request.headers,
        pool: this.pool,
        sent,
        signal: left.signal,
        onBody: async (_status, bodyBytes) => {
          if (!announced) {
            announced = true;
            bodyStarted = performance.now();
            bodyTotal = bodyBytes;
            observer?.started(bodyBytes);
            startProgress(bodyBytes);
          }
          if (!this.admission || admitted) return;
          const bytes = bodyBytes ?? Number.POSITIVE_INFINITY;
          // A queued machine gets its status line and headers now: its first byte, while the body waits.
          if (this.admission.wouldWait(bytes)) res.flushHeaders();
          admitted = await this.admission.admit(bytes, left.signal);
        },
      });
      stopProgress();
      if (announced && outcome.bytes > 0) {
        this.metrics.downloads.inc({ outcome: 'complete' });
        this.metrics.downloadBytes.inc(outcome.bytes);
        summary(outcome.status, outcome.bytes, true);
      } else {
        request.log.info({ method: request.method, url: request.url, status: outcome.status, ...(outcome.from ? { from: outcome.from } : {}), ms: Math.round((performance.now() - started) * 10) / 10, client: request.ip, ...(request.deviceMac ? { mac: request.deviceMac } : {}) }, 'request');
      }
      if (announced) observer?.finished({ status: outcome.status, bytes: outcome.bytes, complete: outcome.status < 300, ms: bodyMs() });
      else if (request.method === 'GET' && outcome.status >= 400) {
        // An error answered from inside the stream (an upstream's 404 on a passthrough).
        observer?.started();
        observer?.finished({ status: outcome.status, bytes: 0, complete: false });
      }
    } catch (error) {
      stopProgress();
      // A client hanging up mid-download is normal; anything else is worth a line.
      if (!(error instanceof ClientGoneError)) request.log.error({ err: error, path: logPath, sent: sent.bytes }, 'download failed mid-response');
      this.metrics.downloads.inc({ outcome: 'aborted' });
      this.metrics.downloadBytes.inc(sent.bytes);
      if (res.headersSent) {
        summary(res.statusCode, sent.bytes, false);
        if (announced) observer?.finished({ status: res.statusCode, bytes: sent.bytes, complete: false, ms: bodyMs() });
        // Never end a short body cleanly: the client must see the transfer fail.
        res.destroy();
      } else if (!res.destroyed) {
        const status = error instanceof HttpError ? error.statusCode : undefined;
        const answer = status !== undefined && status >= 500 && status < 600 ? status : 502;
        const message = `${(error as Error).message}\n`;
        res.writeHead(answer, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(message)), 'Cache-Control': 'no-store' });
        res.end(message);
        if (request.method === 'GET') {
          observer?.started();
          observer?.finished({ status: answer, bytes: 0, complete: false });
        }
      }
    } finally {
      stopProgress();
      admitted?.();
      await download.release?.();
    }
  }
}
