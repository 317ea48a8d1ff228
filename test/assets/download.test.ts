import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { DownloadResponder, type Download, type DownloadProgress } from '../../src/assets/download.ts';
import { BufferPool } from '../../src/assets/file-stream.ts';
import { silentLogger, waitFor } from '../helpers.ts';

const counter = { inc: () => undefined };

/** A body the test sends chunk by chunk: `next()` lets one more chunk out, `end()` finishes it. */
function gatedBody(total: number) {
  const gates: (() => void)[] = [];
  let ended = false;
  const wake = () => gates.splice(0).forEach((open) => open());
  const download: Download = {
    kind: 'content',
    async stream(res, io) {
      res.writeHead(200, { 'content-length': String(total) });
      await io.onBody(200, total);
      while (io.sent.bytes < total) {
        await new Promise<void>((resolve) => gates.push(resolve));
        const size = ended ? total - io.sent.bytes : Math.min(1000, total - io.sent.bytes);
        res.write(Buffer.alloc(size, 1));
        io.sent.bytes += size;
      }
      res.end();
      return { status: 200, bytes: io.sent.bytes };
    },
  };
  return {
    download,
    next: wake,
    end: () => {
      ended = true;
      wake();
    },
  };
}

describe('download progress', () => {
  it('tells the observer how far a running download got, a few times a second at most, that it stalled, never after it ended', async (t) => {
    const responder = new DownloadResponder({ pool: new BufferPool(4096, 1 << 20), log: silentLogger, metrics: { downloads: counter, downloadBytes: counter }, progressIntervalMs: 30 });
    const body = gatedBody(10_000);
    const seen: { started?: number | undefined; progress: DownloadProgress[]; finished?: { bytes: number; ms?: number | undefined } } = { progress: [] };
    const app = Fastify();
    app.get('/file', async (request, reply) => {
      await responder.respond(request, reply, body.download, 'file', {
        started: (total) => (seen.started = total),
        progress: (progress) => seen.progress.push(progress),
        finished: ({ bytes, ms }) => (seen.finished = { bytes, ms }),
      }, new AbortController());
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    const received = new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/file' }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve(bytes));
      }).on('error', reject);
    });

    await waitFor(() => seen.started !== undefined, 5000, 'the start');
    assert.equal(seen.started, 10_000, 'the length is told at the start');
    body.next();
    await waitFor(() => seen.progress.length === 1, 5000, 'the first progress');
    body.next();
    await waitFor(() => seen.progress.length === 2, 5000, 'the second progress');
    assert.deepEqual(seen.progress.map((p) => [p.bytes, p.total]), [[1000, 10_000], [2000, 10_000]]);
    assert.ok(seen.progress.every((p) => p.rate > 0 && p.ms >= 0));
    // Nothing goes out: the stall is told once (speed 0), then nothing, however many intervals pass.
    await waitFor(() => seen.progress.length === 3, 5000, 'the stall');
    assert.deepEqual(seen.progress.map((p) => p.rate === 0), [false, false, true]);
    assert.equal(seen.progress[2]?.bytes, 2000);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(seen.progress.length, 3, 'no more progress without new bytes');
    body.end();
    assert.equal(await received, 10_000);
    await waitFor(() => seen.finished !== undefined, 5000, 'the end');
    assert.equal(seen.finished?.bytes, 10_000);
    assert.equal(typeof seen.finished?.ms, 'number');
    const atEnd = seen.progress.length;
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(seen.progress.length, atEnd, 'no progress after the end');
  });
});
