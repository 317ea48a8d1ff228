/**
 * Go's text/template for Node: the subset matchbox's templates use (docs/architecture.md says
 * which and why it is ours), with Go's semantics and Go's error messages.
 *
 *   const template = parseGoTemplate('{{.greeting}}, {{.request.query.mac}}', 'ignition/node.yaml');
 *   template.execute({ greeting: 'hi', request: { query: markStringMap({ mac: '...' }) } });
 *
 * Both steps throw {@link GoTemplateError}, whose message reads as Go's
 * (`template: NAME:LINE:COL: executing "NAME" at <.x>: map has no entry for key "x"`) and which
 * carries the line and column for a problem report. Execution is bounded in steps and output.
 */
import { BUILTIN_NAMES, ExecError, Executor, type MissingKey } from './exec.ts';
import type { GoValue } from './format.ts';
import { parse, ParseError, type Node } from './parse.ts';

export { markStringMap, type GoValue, type GoMap } from './format.ts';
export type { MissingKey } from './exec.ts';

export interface ExecuteOptions {
  /** What a missing map key does: `error` (matchbox's `missingkey=error`, the default here), or `default` (`<no value>`) / `zero`. */
  missingKey?: MissingKey;
  /** Largest output, in bytes (default 4 MiB). */
  maxOutputBytes?: number;
  /** Most steps (nodes evaluated, calls, range iterations; default 1,000,000). */
  maxSteps?: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_STEPS = 1_000_000;

export class GoTemplateError extends Error {
  /** The template's name, as given to {@link parseGoTemplate}. */
  readonly template: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, in characters (Go's messages count bytes from 0: that is in `message`). */
  readonly column: number;
  /** The message without Go's `template: NAME:LINE:COL: ` prefix, for reports that give the position themselves. */
  readonly detail: string;
  readonly phase: 'parse' | 'execute';
  constructor(template: string, source: string, pos: number, detail: string, phase: 'parse' | 'execute') {
    const { line, column, byteColumn } = locate(source, pos);
    super(`template: ${template}:${line}:${byteColumn}: ${detail}`);
    this.name = 'GoTemplateError';
    this.template = template;
    this.line = line;
    this.column = column;
    this.detail = detail;
    this.phase = phase;
  }
}

function locate(source: string, pos: number): { line: number; column: number; byteColumn: number } {
  const before = source.slice(0, pos);
  const lineStart = before.lastIndexOf('\n') + 1;
  const prefix = before.slice(lineStart);
  return { line: before.split('\n').length, column: prefix.length + 1, byteColumn: Buffer.byteLength(prefix, 'utf8') };
}

export interface GoTemplate {
  readonly name: string;
  /** Renders the template over `data`; throws {@link GoTemplateError}. */
  execute(data: GoValue, options?: ExecuteOptions): string;
}

/** Parses a template; throws {@link GoTemplateError} with the position of the first problem. */
export function parseGoTemplate(source: string, name: string): GoTemplate {
  let tree: Node[];
  try {
    tree = parse(source, BUILTIN_NAMES);
  } catch (error) {
    if (error instanceof ParseError) throw new GoTemplateError(name, source, error.pos, error.message, 'parse');
    throw error;
  }
  return {
    name,
    execute(data, options = {}) {
      const executor = new Executor(
        {
          missingKey: options.missingKey ?? 'error',
          maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
          maxSteps: options.maxSteps ?? DEFAULT_MAX_STEPS,
        },
        data,
      );
      try {
        return executor.run(tree, data);
      } catch (error) {
        if (error instanceof ExecError) throw new GoTemplateError(name, source, error.pos, `executing ${JSON.stringify(name)} at <${error.context}>: ${error.message}`, 'execute');
        throw error;
      }
    },
  };
}
