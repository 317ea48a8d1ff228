/**
 * Test support for the mirror: a local upstream (node:http on 127.0.0.1) with fault modes, a
 * raw HTTP client that says whether a body arrived complete, and a mirror app built over a
 * temp cache directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { lookup } from 'node:dns';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import mirrorAdminRoutes from '../../src/mirror/admin-routes.ts';
import { defaultMirrorSettings, defineMirror, type MirrorSettings } from '../../src/mirror/config.ts';
import { PullThroughMirror, type MirrorOptions } from '../../src/mirror/mirror.ts';
import mirrorRoutes from '../../src/mirror/routes.ts';
import { silentLogger } from '../helpers.ts';

export const TOKEN = 'mirror-test-token-0123456789';

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
export const sha512 = (data: Buffer | string) => createHash('sha512').update(data).digest('hex');

/** Random bytes: a body whose corruption or truncation anywhere changes its hash. */
export const bodyOf = (size: number) => randomBytes(size);

export type Fault =
  /** Destroys the socket after `after` body bytes (once `when` resolves, if given). */
  | { kind: 'drop'; after: number; when?: Promise<void> }
  /** Sends `after` body bytes, then nothing, keeping the connection open. */
  | { kind: 'stall'; after: number }
  /** Sends `after` body bytes of a longer Content-Length, then closes the connection cleanly. */
  | { kind: 'short'; after: number }
  | { kind: 'status'; status: number }
  /** Sends the body in `chunk`-byte pieces with `delayMs` between them. */
  | { kind: 'trickle'; chunk: number; delayMs: number }
  /** Sends `after` body bytes, then waits for `gate` before the rest. */
  | { kind: 'gate'; after: number; gate: Promise<void> }
  /** Never answers. */
  | { kind: 'hang' }
  /** Answers normally once `until` resolves. */
  | { kind: 'delay'; until: Promise<void> };

export interface UpstreamFile {
  body: Buffer;
  /** Strong ETag by default (from the content); null for none. */
  etag?: string | null;
  lastModified?: string;
  /** Advertise and honour byte ranges (default true). */
  ranges?: boolean;
  /** No Content-Length: a chunked body. */
  chunked?: boolean;
  contentType?: string;
  /** Answer 302 with this Location instead of the file. */
  redirect?: string;
  fault?: Fault;
  /** How many requests the fault applies to (default 1); later ones are served normally. */
  faultTimes?: number;
  /** More response headers (Cache-Control, Date, Content-Disposition, ...), on 200 and 304 alike. */
  headers?: Record<string, string>;
}

export interface SeenRequest {
  method: string;
  path: string;
  /** The query as it arrived, without `?` ('' for none). */
  query: string;
  headers: http.IncomingHttpHeaders;
}

export interface TestUpstream {
  url: string;
  files: Map<string, UpstreamFile>;
  requests: SeenRequest[];
  /** Requests for one path (GET and HEAD). */
  requestsFor(path: string): SeenRequest[];
  close(): Promise<void>;
}

function etagOf(file: UpstreamFile): string | undefined {
  if (file.etag === null) return undefined;
  return file.etag ?? `"${sha256(file.body).slice(0, 16)}"`;
}

function writeSlowly(res: http.ServerResponse, data: Buffer, chunk: number, delayMs: number): void {
  let offset = 0;
  const step = () => {
    if (res.destroyed) return;
    if (offset >= data.length) {
      res.end();
      return;
    }
    res.write(data.subarray(offset, offset + chunk));
    offset += chunk;
    setTimeout(step, delayMs);
  };
  step();
}

export async function startUpstream(t: TestContext, files: Record<string, UpstreamFile> = {}): Promise<TestUpstream> {
  const map = new Map(Object.entries(files));
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const [rawPath = '/', query = ''] = (req.url ?? '/').split(/\?(.*)/s);
    const path = decodeURIComponent(rawPath).replace(/^\//, '');
    requests.push({ method: req.method ?? 'GET', path, query, headers: req.headers });
    // A file may be served for one query only: `path?query` before `path`.
    const file = (query !== '' ? map.get(`${path}?${query}`) : undefined) ?? map.get(path);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such file\n');
      return;
    }
    if (file.redirect !== undefined) {
      res.writeHead(302, { location: file.redirect, 'content-type': 'text/plain' });
      res.end('moved\n');
      return;
    }
    const fault = file.fault;
    if (fault) {
      const left = file.faultTimes ?? 1;
      if (left <= 1) delete file.fault;
      else file.faultTimes = left - 1;
    }
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'delay') {
      void fault.until.then(() => answer(req, res, file, undefined));
      return;
    }
    answer(req, res, file, fault);
  });

  const answer = (req: http.IncomingMessage, res: http.ServerResponse, file: UpstreamFile, fault: Fault | undefined) => {
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'text/plain' });
      res.end(`fault ${fault.status}\n`);
      return;
    }

    const etag = etagOf(file);
    const ranges = file.ranges ?? true;
    const headers: Record<string, string> = { 'content-type': file.contentType ?? 'application/octet-stream' };
    if (etag) headers.etag = etag;
    if (file.lastModified) headers['last-modified'] = file.lastModified;
    if (ranges) headers['accept-ranges'] = 'bytes';
    Object.assign(headers, file.headers);

    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== etag) {
      res.writeHead(412, { 'content-type': 'text/plain' });
      res.end('precondition failed\n');
      return;
    }
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    if ((ifNoneMatch !== undefined && etag !== undefined && ifNoneMatch === etag) || (ifNoneMatch === undefined && ifModifiedSince !== undefined && file.lastModified !== undefined && Date.parse(ifModifiedSince) >= Date.parse(file.lastModified))) {
      res.writeHead(304, headers);
      res.end();
      return;
    }

    let body = file.body;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (ranges && range) {
      const from = Number(range[1]);
      status = 206;
      headers['content-range'] = `bytes ${from}-${file.body.length - 1}/${file.body.length}`;
      body = file.body.subarray(from);
    }
    if (!file.chunked) headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    switch (fault?.kind) {
      case 'drop': {
        const when = fault.when ?? new Promise((resolve) => setTimeout(resolve, 10));
        res.write(body.subarray(0, fault.after), () => void when.then(() => res.socket?.destroy()));
        return;
      }
      case 'stall':
        res.write(body.subarray(0, fault.after));
        return;
      case 'short':
        res.write(body.subarray(0, fault.after), () => setTimeout(() => res.socket?.end(), 10));
        return;
      case 'trickle':
        writeSlowly(res, body, fault.chunk, fault.delayMs);
        return;
      case 'gate': {
        res.write(body.subarray(0, fault.after));
        const rest = body.subarray(fault.after);
        void fault.gate.then(() => res.end(rest));
        return;
      }
      default:
        res.end(body);
    }
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { url: `http://127.0.0.1:${port}`, files: map, requests, requestsFor: (p) => requests.filter((r) => r.path === p), close };
}

