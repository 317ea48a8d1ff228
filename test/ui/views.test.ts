import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newDevice, type Device, type EventDetail, type StoredEvent } from '../../src/state/model.ts';
import { applyEvent, BOOT_DOWNLOADS_KEPT } from '../../src/state/model.ts';
import { downloadBar, fleetCounts, fleetRow, isUnmatched, matchesFilter, problemsView, stageGroup, timeline } from '../../src/ui/views.ts';

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
      ['download', 'kernel /assets/k: 3.0 MiB in 2.5 s (1.2 MiB/s)', ''],
      ['download', 'initrd /assets/i: failed, HTTP 404 (no such file)', 'bad'],
      ['report', 'failed: oops — unverified, changed nothing', 'unverified'],
    ]);
  });
});

describe('download progress', () => {
  const ip = '10.0.0.7';
  const MiB = 1024 * 1024;

  it('shows a running download as bytes of total, the percentage and the speed, and its end with the average', () => {
    const started = event('2026-01-01T11:00:01.000Z', { type: 'download', path: '/assets/k', role: 'kernel', phase: 'started', bytes: 0, status: 200, ip, total: 10 * MiB }, 'b1');
    const progress = event('2026-01-01T11:00:03.000Z', { type: 'download', path: '/assets/k', role: 'kernel', phase: 'progress', bytes: 4 * MiB, status: 200, ip, total: 10 * MiB, ms: 2000, rate: 2 * MiB }, 'b1');
    const script = event('2026-01-01T11:00:00.000Z', { type: 'script', ip, userAgent: 'iPXE', identity: {}, action: 'boot', reason: 'r', profile: 'main' }, 'b1');
    const running = timeline([script, started, progress])[0]?.lines[1];
    assert.equal(running?.text, 'kernel /assets/k');
    assert.equal(running?.bar?.text, '4.0 MiB of 10.0 MiB (40 %)');
    assert.deepEqual(running?.bar && { value: running.bar.value, max: running.bar.max, speed: running.bar.speed }, { value: 4 * MiB, max: 10 * MiB, speed: '2.0 MiB/s' });
    const done = event('2026-01-01T11:00:06.000Z', { type: 'download', path: '/assets/k', role: 'kernel', phase: 'completed', bytes: 10 * MiB, status: 200, ip, total: 10 * MiB, ms: 4000 }, 'b1');
    const ended = timeline([script, started, done])[0]?.lines[1];
    assert.equal(ended?.text, 'kernel /assets/k: 10.0 MiB in 4.0 s (2.5 MiB/s)', 'the download\'s own duration, not the events\' times');
    assert.equal(ended?.bar, undefined);
  });

  it('keeps the current boot\'s downloads on the device, replaced by each newer event, for the fleet\'s bars', () => {
    const at = (s: number) => new Date(Date.parse('2026-01-01T11:00:00Z') + s * 1000);
    let d = applyEvent(undefined, { deviceId: '52:54:00:00:00:01', bootId: 'b1', at: at(0), detail: { type: 'script', ip, userAgent: 'iPXE', identity: {}, action: 'boot', reason: 'r', profile: 'main' } });
    const download = (s: number, phase: 'started' | 'progress' | 'completed', bytes: number, extra: { total?: number; rate?: number; ms?: number } = {}, bootId = 'b1') => {
      d = applyEvent(d, { deviceId: d.id, bootId, at: at(s), detail: { type: 'download', path: '/assets/k', role: 'kernel', phase, bytes, status: 200, ip, ...extra } });
    };
    download(1, 'started', 0, { total: 8 * MiB });
    download(2, 'progress', 2 * MiB, { rate: 2 * MiB, ms: 1000 });
    assert.deepEqual(d.downloads?.map((x) => [x.phase, x.bytes, x.total, x.rate]), [['progress', 2 * MiB, 8 * MiB, 2 * MiB]]);
    const row = fleetRow(d, Date.parse('2026-01-01T11:00:03Z'));
    assert.deepEqual(row.downloads.map((b) => [b.name, b.value, b.max, b.text, b.speed]), [['kernel /assets/k', 2 * MiB, 8 * MiB, '2.0 MiB of 8.0 MiB (25 %)', '2.0 MiB/s']]);
    download(5, 'completed', 8 * MiB, { ms: 4000 });
    assert.deepEqual(d.downloads?.map((x) => [x.phase, x.bytes, x.rate]), [['completed', 8 * MiB, 2 * MiB]]);
    // An older boot's late event changes nothing; a new boot starts with none.
    download(6, 'progress', 1, {}, 'b0');
    assert.equal(d.downloads?.[0]?.phase, 'completed');
    d = applyEvent(d, { deviceId: d.id, bootId: 'b2', at: at(7), detail: { type: 'script', ip, userAgent: 'iPXE', identity: {}, action: 'boot', reason: 'r', profile: 'main' } });
    assert.deepEqual(d.downloads, []);
    for (let i = 0; i < BOOT_DOWNLOADS_KEPT + 3; i++) d = applyEvent(d, { deviceId: d.id, bootId: 'b2', at: at(8), detail: { type: 'download', path: `/assets/f${i}`, role: 'other', phase: 'started', bytes: 0, status: 200, ip } });
    assert.equal(d.downloads?.length, BOOT_DOWNLOADS_KEPT, 'bounded');
    assert.equal(d.downloads?.at(-1)?.path, `/assets/f${BOOT_DOWNLOADS_KEPT + 2}`);
  });

  it('shows a length it does not know as an indeterminate bar, and failures as such', () => {
    assert.deepEqual(downloadBar({ path: '/m/x', role: 'other', phase: 'progress', status: 200, bytes: 2048, rate: 1024 }), { name: 'file /m/x', phase: 'progress', value: 0, max: 0, text: '2.0 KiB', speed: '1.0 KiB/s', tone: '' });
    assert.equal(downloadBar({ path: '/m/x', role: 'initrd', phase: 'failed', status: 502, bytes: 0 }).text, 'failed, HTTP 502');
    assert.equal(downloadBar({ path: '/m/x', role: 'initrd', phase: 'failed', status: 502, bytes: 0 }).tone, 'bad');
  });
});

describe('problems', () => {
  it('puts the store\'s trouble and failing upstreams beside the data problems, one line per upstream', () => {
    const at = new Date(NOW - 30_000).toISOString();
    const view = problemsView(
      {
        data: [{ text: 'groups/a.yaml: broken', warning: false }, { text: 'profiles/b.yaml: odd', warning: true }],
        readiness: ['device store: connect ECONNREFUSED'],
        store: { lost: 3, readFailures: 0 },
        failures: [
          { mirror: 'up', path: 'b.img', upstream: 'http://mirror.example:8080/b.img', error: 'HTTP 503', at },
          { mirror: 'up', path: 'a.img', upstream: 'http://mirror.example:8080/a.img', error: 'HTTP 500', at: new Date(NOW - 60_000).toISOString() },
          { mirror: 'fc', path: 'x', upstream: 'https://other.example/x', error: 'stalled', at },
        ],
      },
      NOW,
    );
    assert.deepEqual(view.store, ['device store: connect ECONNREFUSED', '3 events could not be recorded since the start (machines kept booting)']);
    assert.deepEqual(view.upstreams.map((u) => [u.upstream, u.files, u.latest, u.ago]), [['http://mirror.example:8080', 2, 'up/b.img: HTTP 503', '30 s ago'], ['https://other.example', 1, 'fc/x: stalled', '30 s ago']]);
    assert.deepEqual([view.errors, view.warnings, view.total], [1, 1, 5]);
  });
});
