/** The behaviour every DeviceStore must have; run against SQLite and PostgreSQL alike. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Device, NewEvent } from '../../src/state/model.ts';
import { createPruner } from '../../src/state/pruner.ts';
import { eventSlack, type DeviceStore, type StoreLimits } from '../../src/state/store.ts';
import { waitFor } from '../helpers.ts';

/** A store as the suite needs it: `settled` waits for pruning the store started by itself. */
export type TestStore = DeviceStore & { settled(): Promise<void> };
export type OpenStore = (t: TestContext, limits?: Partial<StoreLimits>) => Promise<TestStore | undefined>;

/** Every step of pruning until none is left, as the server's pruner runs them. */
async function pruneAll(store: DeviceStore, before: Date, keepPerDevice: number): Promise<number> {
  const pruner = createPruner(store, { retentionDays: 1, maxEventsPerDevice: keepPerDevice }, () => before.getTime() + 86_400_000);
  return pruner.runOnce();
}

const macOf = (n: number) => `52:54:01:${[n >> 16, n >> 8, n].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`;

async function unknownIds(store: DeviceStore): Promise<string[]> {
  return (await store.listDevices({ limit: 100_000 })).filter((d: Device) => d.id.startsWith('52:54:01:')).map((d) => d.id);
}

const MAC = '52:54:00:12:34:56';
const T0 = new Date('2026-11-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function script(bootId: string, seconds: number, profile = 'flatcar', deviceId = MAC, ip = '10.0.0.9'): NewEvent {
  return {
    deviceId,
    bootId,
    at: at(seconds),
    detail: { type: 'script', ip, userAgent: 'iPXE/1.21.1', identity: { mac: deviceId, arch: 'x86_64' }, action: 'boot', reason: 'group g matched', group: 'g', profile },
  };
}
function download(bootId: string, seconds: number, role: 'kernel' | 'initrd', phase: 'started' | 'completed' | 'aborted' = 'completed'): NewEvent {
  return { deviceId: MAC, bootId, at: at(seconds), detail: { type: 'download', path: `/assets/${role}`, role, phase, bytes: 100, status: 200, ip: '10.0.0.9' } };
}

