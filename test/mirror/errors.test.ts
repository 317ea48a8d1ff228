/**
 * The mirror's failures are answers of one kind: each is an HttpError whose `statusCode` is the
 * status the client gets, so a caller tests `instanceof HttpError` instead of guessing fields.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '../../src/common/http-error.ts';
import { FillSlots, SlotsFullError } from '../../src/mirror/fill-slots.ts';
import { MirrorError } from '../../src/mirror/mirror.ts';
import { FillFailedError } from '../../src/mirror/fill.ts';
import { UpstreamError } from '../../src/mirror/upstream.ts';
import { bodyOf, closedPort, startMirror, startUpstream } from './support.ts';

const V = 'amd64-usr/4152.2.0';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

describe('mirror failures are HTTP answers', () => {
  it('a small file of an unknown mirror or missing upstream is a 404 HttpError', async (t) => {
    const upstream = await startUpstream(t, {});
    const { mirror } = await startMirror(t, upstream.url);
    const unknown = await rejection(mirror.readText('nope', `${V}/version.txt`));
    assert.ok(unknown instanceof MirrorError && unknown instanceof HttpError);
    assert.equal(unknown.statusCode, 404);
    const missing = await rejection(mirror.readText('up', `${V}/version.txt`));
    assert.ok(missing instanceof HttpError);
    assert.equal(missing.statusCode, 404);
    assert.match(missing.message, /not found upstream/);
  });

  it('an unreachable upstream is a 502 HttpError, for a small file and for a passthrough', async (t) => {
    const port = await closedPort();
    const { mirror } = await startMirror(t, `http://127.0.0.1:${port}`);
    const read = await rejection(mirror.readText('up', `${V}/version.txt`));
    assert.ok(read instanceof HttpError);
    assert.equal(read.statusCode, 502);
    const passthrough = await rejection(mirror.passthrough('up', `http://127.0.0.1:${port}/${V}/file`, 'HEAD'));
    assert.ok(passthrough instanceof UpstreamError && passthrough instanceof HttpError);
    assert.equal(passthrough.statusCode, 502);
    assert.match(passthrough.brief, /ECONNREFUSED/);
  });

  it('a transfer that breaks off is a 502 HttpError for its readers', async (t) => {
    const upstream = await startUpstream(t, { [`${V}/short`]: { body: bodyOf(4096), ranges: false, fault: { kind: 'short', after: 100 } } });
    const { mirror } = await startMirror(t, upstream.url);
    const source = await mirror.lookup('up', `${V}/short`);
    assert.equal(source.kind, 'filling');
    if (source.kind !== 'filling') return;
    try {
      const error = await rejection(source.reader.complete());
      assert.ok(error instanceof FillFailedError && error instanceof HttpError);
      assert.equal(error.statusCode, 502);
    } finally {
      source.reader.close();
    }
    await mirror.settled();
  });

  it('a full transfer queue is a 503 HttpError with the seconds to wait', async () => {
    const slots = new FillSlots(1, 0);
    const release = await slots.acquire('up', 1);
    try {
      let refused: unknown;
      try {
        slots.checkRoom('up', 1);
      } catch (error) {
        refused = error;
      }
      assert.ok(refused instanceof SlotsFullError && refused instanceof HttpError);
      assert.equal(refused.statusCode, 503);
      assert.ok(refused.retryAfterSeconds > 0);
    } finally {
      release();
    }
  });
});
