/**
 * Executing a parsed template over data, with Go's text/template semantics for the values
 * format.ts describes: truth, field lookup on maps (`missingkey`), `range` over slices, maps in
 * key order and integers, variables and their scopes, pipelines, and the builtins.
 *
 * Execution is bounded: every node evaluated, function called and range iteration is a step,
 * and the output has a byte limit; going past either stops with an error, never a partial text.
 */
import { compareStrings, formatValue, goTypeName, htmlEscape, isMap, isStringMap, jsEscape, printAction, queryEscape, sortedKeys, sprint, sprintf, sprintln, type GoValue } from './format.ts';
import { operandText, type CommandNode, type IdentifierNode, type Node, type Operand, type PipeNode } from './parse.ts';

export type MissingKey = 'error' | 'default' | 'zero';

export interface ExecLimits {
  missingKey: MissingKey;
  maxOutputBytes: number;
  maxSteps: number;
}

/** An execution error: its message without position, and the node it happened at. */
export class ExecError extends Error {
  readonly pos: number;
  readonly context: string;
  constructor(message: string, pos: number, context: string) {
    super(message);
    this.name = 'ExecError';
    this.pos = pos;
    this.context = context;
  }
}

/** The final argument of a pipeline stage, when there is none (the first stage). */
const MISSING = Symbol('missing');
type Final = GoValue | typeof MISSING;

const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');
type Flow = typeof BREAK | typeof CONTINUE | undefined;

/** Builtin functions and how many arguments each takes (`variadic`: at least `min`). */
const BUILTINS: Record<string, { min: number; variadic: boolean }> = {
  and: { min: 1, variadic: true },
  or: { min: 1, variadic: true },
  not: { min: 1, variadic: false },
  len: { min: 1, variadic: false },
  index: { min: 1, variadic: true },
  eq: { min: 1, variadic: true },
  ne: { min: 2, variadic: false },
  lt: { min: 2, variadic: false },
  le: { min: 2, variadic: false },
  gt: { min: 2, variadic: false },
  ge: { min: 2, variadic: false },
  print: { min: 0, variadic: true },
  printf: { min: 1, variadic: true },
  println: { min: 0, variadic: true },
  html: { min: 0, variadic: true },
  js: { min: 0, variadic: true },
  urlquery: { min: 0, variadic: true },
};

export const BUILTIN_NAMES: ReadonlySet<string> = new Set(Object.keys(BUILTINS));

/** Builtins whose parameters are Go `reflect.Value`s, which refuse an invalid (no) value. */
const REFLECT_PARAMS = new Set(['not', 'len', 'index', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or']);

/** Go truth: false, 0, nil, and empty strings, slices and maps are false. */
export function truth(value: GoValue): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'number') return value !== 0;
  if (Array.isArray(value)) return value.length > 0;
  return Object.keys(value).length > 0;
}

/** A function's error, reported by the caller as `error calling NAME: ...`. */
class CallError extends Error {}

type Kind = 'bool' | 'int' | 'float' | 'string' | 'invalid';

function basicKind(value: GoValue): Kind {
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'float';
  if (typeof value === 'string') return 'string';
  return 'invalid';
}

function eq(first: GoValue, others: GoValue[]): boolean {
  if (others.length === 0) throw new CallError('missing argument for comparison');
  const k1 = basicKind(first);
  for (const other of others) {
    const k2 = basicKind(other);
    if (k1 !== k2) {
      if (first !== undefined && first !== null && other !== undefined && other !== null) throw new CallError('incompatible types for comparison');
      continue;
    }
    if (k1 !== 'invalid') {
      if (first === other) return true;
      continue;
    }
    const nil1 = first === undefined || first === null;
    const nil2 = other === undefined || other === null;
    if (nil1 || nil2) {
      if (nil1 === nil2) return true;
      continue;
    }
    // Slices and maps are not comparable in Go.
    throw new CallError(`non-comparable type ${sprintf('%s', [other], 0)}: ${goTypeName(other)}`);
  }
  return false;
}

function lt(a: GoValue, b: GoValue): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === 'invalid' || k2 === 'invalid') throw new CallError('invalid type for comparison');
  if (k1 !== k2) throw new CallError('incompatible types for comparison');
  if (k1 === 'bool') throw new CallError('invalid type for comparison');
  if (k1 === 'string') return compareStrings(a as string, b as string) < 0;
  return (a as number | bigint) < (b as number | bigint);
}

function length(value: GoValue): bigint {
  if (value === null || value === undefined) throw new CallError('len of nil pointer');
  if (typeof value === 'string') return BigInt(Buffer.byteLength(value, 'utf8'));
  if (Array.isArray(value)) return BigInt(value.length);
  if (isMap(value)) return BigInt(Object.keys(value).length);
  throw new CallError(`len of type ${goTypeName(value)}`);
}

