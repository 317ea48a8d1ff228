/**
 * Answering one GET or HEAD for a file: validators, preconditions, range plan, headers, body.
 * Framework-free: it writes to a Node ServerResponse, so the route and the mirror (which serves
 * files from its cache the same way) share it.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { evaluatePreconditions, validatorsFor, type RequestHeaders } from './conditional.ts';
import { streamRange, type BufferPool, type ReadableContent } from './file-stream.ts';
import { planRange, type ByteRange } from './range.ts';

export interface SendFileOptions {
  method: string;
  headers: RequestHeaders;
  contentType: string;
  cacheControl: string;
  pool: BufferPool;
  /** Body bytes the socket has taken so far; still meaningful when the transfer breaks. */
  sent?: { bytes: number };
  /**
   * The strong ETag to send and compare instead of the file's own (a mirrored file's upstream
   * ETag: the same bytes), and weak ones If-None-Match also accepts.
   */
  etag?: { strong?: string; alsoMatches?: readonly string[] };
  /**
   * Called once the headers are out and a body of `bodyBytes` is about to be streamed; the body
   * waits for it (admission control may hold a large one back).
   */
  onBody?: BodyStart;
  /**
   * Headers that describe the file as a whole (Repr-Digest), sent with 200, 206 and 304 alike;
   * not with 412 or 416, whose bodies are no part of the file.
   */
  representationHeaders?: Readonly<Record<string, string>>;
}

/** A body is about to start: its status and size (undefined: not known, e.g. chunked). */
export type BodyStart = (status: number, bodyBytes: number | undefined) => void | Promise<void>;

export interface SendOutcome {
  status: number;
  /** Body bytes written. */
  bytes: number;
  /** Body bytes the response promised (Content-Length). */
  expected: number;
  /** Byte ranges of the file that were asked for (undefined: the whole file or no body). */
  ranges: ByteRange[] | undefined;
}

function commonHeaders(res: ServerResponse, etag: string, lastModified: Date, cacheControl: string, representation: Readonly<Record<string, string>> = {}): void {
  res.setHeader('ETag', etag);
  for (const [name, value] of Object.entries(representation)) res.setHeader(name, value);
  res.setHeader('Last-Modified', lastModified.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  if (cacheControl) res.setHeader('Cache-Control', cacheControl);
}

function endWith(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): SendOutcome {
  const bytes = Buffer.byteLength(body);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(bytes), ...extra });
  res.end(body);
  return { status, bytes, expected: bytes, ranges: undefined };
}

/**
 * Sends the content (an open file, or a file being filled). Rejects with ClientGoneError when the client leaves, or with a read
 * error after headers went out (the caller then destroys the socket: a short body must never
 * look complete).
 */
export async function sendFile(res: ServerResponse, file: ReadableContent, options: SendFileOptions): Promise<SendOutcome> {
  const stat = await file.stat({ bigint: true });
  const size = Number(stat.size);
  const own = validatorsFor(stat);
  const validators = options.etag ? { ...own, ...(options.etag.strong ? { etag: options.etag.strong } : {}), ...(options.etag.alsoMatches ? { alsoMatches: options.etag.alsoMatches } : {}) } : own;
  const { method, headers } = options;
  const head = method === 'HEAD';

  const precondition = evaluatePreconditions(method, headers, validators);
  if (precondition === 'not-modified') {
    commonHeaders(res, validators.etag, validators.lastModified, options.cacheControl, options.representationHeaders);
    res.writeHead(304);
    res.end();
    return { status: 304, bytes: 0, expected: 0, ranges: undefined };
  }
  if (precondition === 'failed') return endWith(res, 412, 'precondition failed\n');

  const plan = planRange(method, headers, size, validators);
  commonHeaders(res, validators.etag, validators.lastModified, options.cacheControl, plan.kind === 'unsatisfiable' ? {} : options.representationHeaders);

  switch (plan.kind) {
    case 'unsatisfiable':
      return endWith(res, 416, 'range not satisfiable\n', { 'Content-Range': `bytes */${size}` });

    case 'full': {
      res.writeHead(200, { 'Content-Type': options.contentType, 'Content-Length': String(size) });
      if (head || size === 0) {
        res.end();
        return { status: 200, bytes: 0, expected: head ? 0 : size, ranges: undefined };
      }
      await options.onBody?.(200, size);
      const bytes = await streamRange(res, file, 0, size - 1, options.pool, options.sent);
      res.end();
      return { status: 200, bytes, expected: size, ranges: undefined };
    }

    case 'single': {
      const { start, end } = plan.range;
      const length = end - start + 1;
      res.writeHead(206, { 'Content-Type': options.contentType, 'Content-Length': String(length), 'Content-Range': `bytes ${start}-${end}/${size}` });
      if (head) {
        res.end();
        return { status: 206, bytes: 0, expected: 0, ranges: [plan.range] };
      }
      await options.onBody?.(206, length);
      const bytes = await streamRange(res, file, start, end, options.pool, options.sent);
      res.end();
      return { status: 206, bytes, expected: length, ranges: [plan.range] };
    }

    case 'multipart': {
      const boundary = randomBytes(12).toString('hex');
      const partHeaders = plan.ranges.map(
        (r, i) => `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${options.contentType}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
      );
      const closing = `\r\n--${boundary}--\r\n`;
      const length =
        partHeaders.reduce((n, h) => n + Buffer.byteLength(h), 0) + plan.ranges.reduce((n, r) => n + r.end - r.start + 1, 0) + Buffer.byteLength(closing);
      res.writeHead(206, { 'Content-Type': `multipart/byteranges; boundary=${boundary}`, 'Content-Length': String(length) });
      if (head) {
        res.end();
        return { status: 206, bytes: 0, expected: 0, ranges: plan.ranges };
      }
      await options.onBody?.(206, length);
      let bytes = 0;
      for (const [i, range] of plan.ranges.entries()) {
        const text = partHeaders[i] ?? '';
        res.write(text);
        bytes += Buffer.byteLength(text);
        if (options.sent) options.sent.bytes += Buffer.byteLength(text);
        bytes += await streamRange(res, file, range.start, range.end, options.pool, options.sent);
      }
      res.end(closing);
      return { status: 206, bytes: bytes + Buffer.byteLength(closing), expected: length, ranges: plan.ranges };
    }
  }
}
