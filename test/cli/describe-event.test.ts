import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeEvent } from '../../src/cli/devices.ts';

const at = '2026-01-01T12:00:00.000Z';
const download = (detail: Record<string, unknown>) => describeEvent({ id: 1, deviceId: '52:54:00:00:00:01', bootId: 'b', at, detail: { type: 'download', path: '/assets/k', role: 'kernel', status: 200, ip: '10.0.0.9', bytes: 0, phase: 'started', ...detail } as never });

describe('devices watch lines for downloads', () => {
  it('say the length at the start, how far a running download got and its speed, and the bytes at the end', () => {
    assert.match(download({ total: 1000 }), /kernel started \/assets\/k \(1000 bytes\)$/);
    assert.match(download({ phase: 'progress', bytes: 400, total: 1000, rate: 200 }), /kernel progress \/assets\/k \(400 of 1000 bytes, 200 bytes\/s\)$/);
    assert.match(download({ phase: 'completed', bytes: 1000, total: 1000 }), /kernel completed \/assets\/k \(1000 bytes\)$/);
    assert.match(download({ phase: 'aborted', bytes: 10 }), /kernel aborted \/assets\/k \(10 bytes\)$/);
  });
});
