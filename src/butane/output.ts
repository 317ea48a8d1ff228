/**
 * The Ignition config as Butane writes it: fields in Ignition's declared order, empty ones left
 * out as Go's omitempty does, and the JSON text byte for byte like Go's encoder (which escapes
 * `<`, `>`, `&`, U+2028 and U+2029).
 */
import { ignitionSchema, isEmpty, type IgnObject, type IgnSchema, type IgnType } from './ignition-schema.ts';
import type { Origins } from './origins.ts';

/** A copy of the config with only the fields Ignition writes, in its order. */
export function toOutput(config: IgnObject, minor: number, origins?: Origins): IgnObject {
  const schema = ignitionSchema(minor);
  return shape(config, { kind: 'struct', name: 'Config' }, schema, origins) as IgnObject;
}

function shape(value: unknown, type: IgnType, schema: IgnSchema, origins?: Origins): unknown {
  if (type.kind === 'scalar') return value;
  if (type.kind === 'list') return Array.isArray(value) ? value.map((item) => shape(item, type.of, schema, origins)) : value;
  const source = (value ?? {}) as IgnObject;
  const out: IgnObject = {};
  for (const field of schema.get(type.name) ?? []) {
    const fieldValue = source[field.name];
    if (field.omitEmpty && isEmpty(fieldValue, field, schema)) continue;
    if (fieldValue === undefined) {
      if (field.pointer || field.type.kind === 'list') continue;
      out[field.name] = field.type.kind === 'struct' ? shape({}, field.type, schema, origins) : zero(field.type.scalar);
      continue;
    }
    out[field.name] = shape(fieldValue, field.type, schema, origins);
  }
  if (origins && value !== undefined && value !== null) origins.copy(value, out);
  return out;
}

function zero(scalar: 'string' | 'int' | 'bool'): unknown {
  return scalar === 'string' ? '' : scalar === 'int' ? 0 : false;
}

/** JSON text as Go's encoding/json writes it (Butane's compact output, or --pretty's indented one). */
export function serializeIgnition(config: unknown, pretty = false): string {
  return encode(config, pretty ? '\n' : '');
}

function encode(value: unknown, indent: string): string {
  const pretty = indent !== '';
  const inner = pretty ? `${indent}  ` : '';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((item) => inner + encode(item, inner));
    return pretty ? `[${items.join(',')}${indent}]` : `[${items.join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const items = entries.map(([k, v]) => `${inner}${encodeString(k)}:${pretty ? ' ' : ''}${encode(v, inner)}`);
    return pretty ? `{${items.join(',')}${indent}}` : `{${items.join(',')}}`;
  }
  if (typeof value === 'string') return encodeString(value);
  return JSON.stringify(value) ?? 'null';
}

/** Go's string escaping: short forms for \n \r \t, \u00XX for other controls, and HTML-safe. */
export function encodeString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"') out += '\\"';
    else if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || char === '<' || char === '>' || char === '&' || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else if (code >= 0xd800 && code <= 0xdfff) out += '\\ufffd';
    else out += char;
  }
  return `${out}"`;
}
