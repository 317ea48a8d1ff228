/**
 * The YAML source as a small tree with positions, before any typing: maps keep their keys in
 * order with each key's position (unused-key warnings point at keys), scalars keep their text and
 * whether they were quoted (a quoted `0644` is a string, a plain one a number), aliases are
 * followed. Butane resolves scalars like Go's yaml.v3 does, which scalars.ts does from this tree.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import { text } from './values.ts';

export interface Position {
  line: number;
  column: number;
}

export type TreeNode = MapNode | SeqNode | ScalarNode;

export interface MapNode {
  kind: 'map';
  at: Position;
  entries: { key: string; keyAt: Position; value: TreeNode }[];
}

export interface SeqNode {
  kind: 'seq';
  at: Position;
  items: TreeNode[];
}

export interface ScalarNode {
  kind: 'scalar';
  at: Position;
  /** The scalar's value after YAML's quoting and folding rules. */
  text: string;
  /** Quoted or block scalars are strings whatever they look like (yaml.v3's "indicated string"). */
  quoted: boolean;
  /** An explicit tag such as `!!str`, in short form. */
  tag?: string;
}

export type ParsedTree = { ok: true; root: TreeNode | undefined } | { ok: false; message: string; at?: Position };

export function parseTree(source: string): ParsedTree {
  const lineCounter = new LineCounter();
  // The failsafe schema leaves every scalar a string: typing them is Go's rules, not YAML 1.2's.
  // Like Butane (yaml.v3), only the first document of a stream is read.
  const docs = parseAllDocuments(source, { schema: 'failsafe', merge: false, uniqueKeys: true, prettyErrors: false, lineCounter });
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  if (!doc) return { ok: true, root: undefined };
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    return { ok: false, message: first.message.split('\n')[0] ?? first.message, at: { line: pos.line, column: pos.col } };
  }
  const position = (node: YamlNode): Position => {
    const pos = lineCounter.linePos(node.range?.[0] ?? 0);
    return { line: pos.line, column: pos.col };
  };
  try {
    const budget = { nodes: MAX_NODES };
    return { ok: true, root: doc.contents ? convert(doc, doc.contents, position, 0, budget) : undefined };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

const MAX_DEPTH = 200;
/** Aliases are expanded: a few anchors that refer to each other could otherwise grow without bound. */
const MAX_NODES = 200_000;

function convert(doc: Document, node: YamlNode, position: (node: YamlNode) => Position, depth: number, budget: { nodes: number }): TreeNode {
  if (depth > MAX_DEPTH) throw new Error('document nested too deeply (or an alias refers to itself)');
  if (--budget.nodes < 0) throw new Error('document contains excessive aliasing');
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (!target) throw new Error(`unknown anchor ${node.source}`);
    return convert(doc, target, position, depth + 1, budget);
  }
  if (isMap(node)) {
    const entries: MapNode['entries'] = [];
    for (const pair of node.items) {
      const key = pair.key as YamlNode | null;
      const keyText = key && isScalar(key) ? String(key.value) : key ? String(key.toJSON?.() ?? '') : '';
      const keyAt = key ? position(key) : position(node);
      const value: TreeNode = pair.value
        ? convert(doc, pair.value as YamlNode, position, depth + 1, budget)
        : { kind: 'scalar', at: keyAt, text: '', quoted: false };
      entries.push({ key: keyText, keyAt, value });
    }
    return { kind: 'map', at: position(node), entries };
  }
  if (isSeq(node)) {
    const empty: ScalarNode = { kind: 'scalar', at: position(node), text: '', quoted: false };
    const items = node.items.map((item): TreeNode => (item ? convert(doc, item as YamlNode, position, depth + 1, budget) : empty));
    return { kind: 'seq', at: position(node), items };
  }
  if (isScalar(node)) {
    const quoted = node.type !== undefined && node.type !== 'PLAIN';
    const tag = node.tag ? shortTag(node.tag) : undefined;
    return { kind: 'scalar', at: position(node), text: text(node.value), quoted, ...(tag ? { tag } : {}) };
  }
  throw new Error('unsupported YAML node');
}

function shortTag(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
}

/** Where each path of the physical tree is: values, and keys under a `key:` prefix. */
export function indexPositions(root: TreeNode | undefined): (path: readonly (string | number)[], key?: boolean) => Position | undefined {
  const values = new Map<string, Position>();
  const keys = new Map<string, Position>();
  const walk = (node: TreeNode, path: string): void => {
    values.set(path, node.at);
    if (node.kind === 'map') {
      for (const entry of node.entries) {
        const child = path === '' ? entry.key : `${path}.${entry.key}`;
        if (!keys.has(child)) keys.set(child, entry.keyAt);
        if (!values.has(child)) walk(entry.value, child);
      }
    } else if (node.kind === 'seq') {
      node.items.forEach((item, i) => walk(item, path === '' ? String(i) : `${path}.${i}`));
    }
  };
  if (root) walk(root, '');
  return (path, key = false) => {
    const parts = path.map(String);
    if (key && parts.length > 0) {
      const at = keys.get(parts.join('.'));
      if (at) return at;
    }
    // A path the source does not have (a default, a generated field) is reported at its nearest ancestor.
    for (let n = parts.length; n >= 0; n--) {
      const at = values.get(parts.slice(0, n).join('.'));
      if (at) return at;
    }
    return undefined;
  };
}
