import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeScalar, resolveScalar } from '../../src/butane/scalars.ts';
import type { ScalarNode } from '../../src/butane/yaml-tree.ts';

const plain = (text: string, tag?: string): ScalarNode => ({ kind: 'scalar', at: { line: 1, column: 1 }, text, quoted: false, ...(tag ? { tag } : {}) });
const quoted = (text: string): ScalarNode => ({ ...plain(text), quoted: true });

describe('Go yaml.v3 scalar typing', () => {
  it('reads integers in the bases Go accepts, a leading zero meaning octal', () => {
    for (const [text, value] of [['644', 644], ['0644', 420], ['0o644', 420], ['0x1F', 31], ['0b101', 5], ['-0o17', -15], ['1_000', 1000], ['+7', 7]] as const) {
      assert.deepEqual(decodeScalar(plain(text), 'int'), { value }, text);
    }
  });

  it('truncates a float given for an integer, refuses strings and out-of-range numbers', () => {
    assert.deepEqual(decodeScalar(plain('1.9'), 'int'), { value: 1 });
    assert.deepEqual(decodeScalar(plain('08'), 'int'), { value: 8 }, 'not octal, so a float, so 8');
    assert.deepEqual(decodeScalar(quoted('0644'), 'int'), { error: 'cannot unmarshal !!str `0644` into int' });
    assert.deepEqual(decodeScalar(plain('rw-r--r--'), 'int'), { error: 'cannot unmarshal !!str `rw-r--r--` into int' });
    assert.deepEqual(decodeScalar(plain('u=rw,g=r,o=r'), 'int'), { error: 'cannot unmarshal !!str `u=rw,g=...` into int' });
    assert.ok('error' in decodeScalar(plain('99999999999999999999'), 'int'));
    assert.ok('error' in decodeScalar(plain('.inf'), 'int'));
    assert.ok('error' in decodeScalar(plain('2024-01-02'), 'int'), 'a timestamp is no integer');
  });

  it('takes YAML 1.1 booleans only where a boolean is expected', () => {
    assert.deepEqual(decodeScalar(plain('yes'), 'bool'), { value: true });
    assert.deepEqual(decodeScalar(quoted('off'), 'bool'), { value: false });
    assert.deepEqual(decodeScalar(plain('True'), 'bool'), { value: true });
    assert.deepEqual(decodeScalar(plain('yes'), 'string'), { value: 'yes' });
    assert.deepEqual(resolveScalar(plain('yes')), { tag: '!!str', value: 'yes' });
    assert.ok('error' in decodeScalar(plain('1'), 'bool'));
  });

  it('keeps any scalar as its text where a string is expected, and null as unset', () => {
    assert.deepEqual(decodeScalar(plain('0644'), 'string'), { value: '0644' });
    assert.deepEqual(decodeScalar(plain('1.5'), 'string'), { value: '1.5' });
    for (const text of ['', '~', 'null', 'NULL']) assert.deepEqual(decodeScalar(plain(text), 'string'), { value: undefined }, text);
    assert.deepEqual(decodeScalar(quoted('null'), 'string'), { value: 'null' });
    assert.deepEqual(decodeScalar(plain('5', '!!str'), 'int'), { error: 'cannot unmarshal !!str `5` into int' });
  });
});
