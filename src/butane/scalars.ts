/**
 * Scalars typed the way Butane's YAML decoder (Go's yaml.v3) types them, since that decides what
 * a config means: `0644` is octal 420, `644` is decimal, a quoted "0644" is a string and no
 * number, `yes` is a boolean only where a boolean is expected, `1.9` into an integer field is 1.
 */
import type { ScalarNode } from './yaml-tree.ts';

export type Resolved =
  | { tag: '!!null' }
  | { tag: '!!bool'; value: boolean }
  | { tag: '!!int'; value: number }
  | { tag: '!!float'; value: number }
  | { tag: '!!timestamp' }
  | { tag: '!!str'; value: string };

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);
const TRUES = new Set(['true', 'True', 'TRUE']);
const FALSES = new Set(['false', 'False', 'FALSE']);
const FLOAT_WORDS = new Map<string, number>([
  ...['.nan', '.NaN', '.NAN'].map((w) => [w, Number.NaN] as const),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((w) => [w, Infinity] as const),
  ...['-.inf', '-.Inf', '-.INF'].map((w) => [w, -Infinity] as const),
]);
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const TIMESTAMP = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ]|$)/;

/** Go's strconv.ParseInt(s, 0, 64) and ParseUint: prefixes 0x, 0o, 0b and a leading 0 for octal. */
function parseGoInt(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const sign = m[1] === '-' ? -1n : 1n;
  const digits = m[2] ?? '';
  let value: bigint;
  if (/^0[oO]/.test(digits)) value = BigInt(`0o${digits.slice(2)}`);
  else if (/^0[0-7]+$/.test(digits)) value = BigInt(`0o${digits.slice(1)}`);
  else value = BigInt(digits);
  value *= sign;
  if (value > 18446744073709551615n || value < -9223372036854775808n) return undefined;
  return Number(value);
}

/** yaml.v3's resolve() for a scalar without an explicit tag (or with a core tag). */
export function resolveScalar(node: ScalarNode): Resolved {
  const text = node.text;
  if (node.tag === '!!str' || node.tag === '!!binary' || (node.quoted && (node.tag === undefined || node.tag === '!'))) {
    return { tag: '!!str', value: text };
  }
  if (node.tag !== undefined && !['!!int', '!!float', '!!bool', '!!null', '!!timestamp'].includes(node.tag)) {
    return { tag: '!!str', value: text };
  }
  if (NULLS.has(text)) return { tag: '!!null' };
  if (TRUES.has(text)) return { tag: '!!bool', value: true };
  if (FALSES.has(text)) return { tag: '!!bool', value: false };
  const word = FLOAT_WORDS.get(text);
  if (word !== undefined) return { tag: '!!float', value: word };
  const first = text[0] ?? '';
  if (first === '.') {
    const f = Number(text);
    if (YAML_FLOAT.test(text) && !Number.isNaN(f)) return { tag: '!!float', value: f };
  } else if (/[0-9+-]/.test(first)) {
    if (node.tag === undefined && TIMESTAMP.test(text)) return { tag: '!!timestamp' };
    const plain = text.replaceAll('_', '');
    const int = parseGoInt(plain);
    if (int !== undefined) return { tag: '!!int', value: int };
    if (YAML_FLOAT.test(plain)) return { tag: '!!float', value: Number(plain) };
  }
  return { tag: '!!str', value: text };
}

export type Scalar = 'string' | 'int' | 'bool';

/**
 * A scalar decoded into a field of a type, or undefined for null (the field stays unset), or
 * an error in Go's words when it cannot be.
 */
export function decodeScalar(node: ScalarNode, type: Scalar): { value: string | number | boolean | undefined } | { error: string } {
  const resolved = resolveScalar(node);
  if (resolved.tag === '!!null') return { value: undefined };
  if (type === 'string') return { value: node.text };
  if (type === 'int') {
    // Go's int is 64 bits: a larger number does not fit.
    if (resolved.tag === '!!int' && Math.abs(resolved.value) < 2 ** 63) return { value: resolved.value };
    if (resolved.tag === '!!float' && Math.abs(resolved.value) < 2 ** 63) return { value: Math.trunc(resolved.value) };
  } else {
    if (resolved.tag === '!!bool') return { value: resolved.value };
    if (resolved.tag === '!!str') {
      if (['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'].includes(resolved.value)) return { value: true };
      if (['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'].includes(resolved.value)) return { value: false };
    }
  }
  const shown = node.text.length > 10 ? `${node.text.slice(0, 7)}...` : node.text;
  return { error: `cannot unmarshal ${node.tag ?? resolved.tag} \`${shown}\` into ${type}` };
}
