/**
 * A release server for the benchmarks: files over loopback at a set pace, as across a WAN.
 * `link: 'per-connection'` paces each connection on its own (a server far away); `'shared'` has
 * every connection share one link (a site's uplink). Counts requests and body bytes.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { freePort } from '../test/support/net.ts';

export interface PacedUpstreamOptions {
  /** The file to answer for a request path, if any (404 otherwise). */
  fileFor(urlPath: string): string | undefined;
  bytesPerSecond: number;
  link: 'per-connection' | 'shared';
  /** Extra response headers, e.g. `accept-ranges: none`. */
  headers?: Record<string, string>;
}

export interface PacedUpstream {
  url: string;
  requests: () => number;
  bytes: () => number;
  close(): Promise<void>;
}

export async function startPacedUpstream(options: PacedUpstreamOptions): Promise<PacedUpstream> {
  let requests = 0;
  let bytes = 0;
  // When the shared link is free again (ms): each chunk is due once the link carried everything before it.
  let sharedFreeAt = 0;
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests += 1;
    const urlPath = (req.url ?? '').split('?')[0] ?? '';
    const file = options.fileFor(urlPath);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const { size, mtime } = await stat(file);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), etag: `"bench-${urlPath.replace(/[^\w.-]/g, '_')}-${size}"`, 'last-modified': mtime.toUTCString(), ...options.headers });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let ownFreeAt = 0;
    const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
    stream.on('data', (chunk) => {
      bytes += chunk.length;
      res.write(chunk);
      const now = Date.now();
      const duration = (chunk.length / options.bytesPerSecond) * 1000;
      let freeAt: number;
      if (options.link === 'shared') freeAt = sharedFreeAt = Math.max(sharedFreeAt, now) + duration;
      else freeAt = ownFreeAt = Math.max(ownFreeAt, now) + duration;
      const wait = freeAt - now;
      if (wait > 1) {
        stream.pause();
        setTimeout(() => stream.resume(), wait);
      }
    });
    stream.on('end', () => res.end());
    res.on('close', () => stream.destroy());
  };
  const server = http.createServer((req, res) => void serve(req, res));
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
