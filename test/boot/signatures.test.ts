/**
 * OpenPGP signatures of scripts and configs (`<path>.sig`, `<path>.asc`), verified with openpgp
 * against the body the unsigned URL answered; asking for one never records a second boot.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import * as openpgp from 'openpgp';
import { loadSigner } from '../../src/http/signing.ts';
import { makeTree, testApp, waitFor } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const DATA = {
  'profiles/fc.yaml': 'flatcar: {channel: stable, version: 4152.2.0, source: local}\nignition_id: node.ign\ngeneric_id: node.cfg\n',
  'generic/node.cfg': 'RACK={{.rack}}\nMAC={{.request.query.mac}}\n',
  'ignition/node.ign': '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]}}',
  'groups/fc.yaml': 'profile: fc\nselector: {role: node}\nmetadata: {rack: r1}\n',
};
const ASSETS = {
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe.vmlinuz': 'kernel',
  'flatcar/stable/amd64/4152.2.0/flatcar_production_pxe_image.cpio.gz': 'initrd',
};

const keys = openpgp.generateKey({ type: 'ecc', userIDs: [{ name: 'bootdepot test' }], format: 'armored' });

async function signedApp(t: TestContext, options: { store?: false } = {}) {
  const { privateKey, publicKey } = await keys;
  const dir = await makeTree(t, { 'key.asc': privateKey });
  const signer = await loadSigner({ keyFile: path.join(dir, 'key.asc') });
  const built = await testApp(t, { data: DATA, assets: ASSETS, signer, ...options });
  return { ...built, publicKey };
}

/** Verifies a detached signature (binary `.sig` or armored `.asc`) of exactly `body`. */
async function verify(publicKey: string, body: string, signature: Buffer, armored: boolean): Promise<void> {
  const sig = armored ? await openpgp.readSignature({ armoredSignature: signature.toString('utf8') }) : await openpgp.readSignature({ binarySignature: new Uint8Array(signature) });
  const result = await openpgp.verify({ message: await openpgp.createMessage({ binary: new Uint8Array(Buffer.from(body, 'utf8')) }), signature: sig, verificationKeys: await openpgp.readKey({ armoredKey: publicKey }) });
  assert.equal(result.signatures.length, 1);
  await result.signatures[0]?.verified;
}

async function rejects(publicKey: string, body: string, signature: Buffer): Promise<boolean> {
  try {
    await verify(publicKey, body, signature, false);
    return false;
  } catch {
    return true;
  }
}