export interface RawResponse {
  /** 0 when the connection was reset before any response arrived. */
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** False when the connection ended before the body did. */
  complete: boolean;
}

/** One request on its own connection; resolves when the response is over, complete or not. */
export function fetchRaw(url: string, options: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // The path goes out exactly as written: URL parsing would resolve `%2e%2e` segments first.
    const [, host = '', port = '80', rawPath = '/'] = /^http:\/\/([^/:]+):?(\d*)(\/.*)?$/.exec(url) ?? [];
    const req = http.request({ host, port: Number(port || 80), path: rawPath, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.setTimeout(options.timeoutMs ?? 20_000, () => req.destroy(new Error(`no answer from ${url} within ${options.timeoutMs ?? 20_000} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      // Cut off before any byte of the answer was sent: a failed transfer, reported as status 0.
      if (error.code === 'ECONNRESET') resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false });
      else reject(error);
    });
    req.end();
  });
}

export interface MirrorAppOptions {
  /** Reuse a cache directory (to test restarts); default a fresh temp dir. */
  cacheDir?: string;
  settings?: Partial<MirrorSettings>;
  writeChunk?: MirrorOptions['writeChunk'];
  log?: MirrorOptions['log'];
  now?: MirrorOptions['now'];
  lookup?: MirrorOptions['lookup'];
  isProtected?: MirrorOptions['isProtected'];
}

export interface MirrorApp {
  app: FastifyInstance;
  mirror: PullThroughMirror;
  base: string;
  cacheDir: string;
  close(): Promise<void>;
}

/**
 * A mirror with two upstream names on the test upstream: `up` (no digests) and `flatcar-test`
 * (Flatcar digests checked), served by the plugin and the admin API, listening on loopback.
 */
/** Closers of the mirrors open on each cache directory: the directory goes only after all of them. */
const mirrorsOn = new Map<string, Set<() => Promise<void>>>();

export async function startMirror(t: TestContext, upstreamUrl: string, options: MirrorAppOptions = {}): Promise<MirrorApp> {
  const ownsDir = options.cacheDir === undefined;
  const cacheDir = options.cacheDir ?? (await mkdtemp(path.join(tmpdir(), 'bootdepot-mirror-')));
  const defaults = defaultMirrorSettings(cacheDir);
  const settings = defaultMirrorSettings(cacheDir, {
    // The built-in Flatcar mirrors stay configured; they are never contacted unless asked for.
    mirrors: { ...defaults.mirrors, up: defineMirror('up', upstreamUrl), 'flatcar-test': defineMirror('flatcar-test', upstreamUrl) },
    connectTimeoutMs: 5000,
    headersTimeoutMs: 5000,
    bodyInactivityMs: 5000,
    ...options.settings,
  });
  const mirror = await PullThroughMirror.open({
    settings,
    ...(options.writeChunk ? { writeChunk: options.writeChunk } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.lookup ? { lookup: options.lookup } : {}),
    ...(options.isProtected ? { isProtected: options.isProtected } : {}),
  });
  const logger: FastifyBaseLogger = silentLogger;
  const app = Fastify({ loggerInstance: logger, forceCloseConnections: true });
  await app.register(mirrorRoutes, { mirror });
  await app.register(mirrorAdminRoutes, { prefix: '/api/v1', mirror, adminToken: TOKEN });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await mirror.close();
    await app.close();
  };
  const closers = mirrorsOn.get(cacheDir) ?? new Set();
  closers.add(close);
  mirrorsOn.set(cacheDir, closers);
  t.after(async () => {
    await close();
    if (!ownsDir) return;
    for (const other of closers) await other();
    mirrorsOn.delete(cacheDir);
    await rm(cacheDir, { recursive: true, force: true });
  });
  return { app, mirror, base: `http://127.0.0.1:${port}`, cacheDir, close };
}

/** Polls until `check` holds: at most `timeoutMs`, every 10 ms. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A name resolver that sends every `*.test` name to 127.0.0.1 and the rest to the system's. */
export const loopbackTestNames: LookupFunction = (hostname, options, callback) => {
  if (!hostname.endsWith('.test')) {
    lookup(hostname, options, callback);
    return;
  }
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

/** A port nothing listens on: bound once, then closed. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