function index(item: GoValue, keys: GoValue[]): GoValue {
  if (item === undefined || item === null) throw new CallError('index of untyped nil');
  let current: GoValue = item;
  for (const key of keys) {
    if (current === undefined || current === null) throw new CallError('index of untyped nil');
    if (Array.isArray(current) || typeof current === 'string') {
      const size = typeof current === 'string' ? Buffer.byteLength(current, 'utf8') : current.length;
      if (key === undefined || key === null) throw new CallError('cannot index slice/array with nil');
      if (typeof key !== 'bigint') throw new CallError(`cannot index slice/array with type ${goTypeName(key)}`);
      if (key < 0n || key >= BigInt(size)) throw new CallError(`index out of range: ${key}`);
      current = typeof current === 'string' ? BigInt(Buffer.from(current, 'utf8')[Number(key)] ?? 0) : current[Number(key)];
      continue;
    }
    if (isMap(current)) {
      const valueType = isStringMap(current) ? 'string' : 'interface {}';
      if (key === undefined || key === null) throw new CallError('value is nil; should be of type string');
      if (typeof key !== 'string') throw new CallError(`value has type ${goTypeName(key)}; should be string`);
      // A missing key gives the map's zero value, whatever missingkey says.
      current = Object.hasOwn(current, key) ? current[key] : valueType === 'string' ? '' : null;
      continue;
    }
    throw new CallError(`can't index item of type ${goTypeName(current)}`);
  }
  return current;
}

