/**
 * The template engine: LiquidJS, whose `{{ }}` / `{% %}` syntax leaves iPXE's `${...}` alone.
 *
 * Templates fail on undefined variables and unknown filters, so a typo is an error at render
 * time (and in `check` when it is a syntax error) rather than an empty string in a kernel line.
 * Script templates also refuse any output that contains a line break: whatever a value holds,
 * it cannot add a command to a script.
 *
 * LiquidJS is loaded on first use ({@link TemplateEngines}), so a data directory without
 * Liquid templates (most matchbox-style setups) never pays its memory.
 */
import type { Liquid, Template } from 'liquidjs';
import { encodeUriComponentStrict, hasLineBreak, ipxeToken } from '../common/escape.ts';

export type CompiledTemplate = Template[];

export class TemplateOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateOutputError';
  }
}

/** Filters receive whatever a template passes: text for strings and numbers, empty for nothing. */
function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

function addSharedFilters(engine: Liquid): void {
  /** `{{ value | uri }}`: percent-encode for a URL query value or path segment. */
  engine.registerFilter('uri', (value: unknown) => encodeUriComponentStrict(text(value)));
  /** `{{ value | ipxe }}`: make any string one safe iPXE token. */
  engine.registerFilter('ipxe', (value: unknown) => ipxeToken(text(value)));
}

function scriptOutput(value: unknown): string {
  const output = text(value);
  if (hasLineBreak(output)) {
    throw new TemplateOutputError(`a value with a line break was written into the script: ${JSON.stringify(output.slice(0, 80))}`);
  }
  return output;
}

type LiquidClass = typeof Liquid;

/** Engine for iPXE script templates. */
function createScriptTemplateEngine(LiquidEngine: LiquidClass): Liquid {
  const engine = new LiquidEngine({
    strictVariables: true,
    // ...except where a template asks for it: `{% if labels.role %}` and `| default: "x"`.
    lenientIf: true,
    strictFilters: true,
    outputEscape: scriptOutput,
    // Templates are parsed from text; an empty in-memory file map keeps `include`/`render`
    // from reading arbitrary files relative to the working directory.
    templates: {},
  });
  addSharedFilters(engine);
  return engine;
}

/** Engine for Ignition (JSON) templates: use `| json` to write strings. */
function createJsonTemplateEngine(LiquidEngine: LiquidClass): Liquid {
  const engine = new LiquidEngine({ strictVariables: true, lenientIf: true, strictFilters: true, templates: {} });
  addSharedFilters(engine);
  return engine;
}

/**
 * The script and the JSON engine, each made (and LiquidJS loaded) the first time a template
 * needs it; a catalogue hands its engines on to the next load, so a reload compiles with the
 * same ones.
 */
export class TemplateEngines {
  private scriptEngine: Promise<Liquid> | undefined;
  private jsonEngine: Promise<Liquid> | undefined;

  /** The engine for iPXE script templates (`templates/`). */
  script(): Promise<Liquid> {
    this.scriptEngine ??= import('liquidjs').then(({ Liquid: LiquidEngine }) => createScriptTemplateEngine(LiquidEngine));
    return this.scriptEngine;
  }

  /** The engine for Ignition templates (`ignition/*.liquid`). */
  json(): Promise<Liquid> {
    this.jsonEngine ??= import('liquidjs').then(({ Liquid: LiquidEngine }) => createJsonTemplateEngine(LiquidEngine));
    return this.jsonEngine;
  }
}

/** Parses a template, returning the error message (with line and column) instead of throwing. */
export function compileTemplate(engine: Liquid, text: string, file: string): { template?: CompiledTemplate; error?: { message: string; line?: number; column?: number } } {
  try {
    return { template: engine.parse(text, file) };
  } catch (error) {
    const err = error as Error & { token?: { getPosition?: () => [number, number] } };
    const pos = err.token?.getPosition?.();
        // LiquidJS appends ", file:..., line:..., col:..." to its messages; the position is reported separately.
    const message = (err.message.split('\n')[0] ?? err.message).replace(/, file:.*$/, '').replace(/, line:\d+, col:\d+$/, '');
    return { error: { message, ...(pos ? { line: pos[0], column: pos[1] } : {}) } };
  }
}
