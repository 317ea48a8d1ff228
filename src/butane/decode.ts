/**
 * From the YAML tree to a typed Butane config: every field decoded by its type in the spec
 * version's schema, YAML merge keys (`<<`) applied as yaml.v3 applies them (the map's own keys
 * win, then the merged maps in order). Mismatched types are errors; keys the schema does not
 * know are collected as unused-key warnings, walking the source the way Butane does (only keys
 * written at a path, not those merged in, and `<<` itself counts as unused).
 */
import { decodeScalar } from './scalars.ts';
import type { FieldType, Schema } from './schema.ts';
import type { MapNode, Position, TreeNode } from './yaml-tree.ts';
import type { Path } from './messages.ts';

export type ButaneObject = { [key: string]: unknown };

export interface DecodeProblem {
  path: Path;
  message: string;
  at: Position;
}

export function decodeConfig(root: TreeNode | undefined, schema: Schema, type = 'Config'): { value: ButaneObject; errors: DecodeProblem[] } {
  const errors: DecodeProblem[] = [];
  const value = root ? decodeValue(root, { kind: 'struct', name: type }, [], schema, errors) : undefined;
  return { value: (value as ButaneObject | undefined) ?? {}, errors };
}

function describe(node: TreeNode): string {
  if (node.kind === 'map') return '!!map';
  if (node.kind === 'seq') return '!!seq';
  const shown = node.text.length > 10 ? `${node.text.slice(0, 7)}...` : node.text;
  return `!!str \`${shown}\``;
}

function typeName(type: FieldType): string {
  if (type.kind === 'scalar') return type.scalar;
  if (type.kind === 'list') return `[]${typeName(type.of)}`;
  return type.name;
}

function decodeValue(node: TreeNode, type: FieldType, path: Path, schema: Schema, errors: DecodeProblem[]): unknown {
  const isNull = node.kind === 'scalar' && !node.quoted && node.tag === undefined && ['', '~', 'null', 'Null', 'NULL'].includes(node.text);
  if (type.kind === 'scalar') {
    if (node.kind !== 'scalar') {
      errors.push({ path, message: `cannot unmarshal ${describe(node)} into ${type.scalar}`, at: node.at });
      return undefined;
    }
    const decoded = decodeScalar(node, type.scalar);
    if ('error' in decoded) {
      errors.push({ path, message: decoded.error, at: node.at });
      return undefined;
    }
    return decoded.value;
  }
  if (isNull) return type.kind === 'struct' ? {} : undefined;
  if (type.kind === 'list') {
    if (node.kind !== 'seq') {
      errors.push({ path, message: `cannot unmarshal ${describe(node)} into ${typeName(type)}`, at: node.at });
      return undefined;
    }
    // A null entry is the element type's zero value, as in Go.
    return node.items.map((item, i) => decodeValue(item, type.of, [...path, i], schema, errors) ?? zeroOf(type.of));
  }
  if (node.kind !== 'map') {
    errors.push({ path, message: `cannot unmarshal ${describe(node)} into ${type.name}`, at: node.at });
    return {};
  }
  const fields = schema.get(type.name) ?? [];
  const entries = effectiveEntries(node, errors);
  const result: ButaneObject = {};
  for (const field of fields) {
    const entry = entries.get(field.name);
    if (!entry) continue;
    const value = decodeValue(entry, field.type, [...path, field.name], schema, errors);
    if (value !== undefined) result[field.name] = value;
  }
  return result;
}

function zeroOf(type: FieldType): unknown {
  if (type.kind === 'struct') return {};
  if (type.kind === 'list') return [];
  return type.scalar === 'string' ? '' : type.scalar === 'int' ? 0 : false;
}

/** The map's keys with merge keys applied: own keys first, then each merged map's in order. */
function effectiveEntries(node: MapNode, errors: DecodeProblem[], depth = 0): Map<string, TreeNode> {
  const result = new Map<string, TreeNode>();
  const merges: TreeNode[] = [];
  for (const entry of node.entries) {
    if (entry.key === '<<') merges.push(entry.value);
    else if (!result.has(entry.key)) result.set(entry.key, entry.value);
  }
  if (depth > 50) return result;
  for (const merge of merges) {
    const sources = merge.kind === 'seq' ? merge.items : [merge];
    for (const source of sources) {
      if (source.kind !== 'map') {
        errors.push({ path: [], message: 'map merge requires map or sequence of maps as the value', at: source.at });
        continue;
      }
      for (const [key, value] of effectiveEntries(source, errors, depth + 1)) {
        if (!result.has(key)) result.set(key, value);
      }
    }
  }
  return result;
}

/**
 * Keys written in the source that the schema does not know, walking the schema's fields in
 * order from the top (Butane's order), each with the key's own position.
 */
export function unusedKeys(root: TreeNode | undefined, schema: Schema, type = 'Config'): { path: Path; key: string }[] {
  const found: { path: Path; key: string }[] = [];
  const walk = (node: TreeNode, fieldType: FieldType, path: Path): void => {
    if (fieldType.kind === 'list') {
      if (node.kind === 'seq') node.items.forEach((item, i) => walk(item, fieldType.of, [...path, i]));
      return;
    }
    if (fieldType.kind !== 'struct' || node.kind !== 'map') return;
    const fields = schema.get(fieldType.name) ?? [];
    const known = new Set(fields.map((f) => f.name));
    for (const entry of node.entries) {
      if (!known.has(entry.key)) found.push({ path: [...path, entry.key], key: entry.key });
    }
    for (const field of fields) {
      const entry = node.entries.find((e) => e.key === field.name);
      if (entry) walk(entry.value, field.type, [...path, field.name]);
    }
  };
  if (root) walk(root, { kind: 'struct', name: type }, []);
  return found;
}
