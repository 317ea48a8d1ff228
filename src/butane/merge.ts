/**
 * Ignition's config merge, for Butane's sugar: what a variant generates (mount units, the boot
 * disk layout, GRUB users) is a parent config and the operator's translated config its child.
 * Set child fields win; list entries with the same key are merged, the parent's in place and
 * the child's new ones after them.
 */
import { entryKey, IGNORE_DUPLICATES, MERGED_KEYS, type IgnObject, type IgnSchema, type IgnType } from './ignition-schema.ts';
import type { Origins } from './origins.ts';

export function mergeConfigs(parent: IgnObject, child: IgnObject, schema: IgnSchema, origins: Origins): IgnObject {
  return mergeStruct(parent, child, 'Config', schema, origins);
}

function mergeStruct(parent: IgnObject, child: IgnObject, typeName: string, schema: IgnSchema, origins: Origins): IgnObject {
  const result: IgnObject = {};
  origins.copy(parent, result);
  origins.copy(child, result);
  const fields = schema.get(typeName) ?? [];
  const merged = MERGED_KEYS[typeName] ?? {};
  for (const field of fields) {
    const p = parent[field.name];
    const c = child[field.name];
    if (field.type.kind === 'scalar') {
      // Go copies the child's plain values even when zero; a pointer the child left unset keeps the parent's.
      const value = field.pointer ? (c ?? p) : c;
      if (value !== undefined) result[field.name] = value;
    } else if (field.type.kind === 'struct') {
      if (c === undefined) {
        if (p !== undefined) result[field.name] = p;
      } else if (p === undefined) result[field.name] = c;
      else result[field.name] = mergeStruct(p as IgnObject, c as IgnObject, field.type.name, schema, origins);
    } else {
      const ps = (p as unknown[] | undefined) ?? [];
      const cs = (c as unknown[] | undefined) ?? [];
      if (ps.length + cs.length === 0) continue;
      if ((IGNORE_DUPLICATES[typeName] ?? []).includes(field.name)) {
        result[field.name] = [...ps, ...cs];
        continue;
      }
      const group = merged[field.name];
      const siblings = group ? fields.filter((f) => merged[f.name] === group).map((f) => f.name) : [field.name];
      result[field.name] = mergeList(ps, cs, field.type.of, field.name, siblings, child, schema, origins);
    }
  }
  return result;
}

function elementType(type: IgnType): string {
  return type.kind === 'struct' ? type.name : type.kind;
}

function mergeList(
  parent: unknown[],
  child: unknown[],
  of: IgnType,
  name: string,
  siblings: string[],
  childStruct: IgnObject,
  schema: IgnSchema,
  origins: Origins,
): unknown[] {
  const type = elementType(of);
  const keyOf = (item: unknown): string => entryKey(type, item);
  // A parent entry whose key the child uses in a sibling list (a file where the child has a
  // directory) is dropped: the child's entry replaces it.
  const childEntries = new Map<string, { list: string; item: unknown }>();
  for (const list of siblings) {
    for (const item of (childStruct[list] as unknown[] | undefined) ?? []) {
      const key = entryKey(type, item);
      if (!childEntries.has(key)) childEntries.set(key, { list, item });
    }
  }
  const result: unknown[] = [];
  const parentKeys = new Set(parent.map(keyOf));
  for (const item of parent) {
    const match = childEntries.get(keyOf(item));
    if (!match) result.push(item);
    else if (match.list === name) {
      if (of.kind === 'struct') {
        if (type === 'HTTPHeader' && (match.item as IgnObject)['value'] === undefined) continue;
        result.push(mergeStruct(item as IgnObject, match.item as IgnObject, of.name, schema, origins));
      } else result.push(match.item);
    }
  }
  for (const item of child) if (!parentKeys.has(keyOf(item))) result.push(item);
  return result;
}
