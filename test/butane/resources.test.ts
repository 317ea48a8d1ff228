import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { escapeDataUrl, localPath, makeDataUrl, readLocalFile } from '../../src/butane/resources.ts';

describe('data URLs', () => {
  it('escapes every byte but the unreserved ones', () => {
    assert.equal(escapeDataUrl(Buffer.from("a b/c:d'e(f)!~*._-%\n")), "a%20b%2Fc%3Ad'e(f)!~*._-%25%0A");
    assert.equal(escapeDataUrl(Buffer.from('ä')), '%C3%A4');
  });

  it('picks the shortest encoding: escaped text, base64 for binary, gzip for repetitive data', () => {
    assert.deepEqual(makeDataUrl(Buffer.from('hello'), undefined), { source: 'data:,hello', compression: '' });
    const binary = makeDataUrl(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 255]), undefined);
    assert.deepEqual(binary, { source: 'data:;base64,AAECAwQFBgcI/w==', compression: '' });
    assert.deepEqual(makeDataUrl(Buffer.from([0, 1, 2, 3, 255]), undefined), { source: 'data:,%00%01%02%03%FF', compression: '' }, 'a tie keeps the escaped form');
    const text = 'setting = value\n'.repeat(200);
    const gz = makeDataUrl(Buffer.from(text), undefined);
    assert.equal(gz.compression, 'gzip');
    assert.equal(gunzipSync(Buffer.from(gz.source.slice('data:;base64,'.length), 'base64')).toString(), text);
  });

  it('never compresses what the config says is compressed already, nor when compression is off', () => {
    const text = Buffer.from('x'.repeat(1000));
    assert.deepEqual(makeDataUrl(text, 'gzip'), { source: `data:,${'x'.repeat(1000)}`, compression: undefined });
    assert.equal(makeDataUrl(text, undefined, false).compression, '');
  });
});

describe('local files', () => {
  it('needs a files directory and stays inside it', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'butane-files-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const files = path.join(dir, 'files');
    await mkdir(files);
    await writeFile(path.join(files, 'ok.txt'), 'ok');
    await writeFile(path.join(dir, 'secret'), 'secret');
    await symlink(path.join(dir, 'secret'), path.join(files, 'link'));
    assert.deepEqual(localPath('x', undefined), { error: 'local file paths are relative to a files directory that must be specified with -d/--files-dir' });
    assert.deepEqual(localPath('../secret', files), { error: 'local file path traverses outside the files directory' });
    assert.deepEqual(localPath('a/../ok.txt', files), { path: path.join(files, 'ok.txt') });
    const ok = await readLocalFile('ok.txt', files);
    assert.ok('data' in ok && ok.data.toString() === 'ok');
    assert.deepEqual(await readLocalFile('link', files), { error: 'local file path traverses outside the files directory' });
    assert.deepEqual(await readLocalFile('missing', files), { error: `open ${path.join(files, 'missing')}: no such file or directory` });
  });
});