/** Arguments of the escaping builtins: one string as it is, anything else as `fmt.Sprint`. */
function escapeArgs(args: GoValue[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  return sprint(args);
}

interface Variable {
  name: string;
  value: GoValue;
  /** Holds a range element, whose static type is interface {} (Go's messages say so). */
  boxed?: boolean;
}

export class Executor {
  private readonly out: string[] = [];
  private bytes = 0;
  private steps = 0;
  private readonly vars: Variable[];
  private node: { pos: number; text: string } = { pos: 0, text: '' };
  private readonly limits: ExecLimits;

  constructor(limits: ExecLimits, data: GoValue) {
    this.limits = limits;
    this.vars = [{ name: '$', value: data }];
  }

  run(list: Node[], data: GoValue): string {
    this.walkList(data, list);
    return this.out.join('');
  }

  private fail(message: string): never {
    throw new ExecError(message, this.node.pos, this.node.text);
  }

  /** Where errors are reported from now on: the node being evaluated, as Go's `s.at(node)`. */
  private at(node: Operand | CommandNode): void {
    this.node = { pos: node.pos, text: operandText(node) };
  }

  private step(): void {
    if (++this.steps > this.limits.maxSteps) this.fail(`stopped after ${this.limits.maxSteps} steps: the template does too much work for this data`);
  }

  private write(text: string): void {
    this.bytes += Buffer.byteLength(text, 'utf8');
    if (this.bytes > this.limits.maxOutputBytes) this.fail(`output is larger than ${this.limits.maxOutputBytes} bytes`);
    this.out.push(text);
  }

  private walkList(dot: GoValue, list: Node[]): Flow {
    for (const node of list) {
      const flow = this.walk(dot, node);
      if (flow) return flow;
    }
    return undefined;
  }

  private walk(dot: GoValue, node: Node): Flow {
    this.step();
    switch (node.type) {
      case 'text':
        this.write(node.text);
        return undefined;
      case 'action': {
        this.at(node.pipe);
        const value = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) {
          this.at(node.pipe);
          this.write(printAction(value));
        }
        return undefined;
      }
      case 'if':
      case 'with': {
        const mark = this.vars.length;
        try {
          this.at(node.pipe);
          const value = this.evalPipeline(dot, node.pipe);
          if (truth(value)) return this.walkList(node.type === 'with' ? value : dot, node.list);
          if (node.elseList) return this.walkList(dot, node.elseList);
          return undefined;
        } finally {
          this.vars.length = mark;
        }
      }
      case 'range':
        return this.walkRange(dot, node.pipe, node.list, node.elseList);
      case 'break':
        return BREAK;
      case 'continue':
        return CONTINUE;
    }
  }

  private walkRange(dot: GoValue, pipe: PipeNode, list: Node[], elseList: Node[] | undefined): Flow {
    const outer = this.vars.length;
    try {
      this.at(pipe);
      const value = this.evalPipeline(dot, pipe);
      const mark = this.vars.length;
      const iteration = (key: GoValue, elem: GoValue): boolean => {
        this.step();
        const decl = pipe.decl.length;
        if (decl > 0) this.setTop(1, elem);
        if (decl > 1) this.setTop(2, key);
        try {
          return this.walkList(elem, list) === BREAK;
        } finally {
          this.vars.length = mark;
        }
      };
      let iterated = false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          iterated = true;
          if (iteration(BigInt(i), value[i])) break;
        }
      } else if (isMap(value)) {
        for (const key of sortedKeys(value)) {
          iterated = true;
          if (iteration(key, value[key])) break;
        }
      } else if (typeof value === 'bigint') {
        for (let i = 0n; i < value; i++) {
          iterated = true;
          if (iteration(i, i)) break;
        }
      } else if (value !== undefined && value !== null) {
        this.fail(`range can't iterate over ${formatValue(value)}`);
      }
      if (!iterated && elseList) return this.walkList(dot, elseList);
      return undefined;
    } finally {
      this.vars.length = outer;
    }
  }

  /** Sets the n-th variable from the top (1 is the last declared). */
  private setTop(n: number, value: GoValue): void {
    const variable = this.vars[this.vars.length - n];
    if (variable) {
      variable.value = value;
      variable.boxed = n === 1;
    }
  }

  private varValue(name: string): GoValue {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]?.name === name) return this.vars[i]?.value;
    return this.fail(`undefined variable: ${name}`);
  }

  private setVar(name: string, value: GoValue): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const variable = this.vars[i];
      if (variable?.name === name) {
        variable.value = value;
        return;
      }
    }
    this.fail(`undefined variable: ${name}`);
  }

  private evalPipeline(dot: GoValue, pipe: PipeNode): GoValue {
    let value: Final = MISSING;
    for (const cmd of pipe.cmds) {
      value = this.evalCommand(dot, cmd, value);
      // Go unwraps an interface value here: a nil one becomes no value at all.
      if (value === null) value = undefined;
    }
    const result = value === MISSING ? undefined : value;
    for (const variable of pipe.decl) {
      const name = variable.ident[0] ?? '$';
      if (pipe.isAssign) this.setVar(name, result);
      else this.vars.push({ name, value: result });
    }
    return result;
  }

  private notAFunction(args: Operand[], final: Final): void {
    if (args.length > 1 || final !== MISSING) this.fail(`can't give argument to non-function ${args[0] ? operandText(args[0]) : ''}`);
  }

  private evalCommand(dot: GoValue, cmd: CommandNode, final: Final): GoValue {
    this.step();
    const first = cmd.args[0];
    if (!first) return this.fail('empty command');
    switch (first.type) {
      case 'field':
        this.at(first);
        return this.evalFieldChain(dot, dot, first.ident, cmd.args, final);
      case 'chain':
        return this.evalChain(dot, first, cmd.args, final);
      case 'identifier':
        return this.evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first);
      case 'variable':
        return this.evalVariable(first, cmd.args, final);
      default:
        break;
    }
    this.at(first);
    this.notAFunction(cmd.args, final);
    switch (first.type) {
      case 'bool':
        return first.value;
      case 'dot':
        return dot;
      case 'nil':
        return this.fail('nil is not a command');
      case 'number':
        return first.value;
      case 'string':
        return first.value;
    }
  }

  private evalChain(dot: GoValue, chain: Extract<Operand, { type: 'chain' }>, args: Operand[], final: Final): GoValue {
    this.at(chain);
    if (chain.node.type === 'nil') this.fail(`indirection through explicit nil in ${operandText(chain)}`);
    const receiver = this.evalArg(dot, chain.node, 'interface');
    this.at(chain);
    return this.evalFieldChain(dot, receiver, chain.field, args, final);
  }

  private evalVariable(variable: Extract<Operand, { type: 'variable' }>, args: Operand[], final: Final): GoValue {
    this.at(variable);
    const value = this.varValue(variable.ident[0] ?? '$');
    if (variable.ident.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    const boxed = this.vars.findLast((v) => v.name === variable.ident[0])?.boxed ?? false;
    return this.evalFieldChain(undefined, value, variable.ident.slice(1), args, final, boxed);
  }

  private evalFieldChain(_dot: GoValue, receiver: GoValue, ident: string[], args: Operand[], final: Final, boxedReceiver = false): GoValue {
    let current = receiver;
    let boxed = boxedReceiver;
    ident.forEach((name, i) => {
      const last = i === ident.length - 1;
      const from = current;
      current = this.evalField(name, last ? args : [], last ? final : MISSING, current, boxed);
      // A value taken out of a map[string]interface {} has the static type interface {}.
      boxed = !isStringMap(from);
    });
    return current;
  }

  private evalField(name: string, args: Operand[], final: Final, receiver: GoValue, boxed: boolean): GoValue {
    this.step();
    if (receiver === undefined) {
      if (this.limits.missingKey === 'error') this.fail(`nil data; no entry for key ${JSON.stringify(name)}`);
      return undefined;
    }
    if (receiver === null) this.fail(`nil pointer evaluating interface {}.${name}`);
    if (isMap(receiver)) {
      if (args.length > 1 || final !== MISSING) this.fail(`${name} is not a method but has arguments`);
      if (Object.hasOwn(receiver, name)) return receiver[name];
      switch (this.limits.missingKey) {
        case 'error':
          return this.fail(`map has no entry for key ${JSON.stringify(name)}`);
        case 'zero':
          return isStringMap(receiver) ? '' : null;
        default:
          return undefined;
      }
    }
    return this.fail(`can't evaluate field ${name} in type ${boxed ? 'interface {}' : goTypeName(receiver)}`);
  }

  /** Evaluates one argument of a function: `interface` parameters take nil, `reflect` ones refuse no value. */
  private evalArg(dot: GoValue, node: Operand, param: 'interface' | 'reflect' | 'string'): GoValue {
    this.at(node);
    let value: GoValue;
    switch (node.type) {
      case 'dot':
        value = dot;
        break;
      case 'nil':
        if (param === 'string') this.fail('cannot assign nil to string');
        return param === 'interface' ? null : undefined;
      case 'field':
        value = this.evalFieldChain(dot, dot, node.ident, [node], MISSING);
        break;
      case 'variable':
        value = this.evalVariable(node, [], MISSING);
        break;
      case 'pipe':
        value = this.evalPipeline(dot, node);
        break;
      case 'identifier':
        value = this.evalFunction(dot, node, node, [node], MISSING);
        break;
      case 'chain':
        value = this.evalChain(dot, node, [], MISSING);
        break;
      case 'bool':
      case 'number':
      case 'string':
        value = node.value;
        if (param === 'string' && typeof value !== 'string') this.fail(`expected string; found ${operandText(node)}`);
        return value;
    }
    return this.validate(value, param);
  }

  /** Go's validateType: no value passes as nil to `interface {}` and `reflect.Value` parameters, not to `string`. */
  private validate(value: GoValue, param: 'interface' | 'reflect' | 'string'): GoValue {
    if (value === undefined) {
      if (param !== 'string') return param === 'interface' ? null : undefined;
      this.fail('invalid value; expected string');
    }
    if (param === 'string' && typeof value !== 'string') this.fail(`wrong type for value; expected string; got ${goTypeName(value)}`);
    return value;
  }

  private evalFunction(dot: GoValue, ident: IdentifierNode, node: CommandNode | IdentifierNode, args: Operand[], final: Final): GoValue {
    this.at(ident);
    const name = ident.name;
    const spec = BUILTINS[name];
    if (!spec) return this.fail(`${JSON.stringify(name)} is not a defined function`);
    this.step();
    const given = args.slice(1);
    const count = given.length + (final === MISSING ? 0 : 1);
    if (spec.variadic && count < spec.min) this.fail(`wrong number of args for ${name}: want at least ${spec.min} got ${given.length}`);
    if (!spec.variadic && count !== spec.min) this.fail(`wrong number of args for ${name}: want ${spec.min} got ${count}`);
    const param = REFLECT_PARAMS.has(name) ? 'reflect' : 'interface';

    if (name === 'and' || name === 'or') {
      let value: GoValue = undefined;
      for (const arg of given) {
        value = this.evalArg(dot, arg, 'reflect');
        if (truth(value) === (name === 'or')) return value;
      }
      if (final !== MISSING) value = this.validate(final, 'reflect');
      return value;
    }

    const values: GoValue[] = given.map((arg, i) => this.evalArg(dot, arg, name === 'printf' && i === 0 ? 'string' : param));
    if (final !== MISSING) values.push(this.validate(final, name === 'printf' && values.length === 0 ? 'string' : param));
    try {
      return this.call(name, values);
    } catch (error) {
      if (error instanceof CallError || error instanceof RangeError) {
        this.at(node);
        this.fail(`error calling ${name}: ${error.message}`);
      }
      throw error;
    }
  }

  private call(name: string, args: GoValue[]): GoValue {
    const [a, b] = args;
    switch (name) {
      case 'not':
        return !truth(a);
      case 'len':
        return length(a);
      case 'index':
        return index(a, args.slice(1));
      case 'eq':
        return eq(a, args.slice(1));
      case 'ne':
        return !eq(a, [b]);
      case 'lt':
        return lt(a, b);
      case 'le':
        return lt(a, b) || eq(a, [b]);
      case 'gt':
        return !(lt(a, b) || eq(a, [b]));
      case 'ge':
        return !lt(a, b);
      case 'print':
        return sprint(args);
      case 'println':
        return sprintln(args);
      case 'printf':
        return sprintf(typeof a === 'string' ? a : '', args.slice(1), this.limits.maxOutputBytes);
      case 'html':
        return htmlEscape(escapeArgs(args));
      case 'js':
        return jsEscape(escapeArgs(args));
      case 'urlquery':
        return queryEscape(escapeArgs(args));
      default:
        throw new CallError(`${name} is not a function`);
    }
  }
}
