import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { DownloadAdmission, LARGE_DOWNLOAD_BYTES } from '../../src/assets/admission.ts';
import { ClientGoneError } from '../../src/assets/file-stream.ts';
import { testApp, waitFor } from '../helpers.ts';

const LARGE = LARGE_DOWNLOAD_BYTES;

describe('download admission', () => {
  it('lets `limit` large bodies through and queues the rest first come, first served', async () => {
    const admission = new DownloadAdmission(1, 60_000);
    const signal = new AbortController().signal;
    const first = await admission.admit(LARGE, signal);
    const order: string[] = [];
    const second = admission.admit(LARGE, signal).then((release) => (order.push('second'), release));
    const third = admission.admit(LARGE, signal).then((release) => (order.push('third'), release));
    assert.deepEqual(admission.stats(), { active: 1, queued: 2, overdue: 0 });
    first();
    first(); // a second call changes nothing
    (await second)();
    (await third)();
    assert.deepEqual(order, ['second', 'third']);
    assert.deepEqual(admission.stats(), { active: 0, queued: 0, overdue: 0 });
  });

  it('never holds back small bodies, and is off with limit 0', async () => {
    const signal = new AbortController().signal;
    const limited = new DownloadAdmission(1, 60_000);
    const hold = await limited.admit(LARGE, signal);
    const small = await limited.admit(LARGE - 1, signal);
    assert.equal(limited.stats().active, 1, 'the small body did not take a turn');
    small();
    hold();
    const off = new DownloadAdmission(0, 60_000);
    await Promise.all(Array.from({ length: 5 }, () => off.admit(LARGE * 100, signal)));
    assert.deepEqual(off.stats(), { active: 0, queued: 0, overdue: 0 });
  });

  it('starts a download that waited too long anyway, and counts it', async () => {
    const admission = new DownloadAdmission(1, 20);
    const signal = new AbortController().signal;
    const first = await admission.admit(LARGE, signal);
    const late = await admission.admit(LARGE, signal);
    assert.deepEqual(admission.stats(), { active: 2, queued: 0, overdue: 1 });
    late();
    first();
    assert.equal(admission.stats().active, 0);
  });

  it('drops a queued download whose client left', async () => {
    const admission = new DownloadAdmission(1, 60_000);
    const first = await admission.admit(LARGE, new AbortController().signal);
    const leaving = new AbortController();
    const queued = admission.admit(LARGE, leaving.signal);
    leaving.abort();
    await assert.rejects(queued, ClientGoneError);
    assert.equal(admission.stats().queued, 0);
    first();
    assert.equal(admission.stats().active, 0);
  });

  it('holds the second of two large downloads until the first is done, headers first', async (t) => {
    const body = Buffer.alloc(8 * LARGE, 7);
    const { app } = await testApp(t, { data: {}, assets: { 'big.img': body }, yaml: 'assets:\n  maxActiveDownloads: 1\n' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const get = (onResponse: (res: http.IncomingMessage) => void) => {
      const request = http.get({ host: '127.0.0.1', port, path: '/assets/big.img' }, onResponse);
      request.on('error', () => undefined); // destroyed at the end
      t.after(() => request.destroy());
      return request;
    };
    // The first client reads nothing yet, so its body cannot finish.
    let firstResponse: http.IncomingMessage | undefined;
    get((res) => {
      firstResponse = res;
      res.pause();
    });
    await waitFor(() => firstResponse !== undefined, 5000, 'the first response');
    let secondBytes = 0;
    let secondStatus = 0;
    const secondDone = new Promise<void>((resolve) =>
      get((res) => {
        secondStatus = res.statusCode ?? 0;
        res.on('data', (chunk: Buffer) => (secondBytes += chunk.length));
        res.on('end', resolve);
      }),
    );
    const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await app.inject({ url: '/metrics' })).body)?.[1]);
    await waitFor(async () => (await metric('bootdepot_downloads_queued')) === 1, 5000, 'the second download to queue');
    assert.equal(secondStatus, 200, 'the queued download has its headers');
    assert.equal(secondBytes, 0, 'but no body while the first one sends');
    firstResponse?.resume();
    await secondDone;
    assert.equal(secondBytes, body.length);
    assert.equal(await metric('bootdepot_downloads_queued'), 0);
  });
});
