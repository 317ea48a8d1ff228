/** `bootdepot serve` with signing.keyFile: a key that cannot be used stops the start with one line. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { makeTree } from '../helpers.ts';
import { runIn } from './run.ts';

const CLEAN_ENV = { BOOTDEPOT_CONFIG: undefined, BOOTDEPOT_DATA_DIR: undefined, BOOTDEPOT_ASSETS_DIR: undefined, BOOTDEPOT_CACHE_DIR: undefined, BOOTDEPOT_PORT: undefined, BOOTDEPOT_SIGNING_PASSPHRASE: undefined };

function config(keyFile: string, passphraseFile = ''): string {
  return `paths: {data: data, assets: assets}\nmirror: {cacheDir: cache}\nstate: {enabled: false}\nserver: {host: 127.0.0.1, port: 0}\nsigning: {keyFile: ${JSON.stringify(keyFile)}, passphraseFile: ${JSON.stringify(passphraseFile)}}\n`;
}

describe('bootdepot serve with a signing key that cannot be used', () => {
  it('stops at start with one clear line: missing file, wrong passphrase, no passphrase', async (t) => {
    const key = await openpgp.generateKey({ type: 'ecc', userIDs: [{ name: 'bootdepot test' }], passphrase: 'right', format: 'armored' });
    const dir = await makeTree(t, { 'data/.keep': '', 'assets/.keep': '', 'key.asc': key.privateKey, wrong: 'wrong\n', 'missing.yaml': config('absent.asc'), 'wrong.yaml': config('key.asc', 'wrong'), 'nopass.yaml': config('key.asc') });
    const cases: [string, RegExp][] = [
      ['missing.yaml', /^bootdepot: cannot read the signing key \S+absent\.asc: ENOENT \(signing\.keyFile\)\n$/],
      ['wrong.yaml', /^bootdepot: signing key \S+key\.asc: the passphrase does not unlock it \([^\n]*\)\n$/],
      ['nopass.yaml', /^bootdepot: signing key \S+key\.asc is protected by a passphrase: put it in a file named by signing\.passphraseFile, or in BOOTDEPOT_SIGNING_PASSPHRASE\n$/],
    ];
    for (const [file, expected] of cases) {
      const result = await runIn(dir, ['serve', '--config', file], CLEAN_ENV);
      assert.equal(result.code, 1, `${file}: ${result.stderr}`);
      assert.match(result.stderr, expected, file);
      assert.doesNotMatch(result.stdout, /listening/);
    }
  });
});
