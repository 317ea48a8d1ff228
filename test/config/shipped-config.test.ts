/**
 * config/bootdepot.yaml is the reference operators read: every key of the schema must be in it,
 * with its default (or a comment saying why the shipped value differs) and a comment.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Kind, OptionalKind, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isMap, isScalar, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.ts';
import { MirrorConfigSchema } from '../../src/mirror/config.ts';

const SHIPPED = path.join(import.meta.dirname, '../../config/bootdepot.yaml');

/**
 * Every key path whose value is not itself an object of named keys (maps such as mirror.mirrors
 * are leaves). Optional sections (their presence turns a mode on, as `site:`) are left out: the
 * shipped file shows them commented out (see below).
 */
function leafKeys(schema: TSchema, prefix: string[] = []): string[][] {
  if (schema[Kind] !== 'Object') return [prefix];
  return Object.entries((schema as TObject).properties)
    .filter(([, child]) => child[OptionalKind] !== 'Optional' || child[Kind] !== 'Object')
    .flatMap(([key, child]) => leafKeys(child, [...prefix, key]));
}

/** The optional sections of the schema and their keys. */
function optionalSections(): [string, string[]][] {
  return Object.entries(ConfigSchema.properties)
    .filter(([, child]) => (child as TSchema)[OptionalKind] === 'Optional' && (child as TSchema)[Kind] === 'Object')
    .map(([key, child]) => [key, Object.keys((child as TObject).properties)]);
}

/** The key's pair, and the comment on its line or on the lines right above it. */
function pairAt(document: Document, keys: readonly string[]): { pair: Pair; comment: string } | undefined {
  let node: unknown = document.contents;
  let found: { pair: Pair; comment: string } | undefined;
  for (const key of keys) {
    if (!isMap(node)) return undefined;
    const index = node.items.findIndex((item) => isScalar(item.key) && item.key.value === key);
    const pair = node.items[index];
    if (!pair) return undefined;
    const keyNode = pair.key as Node;
    const value = pair.value as Node | null;
    // A comment above a map's first key belongs to the map in the YAML tree.
    const above = index === 0 ? node.commentBefore : undefined;
    found = { pair, comment: [above, keyNode.commentBefore, value?.commentBefore, value?.comment, keyNode.comment].filter(Boolean).join(' ') };
    node = pair.value;
  }
  return found;
}

describe('the shipped config/bootdepot.yaml', () => {
  it('lists every config key with its default and a comment', async () => {
    const document = parseDocument(await readFile(SHIPPED, 'utf8'));
    assert.deepEqual(document.errors, []);
    const defaults = Value.Default(ConfigSchema, {}) as Record<string, unknown>;
    const keys = leafKeys(ConfigSchema);
    // The mirror fragment comes from src/mirror/config.ts: make sure it is walked as well.
    for (const mirrorKey of leafKeys(MirrorConfigSchema)) assert.ok(keys.some((k) => k.join('.') === ['mirror', ...mirrorKey].join('.')));
    const missing: string[] = [];
    const uncommented: string[] = [];
    const differing: string[] = [];
    for (const keyPath of keys) {
      const name = keyPath.join('.');
      const found = pairAt(document, keyPath);
      if (!found) {
        missing.push(name);
        continue;
      }
      const { pair, comment } = found;
      if (!comment) uncommented.push(name);
      const shipped = (pair.value as Node | null)?.toJSON() as unknown;
      const wanted = keyPath.reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], defaults);
      // A shipped value other than the default must say so ("default: ...").
      if (JSON.stringify(shipped) !== JSON.stringify(wanted) && !/default/i.test(comment)) differing.push(`${name}: ${JSON.stringify(shipped)} (default ${JSON.stringify(wanted)})`);
    }
    assert.deepEqual(missing, [], `keys missing from config/bootdepot.yaml (add each with its default and a one-line comment): ${missing.join(', ')}`);
    assert.deepEqual(uncommented, [], `keys without a comment in config/bootdepot.yaml: ${uncommented.join(', ')}`);
    assert.deepEqual(differing, [], 'values that differ from the default without a comment saying "default: ..."');
  });

  it('shows every optional section commented out, each key with a comment', async () => {
    const text = await readFile(SHIPPED, 'utf8');
    const sections = optionalSections();
    assert.ok(sections.some(([name]) => name === 'site'));
    for (const [section, keys] of sections) {
      assert.match(text, new RegExp(`^# ${section}:$`, 'm'), `config/bootdepot.yaml shows no commented-out ${section}: section`);
      for (const key of keys) assert.match(text, new RegExp(`^#   ${key}: .+# .+$`, 'm'), `${section}.${key} is not shown (with a comment) in config/bootdepot.yaml`);
    }
    // Commented out, it is not in effect.
    assert.equal((parseDocument(text).toJSON() as Record<string, unknown>).site, undefined);
  });
});
