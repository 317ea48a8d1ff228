/**
 * Reading YAML and JSON documents with positions, and validating them against a JSON schema
 * with every error reported at its line and column. Config and data files share this.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { Type, type TSchema, type Static } from '@sinclair/typebox';
import type { Problem } from './problems.ts';

// ajv-formats is CommonJS with a default export; under nodenext its callable is on `.default`.
const addFormats = addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv };

export interface ParsedDocument {
  value: unknown;
  /** Line and column of the value at a JSON-pointer-like path (array of keys), when known. */
  locate(path: readonly (string | number)[]): { line: number; column: number } | undefined;
}

/**
 * Parses YAML or JSON text (JSON through the YAML parser, which accepts it, so both get
 * positions). Returns the problems instead of throwing: a broken file is data, not a crash.
 */
export function parseDocumentText(source: string, text: string): { document?: ParsedDocument; problems: Problem[] } {
  const lineCounter = new LineCounter();
  const isJson = source.endsWith('.json') || source.endsWith('.ign');
  if (isJson) {
    // The YAML parser accepts what JSON does not (trailing commas, comments): JSON is checked as JSON.
    const problem = jsonSyntaxProblem(source, text);
    if (problem) return { problems: [problem] };
  }
  const doc: Document = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    // JSON files are JSON: YAML's extra syntax in them is a mistake worth reporting.
    ...(isJson ? { schema: 'json' as const } : {}),
  });
  const problems: Problem[] = doc.errors.map((error) => {
    const pos = lineCounter.linePos(error.pos[0]);
    return { source, line: pos.line, column: pos.col, message: error.message.split('\n')[0] ?? error.message };
  });
  if (problems.length > 0) return { problems };
  const locate = (path: readonly (string | number)[]) => {
    // Walk up to the nearest existing node so a missing property points at its parent object.
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) {
        const pos = lineCounter.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
    return undefined;
  };
  return { document: { value: doc.toJS({ maxAliasCount: 100 }) as unknown, locate }, problems };
}

function jsonSyntaxProblem(source: string, text: string): Problem | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    const clean = message.replace(/\s*\(line \d+ column \d+\)/, '').replace(/,? in JSON at position \d+/, '');
    const where = /\(line (\d+) column (\d+)\)/.exec(message);
    if (where) return { source, line: Number(where[1]), column: Number(where[2]), message: `invalid JSON: ${clean}` };
    // V8 gives no position for "Unexpected end of JSON input": that is the end of the text.
    const offset = Number(/at position (\d+)/.exec(message)?.[1] ?? text.length);
    const before = text.slice(0, offset).split('\n');
    return { source, line: before.length, column: (before.at(-1)?.length ?? 0) + 1, message: `invalid JSON: ${clean}` };
  }
}

const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, coerceTypes: false });
addFormats.default(ajv);
const compiled = new WeakMap<TSchema, ValidateFunction>();

function pointerToPath(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describeAjvError(error: ErrorObject): { path: string[]; message: string } {
  const path = pointerToPath(error.instancePath);
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String((error.params as { additionalProperty: string }).additionalProperty);
      return { path: [...path, name], message: `unknown property "${name}"` };
    }
    case 'required': {
      const name = String((error.params as { missingProperty: string }).missingProperty);
      return { path, message: `missing required property "${name}"` };
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      return { path, message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` };
    }
    default:
      return { path, message: error.message ?? error.keyword };
  }
}

/**
 * Validates a value (defaults from the schema are filled in place) and returns it typed, or
 * every problem found, each placed at its line in the source document.
 */
export function validateDocument<S extends TSchema>(
  schema: S,
  source: string,
  document: ParsedDocument,
): { value?: Static<S>; problems: Problem[] } {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(document.value)) return { value: document.value, problems: [] };
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const error of validate.errors ?? []) {
    // anyOf/oneOf report every branch's failure; the branch errors say more than the summary.
    if (error.keyword === 'anyOf' || error.keyword === 'oneOf' || error.keyword === 'if') continue;
    const { path, message } = describeAjvError(error);
    const key = `${path.join('.')}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pos = document.locate(path);
    problems.push({ source, ...(pos ?? {}), path: path.join('.') || undefined, message });
  }
  return { problems };
}

/**
 * A string enum as JSON Schema `enum` (TypeBox's literal unions become `anyOf`, whose errors
 * read "must be equal to constant" once per branch instead of listing the allowed values).
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}
