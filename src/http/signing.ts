/**
 * OpenPGP detached signatures of answers (matchbox's `-key-ring-path`): `GET <path>.sig`
 * (binary) and `<path>.asc` (ASCII-armored) sign exactly the bytes `<path>` answers, so a
 * client that holds the public key can check a script or config before it runs it. The key is
 * an armored private key; a passphrase, if it has one, comes from a file or the environment and
 * is used once at start to unlock it. Signing uses openpgp (OpenPGP.js), which is pure
 * JavaScript and keeps up with RFC 9580. It is loaded only when a key is configured: it is the
 * largest module bootdepot has (about 8 MiB of memory once loaded).
 */
import { readFile } from 'node:fs/promises';
import type * as OpenPGP from 'openpgp';

/** Where the passphrase is read when no file names it. */
export const SIGNING_PASSPHRASE_ENV = 'BOOTDEPOT_SIGNING_PASSPHRASE';

export interface ResponseSigner {
  /** The key's fingerprint (hex), for the start log and docs. */
  readonly fingerprint: string;
  /** A detached signature of `body` (its UTF-8 bytes when a string): binary, or armored text. */
  sign(body: string | Uint8Array, armored: boolean): Promise<Uint8Array | string>;
}

/** A key that cannot be used: the message is one line saying what to fix. */
export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

export interface SigningKeySource {
  /** Path of the armored private key. */
  keyFile: string;
  /** Path of a file holding the passphrase (its first line); else the environment's. */
  passphraseFile?: string | undefined;
  /** Environment to read {@link SIGNING_PASSPHRASE_ENV} from. */
  env?: Readonly<Record<string, string | undefined>>;
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? '';
}

async function readPassphrase(source: SigningKeySource): Promise<string | undefined> {
  if (source.passphraseFile) {
    let text: string;
    try {
      text = await readFile(source.passphraseFile, 'utf8');
    } catch (error) {
      throw new SigningKeyError(`cannot read the signing key's passphrase file ${source.passphraseFile}: ${(error as NodeJS.ErrnoException).code ?? firstLine((error as Error).message)} (signing.passphraseFile)`);
    }
    // Only a trailing line break is dropped: a passphrase may have spaces anywhere.
    return text.replace(/\r?\n$/, '');
  }
  const fromEnv = source.env?.[SIGNING_PASSPHRASE_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/** Reads, unlocks and tries the key: every way it can fail is a {@link SigningKeyError} at start, never at a request. */
export async function loadSigner(source: SigningKeySource): Promise<ResponseSigner> {
  const where = `signing key ${source.keyFile}`;
  let armoredKey: string;
  try {
    armoredKey = await readFile(source.keyFile, 'utf8');
  } catch (error) {
    throw new SigningKeyError(`cannot read the ${where}: ${(error as NodeJS.ErrnoException).code ?? firstLine((error as Error).message)} (signing.keyFile)`);
  }
  const openpgp = await import('openpgp');
  let key: OpenPGP.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey });
  } catch (error) {
    const message = firstLine((error as Error).message);
    const hint = /-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(armoredKey) ? 'it is a public key: export the private one with `gpg --armor --export-secret-keys KEYID`' : `expected an armored OpenPGP private key (gpg --armor --export-secret-keys KEYID): ${message}`;
    throw new SigningKeyError(`${where} is not usable: ${hint}`);
  }
  if (!key.isDecrypted()) {
    const passphrase = await readPassphrase(source);
    if (passphrase === undefined) throw new SigningKeyError(`${where} is protected by a passphrase: put it in a file named by signing.passphraseFile, or in ${SIGNING_PASSPHRASE_ENV}`);
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase });
    } catch (error) {
      throw new SigningKeyError(`${where}: the passphrase does not unlock it (${firstLine((error as Error).message)})`);
    }
  }
  const sign = async (body: string | Uint8Array, armored: boolean): Promise<Uint8Array | string> => {
    const bytes: Uint8Array = typeof body === 'string' ? new Uint8Array(Buffer.from(body, 'utf8')) : body;
    const message: OpenPGP.Message<Uint8Array> = await openpgp.createMessage({ binary: bytes });
    if (armored) return openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored' }) as Promise<string>;
    return openpgp.sign({ message, signingKeys: key, detached: true, format: 'binary' }) as Promise<Uint8Array>;
  };
  // An expired or revoked key, or one with no key that may sign, fails here rather than at the first request.
  try {
    await sign('bootdepot signing check', false);
  } catch (error) {
    throw new SigningKeyError(`${where} cannot sign: ${firstLine((error as Error).message)}`);
  }
  return { fingerprint: key.getFingerprint(), sign };
}
