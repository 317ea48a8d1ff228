/**
 * Only verified reports, beacons and script requests change a device's state. Each case is an
 * attack seen on a shared provisioning network, made by a machine that knows the victim's MAC.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { testApp, waitFor } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const VICTIM = '10.0.0.5';
const ATTACKER = '10.0.0.66';
const SERIAL_HEX = Buffer.from('SN-VICTIM-1').toString('hex');
const DATA = {
  'profiles/installer.yaml': 'linuxkit: {name: inst}\ninstallOnce: true\n',
  'profiles/rescue.yaml': 'linuxkit: {name: rescue}\n',
  'groups/default.yaml': 'profile: installer\n',
};
const ASSETS = {
  'linuxkit/inst-kernel': 'K',
  'linuxkit/inst-initrd.img': 'I',
  'linuxkit/rescue-kernel': 'k',
  'linuxkit/rescue-initrd.img': 'i',
};

async function setup(t: TestContext) {
  const built = await testApp(t, { data: DATA, assets: ASSETS });
  const { app } = built;
  const store = built.store;
  assert.ok(store);
  const script = (ip: string, query = `mac=${MAC}&serial_hex=${SERIAL_HEX}`) => app.inject({ url: `/ipxe?${query}`, remoteAddress: ip });
  const report = (ip: string, state: string, path = `/events?mac=${MAC}`) => app.inject({ method: 'POST', url: path, remoteAddress: ip, payload: JSON.stringify({ state }), headers: { 'content-type': 'application/json' } });
  const device = async () => {
    await built.bootState?.recorder.flush();
    return store.getDevice(MAC);
  };
  return { app, store, script, report, device };
}

function beaconPath(body: string): string {
  const url = /imgfetch --name bootdepot-beacon (\S+)/.exec(body)?.[1];
  assert.ok(url, body);
  return url.replace(/^http:\/\/[^/]+/, '');
}

describe('verified reports', () => {
  it('does not let a spoofed succeeded from another address flip an installOnce machine to its disk', async (t) => {
    const { script, report, device } = await setup(t);
    await script(VICTIM);
    const spoofed = await report(ATTACKER, 'succeeded');
    assert.equal(spoofed.statusCode, 200);
    assert.equal(spoofed.json<{ verified: boolean }>().verified, false);
    assert.equal((await device())?.nextBoot, null, 'installOnce not applied');
    assert.notEqual((await device())?.stage, 'succeeded');
    // The machine's own report, from its own address, does apply it.
    const genuine = await report(VICTIM, 'succeeded');
    assert.equal(genuine.json<{ verified: boolean }>().verified, true);
    assert.equal((await device())?.nextBoot?.action, 'local');
  });

  it('applies installOnce to the boot that installed, even after a script fetch without the serial', async (t) => {
    const { script, report, device } = await setup(t);
    await script(VICTIM);
    // Someone fetches the victim's script by MAC alone, as if to boot another profile in its name.
    const spoiler = await script(ATTACKER, `mac=${MAC}&profile=x`);
    assert.equal(spoiler.statusCode, 200);
    assert.equal((await device())?.lastIp, VICTIM, 'the record is unchanged');
    await report(VICTIM, 'succeeded');
    assert.equal((await device())?.nextBoot?.action, 'local', 'no reinstall on the next boot');
  });

  it('does not let another machine use up an operator\'s once through the victim\'s script and beacon', async (t) => {
    const { app, store, script, device } = await setup(t);
    await script(VICTIM);
    await store.setNextBoot(MAC, { action: 'once', profile: 'rescue', reason: 'memtest', setAt: new Date().toISOString() }, 'api');
    const stolen = await script(ATTACKER, `mac=${MAC}&serial_hex=${Buffer.from('OTHER').toString('hex')}&hostname=evil`);
    assert.match(stolen.body, /profile rescue/);
    await app.inject({ url: beaconPath(stolen.body), remoteAddress: ATTACKER });
    const after = await device();
    assert.equal(after?.nextBoot?.action, 'once', 'the once is still there');
    assert.equal(after?.identity.serial, 'SN-VICTIM-1');
    assert.equal(after?.identity.hostname, undefined);
    // Its secrets are refused too: the request contradicted the recorded serial.
    const boot = /\/b\/([0-9a-f]{32})\//.exec(stolen.body)?.[1];
    assert.equal((await app.inject({ url: `/b/${boot}/metadata`, remoteAddress: ATTACKER })).statusCode, 403);
    // The genuine machine's boot uses it up.
    const genuine = await script(VICTIM);
    await app.inject({ url: beaconPath(genuine.body), remoteAddress: VICTIM });
    await waitFor(async () => (await device())?.nextBoot === null, 3000, 'the once to be used up');
  });

  it('files a report from another address as unverified, and still finds the victim by its own address', async (t) => {
    const { script, report, device, store } = await setup(t);
    await script(VICTIM);
    await report(ATTACKER, 'failed');
    // The victim reports without ?mac=: found by the address its boot came from.
    const own = await report(VICTIM, 'running', '/events');
    assert.equal(own.statusCode, 200, own.body);
    assert.equal(own.json<{ device: string; verified: boolean }>().device, MAC);
    assert.equal(own.json<{ verified: boolean }>().verified, true);
    const events = await store.listEvents(MAC, 20);
    const reports = events.flatMap((e) => (e.detail.type === 'report' ? [{ state: e.detail.state, verified: e.detail.verified }] : []));
    assert.deepEqual(reports, [
      { state: 'running', verified: true },
      { state: 'failed', verified: false },
    ]);
    assert.equal((await device())?.stage, 'running');
  });

  it('takes a report to the boot\'s own URL as verified from any address', async (t) => {
    const { script, report, device } = await setup(t);
    const body = (await script(VICTIM)).body;
    const boot = /\/b\/([0-9a-f]{32})\//.exec(body)?.[1];
    const res = await report('10.9.9.9', 'succeeded', `/b/${boot}/report`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ verified: boolean }>().verified, true);
    assert.equal((await device())?.nextBoot?.action, 'local');
    assert.equal((await report('10.9.9.9', 'succeeded', `/b/${'0'.repeat(32)}/report`)).statusCode, 404);
  });
});