describe('signatures', () => {
  it('without a key answers 404 saying so', async (t) => {
    const { app } = await testApp(t, { data: DATA, assets: ASSETS });
    for (const url of [`/ipxe.sig?mac=${MAC}`, '/boot.ipxe.asc', `/ignition.sig?mac=${MAC}`]) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.body, 'no signatures here: this bootdepot has no signing key (signing.keyFile)\n');
    }
  });

  it('signs the script this address was answered, and records no second boot', async (t) => {
    const { app, publicKey, store } = await signedApp(t);
    const query = `mac=${MAC}&role=node`;
    const script = await app.inject({ url: `/ipxe?${query}` });
    assert.equal(script.statusCode, 200);
    assert.match(script.body, /\/b\/[0-9a-f]{32}\/assets\//);
    for (const [suffix, armored] of [['sig', false], ['asc', true]] as const) {
      const res = await app.inject({ url: `/ipxe.${suffix}?${query}` });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], armored ? 'application/pgp-signature' : 'application/octet-stream');
      await verify(publicKey, script.body, res.rawPayload, armored);
    }
    const scripts = (await store?.listEvents(MAC, 100))?.filter((event) => event.detail.type === 'script') ?? [];
    assert.equal(scripts.length, 1, 'one script event: the signature requests decided nothing');
    // Another boot's answer does not match this signature.
    const next = await app.inject({ url: `/ipxe?${query}` });
    const sig = await app.inject({ url: `/ipxe.sig?${query}` });
    await verify(publicKey, next.body, sig.rawPayload, false);
    assert.equal(await rejects(publicKey, script.body, sig.rawPayload), true);
  });

  it('refuses to sign a boot nobody was answered, but signs a wait as /ipxe answers it', async (t) => {
    const { app, publicKey, store } = await signedApp(t);
    const unasked = await app.inject({ url: `/ipxe.sig?mac=${MAC}&role=node` });
    assert.equal(unasked.statusCode, 404);
    assert.match(unasked.body, /^nothing to sign: no script was answered to this address for this URL in the last 10 minutes: fetch it first/);
    const wait = await app.inject({ url: `/grub.asc?mac=${MAC}&role=nobody` });
    assert.equal(wait.statusCode, 200, wait.body);
    const waitBody = (await app.inject({ url: `/grub?mac=${MAC}&role=nobody` })).body;
    await verify(publicKey, waitBody, wait.rawPayload, true);
    const scripts = (await store?.listEvents(MAC, 100))?.filter((event) => event.detail.type === 'script') ?? [];
    assert.equal(scripts.length, 1, 'only the /grub request was recorded');
  });

  it('signs GRUB configs and the bootstrap', async (t) => {
    const { app, publicKey } = await signedApp(t);
    const grub = await app.inject({ url: `/grub?mac=${MAC}&role=node` });
    await verify(publicKey, grub.body, (await app.inject({ url: `/grub.sig?mac=${MAC}&role=node` })).rawPayload, false);
    for (const url of ['/boot.ipxe', '/boot.ipxe.0']) {
      const body = (await app.inject({ url })).body;
      await verify(publicKey, body, (await app.inject({ url: `${url}.sig` })).rawPayload, false);
      await verify(publicKey, body, (await app.inject({ url: `${url}.asc` })).rawPayload, true);
    }
  });

  it('signs a boot\'s configs under the same rules as the configs, recording no config fetch', async (t) => {
    const { app, publicKey, store } = await signedApp(t);
    const script = await app.inject({ url: `/ipxe?mac=${MAC}&role=node` });
    const bootId = /\/b\/([0-9a-f]{32})\/ignition/.exec(script.body)?.[1];
    assert.ok(bootId, script.body);
    for (const what of ['ignition', 'metadata', 'generic']) {
      const sig: LightMyRequestResponse = await app.inject({ url: `/b/${bootId}/${what}.sig` });
      assert.equal(sig.statusCode, 200, sig.body);
      const plainSig: LightMyRequestResponse = await app.inject({ url: `/${what}.asc?mac=${MAC}` });
      assert.equal(plainSig.statusCode, 200, plainSig.body);
      const body = (await app.inject({ url: `/b/${bootId}/${what}` })).body;
      await verify(publicKey, body, sig.rawPayload, false);
      // Metadata names the request it answers (REQUEST_QUERY_*, as matchbox's): the plain URL's differs.
      const plainBody = what === 'metadata' ? (await app.inject({ url: `/${what}?mac=${MAC}` })).body : body;
      await verify(publicKey, plainBody, plainSig.rawPayload, true);
    }
    const refused = await app.inject({ url: `/ignition.sig?mac=${MAC}`, remoteAddress: '10.9.9.9' });
    assert.equal(refused.statusCode, 403);
    assert.match(refused.body, /^nothing to sign: ignition refused: asked from 10\.9\.9\.9/);
    assert.equal((await app.inject({ url: '/b/00000000000000000000000000000000/ignition.sig' })).statusCode, 404);
    // Four real fetches were made (ignition, metadata twice, generic): only those are recorded as served.
    await waitFor(async () => ((await store?.listEvents(MAC, 100)) ?? []).filter((e) => e.detail.type === 'config' && 'status' in e.detail && e.detail.status === 200).length >= 4, 5000, 'config events');
    const served = ((await store?.listEvents(MAC, 100)) ?? []).filter((e) => e.detail.type === 'config' && 'status' in e.detail && e.detail.status === 200);
    assert.equal(served.length, 4);
  });

  it('signs a booting answer decided afresh when boot state is off: it is the same bytes', async (t) => {
    const { app, publicKey } = await signedApp(t, { store: false });
    const sig = await app.inject({ url: `/ipxe.sig?mac=${MAC}&role=node` });
    assert.equal(sig.statusCode, 200, sig.body);
    const script = await app.inject({ url: `/ipxe?mac=${MAC}&role=node` });
    assert.match(script.body, /^kernel /m);
    await verify(publicKey, script.body, sig.rawPayload, false);
  });
});
