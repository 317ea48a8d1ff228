/** The data document's paths, limits and links, and a site's copies written whole or not at all. */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DataCopies, DataDocumentError, dataPathProblem, DATA_FORMAT, exportDataDirectory, parseDataDocument } from '../../src/site/data-document.ts';
import { makeTree } from '../helpers.ts';

const info = { etag: '"e"', origin: 'http://o', fetchedAt: '2026-12-01T10:00:00.000Z', files: 1 };
const doc = (files: Record<string, unknown>) => Buffer.from(JSON.stringify({ format: DATA_FORMAT, files, skipped: [] }));

describe('the data document', () => {
  it('allows only FOLDER/NAME paths inside the known folders', () => {
    for (const good of ['groups/a.yaml', 'profiles/x.json', 'templates/t.liquid', 'ignition/n.ign', 'generic/g.tmpl', 'cloud/c.yaml']) assert.equal(dataPathProblem(good), undefined, good);
    for (const bad of ['../etc/passwd', 'groups/../../x', 'groups/..', '/groups/a', 'groups/a/b', 'groups/.hidden', 'groups\\a', 'bootdepot.db', 'other/a', 'groups/', 'groups/a\u0000b', `groups/${'a'.repeat(256)}`]) {
      assert.ok(dataPathProblem(bad), bad);
    }
  });

  it('exports the files the catalogue reads, in order, with the same ETag every time; links out of the root are left out', async (t) => {
    const outside = await makeTree(t, { 'secret.yaml': 'profile: secret\n' });
    const dir = await makeTree(t, { 'groups/b.yaml': 'profile: p\n', 'groups/a.yaml': 'profile: p\n', 'profiles/p.json': '{}', 'groups/.swap': 'x', 'bootdepot.db': 'db', 'notes/readme': 'x' });
    await symlink(path.join(outside, 'secret.yaml'), path.join(dir, 'groups/leak.yaml'));
    await symlink(path.join(dir, 'groups/a.yaml'), path.join(dir, 'groups/alias.yaml'));
    const first = await exportDataDirectory(dir);
    const again = await exportDataDirectory(dir);
    assert.equal(first.etag, again.etag);
    const parsed = JSON.parse(first.body.toString()) as { files: Record<string, string>; skipped: { path: string }[] };
    assert.deepEqual(Object.keys(parsed.files), ['profiles/p.json', 'groups/a.yaml', 'groups/alias.yaml', 'groups/b.yaml']);
    assert.deepEqual(parsed.skipped.map((s) => s.path), ['groups/leak.yaml']);
    await writeFile(path.join(dir, 'groups/b.yaml'), 'profile: q\n');
    assert.notEqual((await exportDataDirectory(dir)).etag, first.etag);
    await assert.rejects(exportDataDirectory(dir, { maxFiles: 2, maxBytes: 1 << 20 }), DataDocumentError);
    await assert.rejects(exportDataDirectory(dir, { maxFiles: 100, maxBytes: 20 }), /more than 20 bytes/);
  });

  it('refuses a document with a path that would leave the copy, or that is too large', () => {
    assert.throws(() => parseDataDocument(doc({ '../../etc/cron.d/x': 'boom' })), /names "..\/..\/etc\/cron.d\/x"/);
    assert.throws(() => parseDataDocument(doc({ 'groups/a.yaml': 7 })), /not text/);
    assert.throws(() => parseDataDocument(Buffer.from('{"format":"other","files":{}}')), /not a bootdepot-data\/1 document/);
    assert.throws(() => parseDataDocument(Buffer.from('nope')), /not JSON/);
    assert.throws(() => parseDataDocument(doc({ 'groups/a.yaml': 'x'.repeat(100) }), { maxFiles: 10, maxBytes: 50 }), /more than 50 bytes/);
    assert.deepEqual(parseDataDocument(doc({ 'groups/a.yaml': 'profile: p\n' })).files, { 'groups/a.yaml': 'profile: p\n' });
  });

  it('writes a copy whole into a new directory and puts it in service by one rename', async (t) => {
    const root = path.join(await makeTree(t, {}), 'site-data');
    const copies = new DataCopies(root);
    assert.equal(await copies.current(), undefined);
    const first = await copies.write(parseDataDocument(doc({ 'groups/a.yaml': 'profile: one\n' })), info);
    assert.equal(await copies.current(), undefined, 'written is not in service');
    await copies.apply(first);
    assert.equal((await copies.current())?.dir, first);
    assert.deepEqual((await copies.current())?.info, info);
    const second = await copies.write(parseDataDocument(doc({ 'groups/a.yaml': 'profile: two\n' })), { ...info, etag: '"f"' });
    await copies.apply(second);
    assert.equal(await readFile(path.join(root, await readlink(path.join(root, 'current')), 'groups/a.yaml'), 'utf8'), 'profile: two\n');
    const third = await copies.write(parseDataDocument(doc({})), info);
    await copies.apply(third);
    await copies.prune([third, second]);
    assert.deepEqual((await readdir(root)).sort(), ['current', path.basename(second), path.basename(third)].sort());
  });

  it('leaves nothing behind when a copy cannot be written', async (t) => {
    const root = path.join(await makeTree(t, {}), 'site-data');
    const copies = new DataCopies(root);
    await mkdir(root);
    // A document that passed no check (as a bug might hand over): the writer checks paths itself.
    const unchecked = { format: DATA_FORMAT, files: { 'groups/a.yaml': 'x', '../escape.yaml': 'x' }, skipped: [] } as const;
    await assert.rejects(copies.write({ ...unchecked, files: { ...unchecked.files }, skipped: [] }, info), /leaves|expected FOLDER/);
    assert.deepEqual(await readdir(root), []);
    assert.deepEqual(await readdir(path.dirname(root)), ['site-data']);
  });
});
