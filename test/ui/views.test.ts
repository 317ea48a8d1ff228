import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newDevice, type Device, type EventDetail, type StoredEvent } from '../../src/state/model.ts';
import { fleetCounts, isUnmatched, matchesFilter, stageGroup, timeline } from '../../src/ui/views.ts';

const NOW = Date.parse('2026-01-01T12:00:00Z');

function device(id: string, change: Partial<Device>): Device {
  return { ...newDevice(id, new Date(NOW - 60_000)), ...change };
}

let nextId = 1;
function event(at: string, detail: EventDetail, bootId?: string): StoredEvent {
  return { id: nextId++, deviceId: '52:54:00:00:00:01', at: new Date(at), detail, ...(bootId ? { bootId } : {}) };
}

describe('fleet rows', () => {
  it('groups a boot in progress as booting and counts the last hour only for failed and done', () => {
    const old = new Date(NOW - 2 * 3600_000).toISOString();
    const devices = [
      device('52:54:00:00:00:01', { stage: 'kernel' }),
      device('52:54:00:00:00:02', { stage: 'waiting', lastAction: 'wait' }),
      device('52:54:00:00:00:03', { stage: 'failed' }),
      device('52:54:00:00:00:04', { stage: 'failed', lastSeen: old }),
      device('52:54:00:00:00:05', { stage: 'succeeded' }),
      device('52:54:00:00:00:06', { stage: 'held' }),
    ];
    assert.equal(stageGroup('initrd'), 'booting');
    assert.deepEqual(fleetCounts(devices, NOW), { booting: 1, waiting: 1, held: 1, failedLastHour: 1, doneLastHour: 1, total: 6 });
  });

  it('filters by stage, unmatched and search text', () => {
    const waiting = device('52:54:00:00:00:02', { stage: 'waiting', lastAction: 'wait', identity: { hostname: 'node-7', serial: 'CZJ123' } });
    assert.ok(isUnmatched(waiting));
    assert.ok(matchesFilter(waiting, 'unmatched', ''));
    assert.ok(!matchesFilter({ ...waiting, lastGroup: 'rack1' }, 'unmatched', ''));
    assert.ok(matchesFilter(waiting, 'waiting', 'czj'));
    assert.ok(matchesFilter(waiting, undefined, '52-54-00-00-00-02'));
    assert.ok(matchesFilter(waiting, undefined, 'NODE-7'));
    assert.ok(!matchesFilter(waiting, 'booting', ''));
    assert.ok(!matchesFilter(waiting, undefined, 'node-8'));
  });
});

describe('timeline', () => {
  it('pairs each download with how it ended, by boot, newest boot first', () => {
    const ip = '10.0.0.7';
    const entries = timeline([
      event('2026-01-01T11:00:00.000Z', { type: 'script', ip, userAgent: 'iPXE', identity: {}, action: 'boot', reason: 'group main matched', profile: 'main', group: 'main' }, 'b1'),
      event('2026-01-01T11:00:01.000Z', { type: 'download', path: '/assets/k', role: 'kernel', phase: 'started', bytes: 0, status: 200, ip }, 'b1'),
      event('2026-01-01T11:00:03.500Z', { type: 'download', path: '/assets/k', role: 'kernel', phase: 'completed', bytes: 3 * 1024 * 1024, status: 200, ip }, 'b1'),
      event('2026-01-01T11:00:04.000Z', { type: 'download', path: '/assets/i', role: 'initrd', phase: 'failed', bytes: 0, status: 404, ip, reason: 'no such file' }, 'b1'),
      event('2026-01-01T11:05:00.000Z', { type: 'next-boot', nextBoot: { action: 'hold', reason: 'disk', setAt: '2026-01-01T11:05:00.000Z' }, by: 'api' }),
      event('2026-01-01T11:06:00.000Z', { type: 'report', state: 'failed', message: 'oops', ip, via: 'events', verified: false }, 'b1'),
    ]);
    assert.equal(entries.length, 2);
    assert.equal(entries[0]?.bootId, '');
    assert.match(entries[0]?.lines[0]?.text ?? '', /set to hold: disk/);
    const boot = entries[1];
    assert.equal(boot?.title, 'boot b1 — main');
    assert.deepEqual(boot?.lines.map((line) => [line.kind, line.text, line.tone]), [
      ['script', 'boot main (group main): group main matched — from 10.0.0.7', ''],
      ['download', 'kernel /assets/k: 3.0 MiB in 2.5 s', ''],
      ['download', 'initrd /assets/i: failed, HTTP 404 (no such file)', 'bad'],
      ['report', 'failed: oops — unverified, changed nothing', 'unverified'],
    ]);
  });
});
