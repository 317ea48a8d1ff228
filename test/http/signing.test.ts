/** Loading the signing key: every way a key cannot be used is one line at start. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { loadSigner, SigningKeyError } from '../../src/http/signing.ts';
import { makeTree } from '../helpers.ts';

async function keyPair(passphrase?: string) {
  return openpgp.generateKey({ type: 'ecc', userIDs: [{ name: 'bootdepot test', email: 'test@example.invalid' }], format: 'armored', ...(passphrase ? { passphrase } : {}) });
}

async function verifies(publicKey: string, body: string, signature: string | Uint8Array): Promise<boolean> {
  const verificationKeys = await openpgp.readKey({ armoredKey: publicKey });
  const sig = typeof signature === 'string' ? await openpgp.readSignature({ armoredSignature: signature }) : await openpgp.readSignature({ binarySignature: signature });
  const { signatures } = await openpgp.verify({ message: await openpgp.createMessage({ binary: new Uint8Array(Buffer.from(body)) }), signature: sig, verificationKeys });
  try {
    await signatures[0]?.verified;
    return signatures.length === 1;
  } catch {
    return false;
  }
}

async function failure(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof SigningKeyError, `expected a SigningKeyError, got ${String(error)}`);
  assert.doesNotMatch(error.message, /\n/);
  return error.message;
}

describe('loadSigner', () => {
  it('signs bytes exactly, binary and armored, with an unprotected key', async (t) => {
    const { privateKey, publicKey } = await keyPair();
    const dir = await makeTree(t, { 'key.asc': privateKey });
    const signer = await loadSigner({ keyFile: path.join(dir, 'key.asc') });
    assert.match(signer.fingerprint, /^[0-9a-f]{40,64}$/);
    const body = '#!ipxe\necho ünïcødé\n';
    const binary = await signer.sign(body, false);
    assert.ok(binary instanceof Uint8Array);
    const armored = await signer.sign(body, true);
    assert.match(String(armored), /^-----BEGIN PGP SIGNATURE-----/);
    assert.equal(await verifies(publicKey, body, binary), true);
    assert.equal(await verifies(publicKey, body, String(armored)), true);
    assert.equal(await verifies(publicKey, `${body} `, binary), false);
  });

  it('unlocks a protected key from a passphrase file or the environment', async (t) => {
    const { privateKey, publicKey } = await keyPair('correct horse battery staple');
    const dir = await makeTree(t, { 'key.asc': privateKey, pass: 'correct horse battery staple\n' });
    const keyFile = path.join(dir, 'key.asc');
    const fromFile = await loadSigner({ keyFile, passphraseFile: path.join(dir, 'pass') });
    assert.equal(await verifies(publicKey, 'x', await fromFile.sign('x', false)), true);
    const fromEnv = await loadSigner({ keyFile, env: { BOOTDEPOT_SIGNING_PASSPHRASE: 'correct horse battery staple' } });
    assert.equal(await verifies(publicKey, 'y', await fromEnv.sign('y', true)), true);
  });

  it('says in one line what is wrong with the key', async (t) => {
    const protectedKey = await keyPair('secret');
    const dir = await makeTree(t, { 'protected.asc': protectedKey.privateKey, 'public.asc': protectedKey.publicKey, 'junk.asc': 'not a key\n', wrong: 'not the passphrase\n' });
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'missing.asc') })), /^cannot read the signing key .*missing\.asc: ENOENT \(signing\.keyFile\)$/);
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'junk.asc') })), /junk\.asc is not usable: expected an armored OpenPGP private key/);
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'public.asc') })), /public\.asc is not usable: it is a public key: export the private one/);
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'protected.asc'), env: {} })), /protected\.asc is protected by a passphrase: put it in a file named by signing\.passphraseFile, or in BOOTDEPOT_SIGNING_PASSPHRASE$/);
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'protected.asc'), passphraseFile: path.join(dir, 'wrong') })), /protected\.asc: the passphrase does not unlock it/);
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'protected.asc'), passphraseFile: path.join(dir, 'nope') })), /cannot read the signing key's passphrase file .*nope: ENOENT/);
  });

  it('refuses an expired key at start rather than at the first request', async (t) => {
    const expired = await openpgp.generateKey({ type: 'ecc', userIDs: [{ name: 'old' }], format: 'armored', date: new Date(Date.now() - 7 * 86400_000), keyExpirationTime: 3600 });
    const dir = await makeTree(t, { 'old.asc': expired.privateKey });
    assert.match(await failure(loadSigner({ keyFile: path.join(dir, 'old.asc') })), /old\.asc cannot sign: /);
  });
});