export function storeSuite(name: string, open: OpenStore): void {
  describe(`${name} device store`, () => {
    it('derives a device from a whole boot, in stage order', async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.migrate(); // twice is harmless
      await store.recordEvents([script('b1', 0), download('b1', 1, 'kernel', 'started'), download('b1', 2, 'kernel'), download('b1', 3, 'initrd')]);
      assert.equal((await store.getDevice(MAC))?.stage, 'initrd');
      await store.recordEvents([{ deviceId: MAC, bootId: 'b1', at: at(4), detail: { type: 'beacon', ip: '10.0.0.9' } }]);
      assert.equal((await store.getDevice(MAC))?.stage, 'booting');
      await store.recordEvents([{ deviceId: MAC, at: at(30), detail: { type: 'report', state: 'running', code: 1000, message: 'up', ip: '10.0.0.9', via: 'events' } }]);
      await store.recordEvents([{ deviceId: MAC, at: at(60), detail: { type: 'report', state: 'succeeded', ip: '10.0.0.9', via: 'state-api' } }]);
      const device = await store.getDevice(MAC);
      assert.equal(device?.stage, 'succeeded');
      assert.equal(device?.bootCount, 1);
      assert.equal(device?.lastProfile, 'flatcar');
      assert.equal(device?.lastGroup, 'g');
      assert.equal(device?.lastIp, '10.0.0.9');
      assert.equal(device?.firstSeen, T0.toISOString());
      assert.equal(device?.lastSeen, at(60).toISOString());
      assert.deepEqual(device?.lastReport, { state: 'succeeded', at: at(60).toISOString() });
      const events = await store.listEvents(MAC, 3);
      assert.deepEqual(
        events.map((e) => e.detail.type),
        ['report', 'report', 'beacon'],
        'newest first, limited',
      );
      assert.ok((events[0]?.id ?? 0) > (events[1]?.id ?? 0));
      assert.equal(events[2]?.bootId, 'b1');
      assert.equal(events[2]?.at.toISOString(), at(4).toISOString());
    });

    it('counts boots by boot id and ignores late events of an older boot', async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.recordEvents([script('b1', 0), download('b1', 1, 'kernel')]);
      await store.recordEvents([script('b2', 100, 'other')]);
      await store.recordEvents([download('b1', 101, 'initrd'), { deviceId: MAC, bootId: 'b1', at: at(102), detail: { type: 'beacon', ip: '10.0.0.9' } }]);
      const device = await store.getDevice(MAC);
      assert.equal(device?.bootCount, 2);
      assert.equal(device?.lastBootId, 'b2');
      assert.equal(device?.stage, 'script', 'b1 events do not move b2');
      assert.equal(device?.lastProfile, 'other');
      await store.recordEvents([script('b2', 103, 'other')]);
      assert.equal((await store.getDevice(MAC))?.bootCount, 2, 'the same boot asking again is not a new boot');
      await store.recordEvents([download('b2', 104, 'kernel', 'aborted')]);
      assert.equal((await store.getDevice(MAC))?.stage, 'script', 'an aborted download does not advance');
    });

    it('keeps concurrent writers to one device consistent', async (t) => {
      const store = await open(t);
      if (!store) return;
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordEvents([script(`boot-${i}`, i)])));
      const device = await store.getDevice(MAC);
      assert.equal(device?.bootCount, 20);
      assert.equal((await store.listEvents(MAC, 100)).length, 20);
    });

    it('lists devices with filters and finds a device by its last IP', async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.recordEvents([script('a', 0, 'flatcar', '52:54:00:00:00:01', '10.0.0.1'), script('b', 10, 'linuxkit', '52:54:00:00:00:02', '10.0.0.2')]);
      await store.recordEvents([{ deviceId: '52:54:00:00:00:02', at: at(20), detail: { type: 'report', state: 'failed', code: 1099, ip: '10.0.0.2', via: 'events' } }]);
      assert.deepEqual((await store.listDevices()).map((d) => d.id), ['52:54:00:00:00:01', '52:54:00:00:00:02']);
      assert.deepEqual((await store.listDevices({ stage: 'failed' })).map((d) => d.id), ['52:54:00:00:00:02']);
      assert.deepEqual((await store.listDevices({ profile: 'flatcar' })).map((d) => d.id), ['52:54:00:00:00:01']);
      assert.deepEqual((await store.listDevices({ seenSince: at(5) })).map((d) => d.id), ['52:54:00:00:00:02']);
      assert.deepEqual((await store.listDevices({ limit: 1 })).length, 1);
      assert.equal(await store.findDeviceByIp('10.0.0.2'), '52:54:00:00:00:02');
      assert.equal(await store.findDeviceByIp('10.9.9.9'), undefined);
    });

    it('sets, clears and records next boots; deletes devices', async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.equal(await store.setNextBoot(MAC, { action: 'hold', reason: 'r', setAt: T0.toISOString() }, 'api'), undefined, 'unknown device');
      await store.recordEvents([script('b1', 0)]);
      const held = await store.setNextBoot(MAC, { action: 'once', profile: 'rescue', reason: 'debugging', setAt: T0.toISOString() }, 'api');
      assert.deepEqual(held?.nextBoot, { action: 'once', profile: 'rescue', reason: 'debugging', setAt: T0.toISOString() });
      const cleared = await store.setNextBoot(MAC, null, 'once-consumed');
      assert.equal(cleared?.nextBoot, null);
      const events = await store.listEvents(MAC, 10);
      assert.equal(events[0]?.detail.type, 'next-boot');
      assert.equal(events[0]?.detail.type === 'next-boot' && events[0].detail.by, 'once-consumed');
      assert.equal(await store.deleteDevice(MAC), true);
      assert.equal(await store.getDevice(MAC), undefined);
      assert.deepEqual(await store.listEvents(MAC, 10), []);
      assert.equal(await store.deleteDevice(MAC), false);
    });

    it('saves boot plans and prunes old and excess events', async (t) => {
      const store = await open(t);
      if (!store) return;
      // A boot plan is saved with the script event that starts its boot.
      const plan = { id: 'b1', deviceId: MAC, createdAt: T0.toISOString(), profile: 'p', downloads: { '/assets/k': 'kernel' as const } };
      await store.recordEvents(Array.from({ length: 10 }, (_, i) => (i === 1 ? { ...script('b1', 60), plan } : script(`b${i}`, i * 60))));
      assert.deepEqual((await store.getBootPlan('b1'))?.downloads, { '/assets/k': 'kernel' });
      assert.equal(await store.getBootPlan('nope'), undefined);
      const removed = await pruneAll(store, at(120), 5);
      // Events at 0 and 60 s are older than 120 s; of the 8 left, the oldest 3 exceed 5 per device; and the plan.
      assert.equal(removed, 6);
      assert.equal(await store.prune(at(120), 5), 0, 'nothing left to prune');
      assert.equal((await store.listEvents(MAC, 100)).length, 5);
      assert.equal(await store.getBootPlan('b1'), undefined, 'old boot plans go too');
      assert.equal((await store.getDevice(MAC))?.bootCount, 10, 'the summary stays');
    });

    it('keeps one progress event per running download and none once it ended, counted right', async (t) => {
      const store = await open(t, { maxEventsPerDevice: 10 });
      if (!store) return;
      const progress = (seconds: number, path: string, bytes: number, bootId = 'b1'): NewEvent => ({
        deviceId: MAC,
        bootId,
        at: at(seconds),
        detail: { type: 'download', path, role: 'kernel', phase: 'progress', bytes, status: 200, ip: '10.0.0.9', total: 1000, ms: seconds * 1000, rate: 100 },
      });
      await store.recordEvents([script('b1', 0), { ...download('b1', 1, 'kernel', 'started'), detail: { type: 'download', path: '/assets/kernel', role: 'kernel', phase: 'started', bytes: 0, status: 200, ip: '10.0.0.9', total: 1000 } }]);
      // One at a time, and several in one batch; another file's progress is its own.
      for (let i = 2; i < 30; i++) await store.recordEvents([progress(i, '/assets/kernel', i * 10)]);
      await store.recordEvents([progress(30, '/assets/kernel', 300), progress(31, '/assets/kernel', 310), progress(31, '/assets/other', 5)]);
      const running = (await store.listEvents(MAC, 1000)).filter((e) => e.detail.type === 'download' && e.detail.phase === 'progress');
      assert.deepEqual(running.map((e) => e.detail.type === 'download' && [e.detail.path, e.detail.bytes]), [['/assets/other', 5], ['/assets/kernel', 310]]);
      assert.deepEqual((await store.getDevice(MAC))?.downloads?.map((d) => [d.path, d.phase, d.bytes, d.total]), [['/assets/kernel', 'progress', 310, 1000], ['/assets/other', 'progress', 5, 1000]]);
      await store.recordEvents([download('b1', 40, 'kernel')]);
      const events = await store.listEvents(MAC, 1000);
      assert.deepEqual(events.map((e) => e.detail.type === 'download' ? `${e.detail.phase} ${e.detail.path}` : e.detail.type), ['completed /assets/kernel', 'progress /assets/other', 'started /assets/kernel', 'script']);
      // The event count stayed right: 11 events are within the cap's slack (10 + 1), so none is
      // trimmed; a count that still held the 29 replaced progress events would trim to 10.
      await store.recordEvents(Array.from({ length: 7 }, (_, i) => ({ deviceId: MAC, at: at(50 + i), detail: { type: 'beacon', ip: '10.0.0.9' } })));
      assert.equal(eventSlack(10), 1);
      assert.equal((await store.listEvents(MAC, 1000)).length, 11, 'no event trimmed: the count does not include replaced progress events');
    });

    it('holds the per-device event cap as events are written, however many one device sends', async (t) => {
      const store = await open(t, { maxEventsPerDevice: 10 });
      if (!store) return;
      for (let i = 0; i < 40; i++) await store.recordEvents([script(`b${i}`, i)]);
      await store.recordEvents(Array.from({ length: 30 }, (_, i) => script(`c${i}`, 100 + i)));
      const kept = await store.listEvents(MAC, 1000);
      assert.ok(kept.length >= 10 && kept.length <= 10 + eventSlack(10), `${kept.length} events kept`);
      assert.equal(kept[0]?.bootId, 'c29', 'the newest are kept');
      assert.equal((await store.getDevice(MAC))?.bootCount, 70, 'the summary counts every boot');
      await pruneAll(store, at(0), 10);
      assert.equal((await store.listEvents(MAC, 1000)).length, 10, 'pruning trims to the cap exactly');
    });

    it('keeps only the most recently seen unknown devices, never those that booted or have a next boot', async (t) => {
      const store = await open(t, { maxUnknownDevices: 20 });
      if (!store) return;
      // The oldest two: one booted (its OS sent a beacon), one an operator set a next boot for.
      await store.recordEvents([script('booted', 0, 'flatcar', '52:54:00:00:00:01'), { deviceId: '52:54:00:00:00:01', bootId: 'booted', at: at(1), detail: { type: 'beacon', ip: '10.0.0.9' } }]);
      await store.recordEvents([{ ...script('steered', 2, 'flatcar', '52:54:00:00:00:02'), detail: { type: 'script', ip: '10.0.0.8', userAgent: 'iPXE', identity: {}, action: 'wait', reason: 'no group matches' } }]);
      await store.setNextBoot('52:54:00:00:00:02', { action: 'hold', reason: 'r', setAt: T0.toISOString() }, 'api');
      // A flood of made-up MACs, in batches as the recorder writes them.
      for (let batch = 0; batch < 6; batch++) {
        await store.recordEvents(Array.from({ length: 10 }, (_, i) => script(`u${batch * 10 + i}`, 10 + batch * 10 + i, 'flatcar', macOf(batch * 10 + i))));
      }
      await store.settled();
      const afterFlood = await unknownIds(store);
      assert.ok(afterFlood.length < 60 && afterFlood.length <= 20 + 10, `the store pruned during the flood by itself (${afterFlood.length} kept)`);
      await pruneAll(store, at(0), 1000);
      assert.deepEqual(await unknownIds(store), Array.from({ length: 20 }, (_, i) => macOf(40 + i)), 'the 20 most recently seen');
      assert.deepEqual(await store.listEvents(macOf(0), 10), [], 'with their events');
      assert.equal(await store.getBootPlan('u0'), undefined, 'and boot plans');
      assert.equal((await store.getDevice('52:54:00:00:00:01'))?.stage, 'booting');
      assert.equal((await store.getDevice('52:54:00:00:00:02'))?.nextBoot?.action, 'hold');
    });

    it('a device stays booted for the unknown-device limit after it asks for a new script', async (t) => {
      const store = await open(t, { maxUnknownDevices: 1 });
      if (!store) return;
      // Beacon and the next script in one batch: the device's stage ends at `script`.
      await store.recordEvents([script('b1', 0), { deviceId: MAC, bootId: 'b1', at: at(1), detail: { type: 'beacon', ip: '10.0.0.9' } }, script('b2', 2)]);
      await store.recordEvents([script('x', 3, 'flatcar', macOf(1)), script('y', 4, 'flatcar', macOf(2))]);
      await pruneAll(store, at(0), 1000);
      assert.equal((await store.getDevice(MAC))?.stage, 'script');
      assert.deepEqual(await unknownIds(store), [macOf(2)]);
    });

    it('removes devices whose events all expired, unless they have a next boot', async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.recordEvents([script('old', 0, 'flatcar', '52:54:00:00:00:01'), { deviceId: '52:54:00:00:00:01', bootId: 'old', at: at(1), detail: { type: 'beacon', ip: '10.0.0.9' } }]);
      await store.recordEvents([script('kept', 0, 'flatcar', '52:54:00:00:00:02')]);
      await store.setNextBoot('52:54:00:00:00:02', { action: 'local', reason: 'installed', setAt: T0.toISOString() }, 'api');
      await store.recordEvents([script('new', 1000, 'flatcar', '52:54:00:00:00:03')]);
      await pruneAll(store, at(500), 1000);
      assert.equal(await store.getDevice('52:54:00:00:00:01'), undefined);
      assert.deepEqual(await store.listEvents('52:54:00:00:00:01', 10), []);
      assert.equal((await store.getDevice('52:54:00:00:00:02'))?.nextBoot?.action, 'local', 'a device with a next boot stays');
      assert.equal((await store.getDevice('52:54:00:00:00:03'))?.lastBootId, 'new', 'a device seen since stays');
    });

    it('streams committed events to subscribers', async (t) => {
      const store = await open(t);
      if (!store) return;
      const seen: number[] = [];
      const unsubscribe = store.subscribe((event) => seen.push(event.id));
      const stored = await store.recordEvents([script('b1', 0), download('b1', 1, 'kernel')]);
      await waitFor(() => seen.length >= 2, 5000, 'two events');
      assert.deepEqual(seen, stored.map((e) => e.id));
      unsubscribe();
      await store.recordEvents([script('b2', 2)]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(seen.length, 2, 'nothing after unsubscribing');
    });

    it('reads events after a cursor in id order and keeps the outbox cursor, never moving it back', async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.equal(await store.latestEventId(), 0);
      assert.equal(await store.outboxCursor('origin'), 0);
      const stored = await store.recordEvents([script('b1', 0), download('b1', 1, 'kernel'), download('b1', 2, 'initrd')]);
      const ids = stored.map((e) => e.id);
      assert.equal(await store.latestEventId(), ids[2]);
      assert.deepEqual((await store.eventsAfter(0, 2)).map((e) => e.id), ids.slice(0, 2));
      assert.deepEqual((await store.eventsAfter(ids[0] ?? 0, 10)).map((e) => [e.id, e.detail.type]), [[ids[1], 'download'], [ids[2], 'download']]);
      await store.advanceOutboxCursor('origin', ids[1] ?? 0);
      await store.advanceOutboxCursor('origin', ids[0] ?? 0);
      assert.equal(await store.outboxCursor('origin'), ids[1]);
      assert.equal(await store.outboxCursor('elsewhere'), 0);
    });

    it('keeps forwarded events once per site and id, and lists sites with their heartbeat', async (t) => {
      const store = await open(t);
      if (!store) return;
      const event = (id: number, seconds: number) => ({ id, deviceId: MAC, bootId: 'b1', at: at(seconds).toISOString(), type: 'beacon' as const, detail: { type: 'beacon', ip: '10.0.0.9' } });
      assert.deepEqual(await store.recordSiteEvents('rack-7', [event(1, 0), event(2, 1)], at(10)), { added: 2, duplicates: 0 });
      assert.deepEqual(await store.recordSiteEvents('rack-7', [event(2, 1), event(3, 2)], at(11)), { added: 1, duplicates: 1 });
      assert.deepEqual(await store.recordSiteEvents('rack-8', [event(1, 0)], at(12)), { added: 1, duplicates: 0 }, 'another site may use the same ids');
      const heartbeat = {
        version: '0.1.0',
        uptimeSeconds: 5,
        intervalSeconds: 30,
        cache: { bytesUsed: 10, maxBytes: 100, fills: 1, failedFills: 0, staleServed: 0 },
        store: { kind: 'sqlite', healthy: true },
        data: { etag: '"x"', appliedAt: null, lastSyncAt: null, lastSyncError: null },
        events: { latestId: 3, forwardedThrough: 3 },
      };
      await store.recordSiteHeartbeat('rack-7', heartbeat, at(20));
      const sites = await store.listSites();
      assert.deepEqual(
        sites.map((site) => [site.name, site.eventsReceived, site.lastEventId, site.lastHeartbeat]),
        [
          ['rack-7', 3, 3, at(20).toISOString()],
          ['rack-8', 1, 1, null],
        ],
      );
      assert.deepEqual(sites[0]?.heartbeat, heartbeat);
      const events = await store.listSiteEvents('rack-7', 10);
      assert.deepEqual(events.map((e) => [e.site, e.id, e.at]), [['rack-7', 3, at(2).toISOString()], ['rack-7', 2, at(1).toISOString()], ['rack-7', 1, at(0).toISOString()]]);
      assert.deepEqual(events[0]?.detail, { type: 'beacon', ip: '10.0.0.9' });
      await pruneAll(store, at(1), 1000);
      assert.deepEqual((await store.listSiteEvents('rack-7', 10)).map((e) => e.id), [3, 2], 'retention applies to forwarded events too');
    });
  });
}
