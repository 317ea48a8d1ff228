import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeConfig, unusedKeys } from '../../src/butane/decode.ts';
import { schemaFor } from '../../src/butane/schema.ts';
import { indexPositions, parseTree, type TreeNode } from '../../src/butane/yaml-tree.ts';

function tree(source: string): TreeNode | undefined {
  const parsed = parseTree(source);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.root;
}

const v15 = schemaFor({ base: 5, fcos: 5 });

describe('decoding a Butane config by its schema', () => {
  it('applies merge keys: the map own keys first, then the merged maps in order', () => {
    const root = tree(`
a: &a {mode: 0600, overwrite: true}
b: &b {mode: 0644, user: {name: x}}
storage:
  files:
    - path: /f
      mode: 0700
      <<: [*a, *b]
`);
    const { value, errors } = decodeConfig(root, v15);
    assert.deepEqual(errors, []);
    assert.deepEqual((value['storage'] as { files: unknown[] }).files[0], { overwrite: true, path: '/f', user: { name: 'x' }, mode: 0o700 });
  });

  it('reports keys the version does not know, at the keys, and `<<` too', () => {
    const source = 'variant: fcos\nversion: 1.5.0\nextra: 1\nstorage:\n  files:\n    - path: /f\n      <<: {mode: 1}\n      modee: 1\n';
    const root = tree(source);
    assert.deepEqual(unusedKeys(root, v15), [
      { path: ['extra'], key: 'extra' },
      { path: ['storage', 'files', 0, '<<'], key: '<<' },
      { path: ['storage', 'files', 0, 'modee'], key: 'modee' },
    ]);
    const locate = indexPositions(root);
    assert.deepEqual(locate(['storage', 'files', 0, 'modee'], true), { line: 8, column: 7 });
    assert.deepEqual(locate(['storage', 'files', 0, 'path']), { line: 6, column: 13 });
    assert.deepEqual(locate(['storage', 'files', 0, 'contents', 'source']), { line: 6, column: 7 }, 'an absent path is placed at its nearest ancestor');
  });

  it('knows only the fields of its version', () => {
    const root = tree('luks:\n  - name: x\nunits: []\n');
    const old = schemaFor({ base: 4, fcos: 4 });
    assert.ok(unusedKeys(tree('storage: {luks: [{name: a, discard: true}]}'), old).some((u) => u.key === 'discard'), 'discard is new in 1.5');
    assert.deepEqual(unusedKeys(tree('storage: {luks: [{name: a, discard: true}]}'), v15), []);
    assert.equal(unusedKeys(root, v15).length, 2);
    assert.ok(unusedKeys(tree('grub: {users: []}'), schemaFor({ base: 5 })).some((u) => u.key === 'grub'), 'flatcar has no grub');
  });

  it('reports values of the wrong type with their place', () => {
    const { errors } = decodeConfig(tree('storage:\n  files: {path: /x}\npasswd:\n  users:\n    - name: [a]\n'), v15);
    assert.deepEqual(
      errors.map((e) => [e.path.join('.'), e.message, e.at.line]),
      [
        ['passwd.users.0.name', 'cannot unmarshal !!seq into string', 5],
        ['storage.files', 'cannot unmarshal !!map into []File', 2],
      ],
    );
  });

  it('stops at aliases that expand without bound', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    const parsed = parseTree(bomb.join('\n'));
    assert.deepEqual(parsed, { ok: false, message: 'document contains excessive aliasing' });
  });
});

describe('null entries of lists', () => {
  it('are the zero value of the entry type, as in Go', () => {
    const { value } = decodeConfig(tree('passwd:\n  users:\n    - name: a\n      groups: [~, wheel]\n      uid: ~\nstorage:\n  files: [~]\n'), v15);
    assert.deepEqual(value, { passwd: { users: [{ name: 'a', groups: ['', 'wheel'] }] }, storage: { files: [{}] } });
  });
});
