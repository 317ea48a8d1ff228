/**
 * The parser of Go's text/template: tokens to a tree of text, actions and control structures.
 *
 * It checks what Go checks at parse time: every function named exists, every variable used was
 * declared in scope, `{{end}}` and `{{else}}` are where they may be, `nil` is not a command and
 * only the first command of a pipeline may be a constant. `define`, `template` and `block` are
 * not supported (matchbox renders one file at a time): they are parse errors saying so.
 */
import { KEYWORDS, lex, LexError, type Token } from './lex.ts';

export type Node = TextNode | ActionNode | IfNode | RangeNode | WithNode | BreakNode | ContinueNode;

export interface TextNode {
  type: 'text';
  pos: number;
  text: string;
}

export interface ActionNode {
  type: 'action';
  pos: number;
  pipe: PipeNode;
}

export interface IfNode {
  type: 'if';
  pos: number;
  pipe: PipeNode;
  list: Node[];
  elseList: Node[] | undefined;
}

export interface WithNode {
  type: 'with';
  pos: number;
  pipe: PipeNode;
  list: Node[];
  elseList: Node[] | undefined;
}

export interface RangeNode {
  type: 'range';
  pos: number;
  pipe: PipeNode;
  list: Node[];
  elseList: Node[] | undefined;
}

export interface BreakNode {
  type: 'break';
  pos: number;
}

export interface ContinueNode {
  type: 'continue';
  pos: number;
}

export interface PipeNode {
  type: 'pipe';
  pos: number;
  /** Variables declared (`:=`) or assigned (`=`) by the pipeline. */
  decl: VariableNode[];
  isAssign: boolean;
  cmds: CommandNode[];
}

export interface CommandNode {
  type: 'command';
  pos: number;
  args: Operand[];
}

export type Operand = FieldNode | VariableNode | DotNode | NilNode | BoolNode | NumberNode | StringNode | IdentifierNode | PipeNode | ChainNode;

export interface FieldNode {
  type: 'field';
  pos: number;
  /** `.a.b` is ['a', 'b']. */
  ident: string[];
}

export interface VariableNode {
  type: 'variable';
  pos: number;
  /** `$x.a` is ['$x', 'a']. */
  ident: string[];
}

export interface DotNode {
  type: 'dot';
  pos: number;
}

export interface NilNode {
  type: 'nil';
  pos: number;
}

export interface BoolNode {
  type: 'bool';
  pos: number;
  value: boolean;
}

export interface NumberNode {
  type: 'number';
  pos: number;
  text: string;
  /** An integer constant (Go `int`) or a floating-point one (`float64`). */
  value: bigint | number;
}

export interface StringNode {
  type: 'string';
  pos: number;
  /** The constant as written, quotes included. */
  quoted: string;
  value: string;
}

export interface IdentifierNode {
  type: 'identifier';
  pos: number;
  name: string;
}

/** A field chain on something that is not dot or a variable: `(index . "a").b`. */
export interface ChainNode {
  type: 'chain';
  pos: number;
  node: Operand;
  field: string[];
}

/** A parse error, with the offset of the token it is about. */
export class ParseError extends Error {
  readonly pos: number;
  constructor(message: string, pos: number) {
    super(message);
    this.name = 'ParseError';
    this.pos = pos;
  }
}

interface Scope {
  vars: string[];
}

/** Parses a template's text; throws {@link ParseError}. `functions` are the names that may be called. */
export function parse(source: string, functions: ReadonlySet<string>): Node[] {
  let tokens: Token[];
  try {
    tokens = lex(source);
  } catch (error) {
    if (error instanceof LexError) throw new ParseError(error.message, error.pos);
    throw error;
  }
  return new Parser(tokens, functions).parseTemplate();
}

type ListEnd = { kind: 'end'; pos: number } | { kind: 'else'; pos: number } | { kind: 'eof' };

class Parser {
  private at = 0;
  private readonly scope: Scope = { vars: ['$'] };
  private rangeDepth = 0;

  private readonly tokens: Token[];
  private readonly functions: ReadonlySet<string>;

  constructor(tokens: Token[], functions: ReadonlySet<string>) {
    this.tokens = tokens;
    this.functions = functions;
  }

  parseTemplate(): Node[] {
    const { list, end } = this.parseList();
    if (end.kind === 'end') throw new ParseError('unexpected {{end}}', end.pos);
    if (end.kind === 'else') throw new ParseError('unexpected {{else}}', end.pos);
    return list;
  }

  private peek(): Token {
    return this.tokens[this.at] ?? { kind: 'eof', value: '', pos: 0 };
  }

  private next(): Token {
    const token = this.peek();
    if (this.at < this.tokens.length - 1) this.at++;
    return token;
  }

  private peekNonSpace(): Token {
    while (this.peek().kind === 'space') this.next();
    return this.peek();
  }

  private nextNonSpace(): Token {
    this.peekNonSpace();
    return this.next();
  }

  private unexpected(token: Token, context: string): ParseError {
    if (token.kind === 'eof') return new ParseError(`unexpected EOF in ${context}`, token.pos);
    if (token.kind === 'rightDelim') return new ParseError(`unexpected "}}" in ${context}`, token.pos);
    return new ParseError(`unexpected ${JSON.stringify(token.value)} in ${context}`, token.pos);
  }

  private expectRightDelim(context: string): void {
    const token = this.nextNonSpace();
    if (token.kind !== 'rightDelim') throw this.unexpected(token, context);
  }

  /** Parses nodes up to `{{end}}`, `{{else}}` (left after `else`) or the end of the text. */
  private parseList(): { list: Node[]; end: ListEnd } {
    const list: Node[] = [];
    for (;;) {
      const token = this.next();
      if (token.kind === 'eof') return { list, end: { kind: 'eof' } };
      if (token.kind === 'text') {
        list.push({ type: 'text', pos: token.pos, text: token.value });
        continue;
      }
      if (token.kind !== 'leftDelim') throw this.unexpected(token, 'input');
      const first = this.peekNonSpace();
      if (first.kind === 'comment') {
        this.next();
        this.expectRightDelim('comment');
        continue;
      }
      if (first.kind === 'keyword') {
        this.next();
        switch (first.value) {
          case 'end':
            this.expectRightDelim('end');
            return { list, end: { kind: 'end', pos: first.pos } };
          case 'else':
            return { list, end: { kind: 'else', pos: first.pos } };
          case 'if':
          case 'with':
          case 'range':
            list.push(this.parseControl(first.value, first.pos));
            continue;
          case 'break':
          case 'continue':
            if (this.rangeDepth === 0) throw new ParseError(`{{${first.value}}} outside {{range}}`, first.pos);
            this.expectRightDelim(first.value);
            list.push({ type: first.value, pos: first.pos });
            continue;
          default:
            throw new ParseError(`{{${first.value}}} is not supported: each file is one template`, first.pos);
        }
      }
      const pipe = this.parsePipeline('command', false);
      list.push({ type: 'action', pos: first.pos, pipe });
    }
  }

  /** `if`, `with`, `range`: pipeline, list, optional `else` (or `else if` / `else with`), `end`. */
  private parseControl(kind: 'if' | 'with' | 'range', pos: number): IfNode | WithNode | RangeNode {
    const marked = this.scope.vars.length;
    try {
      const pipe = this.parsePipeline(kind, kind === 'range');
      if (kind === 'range') this.rangeDepth++;
      let parsed;
      try {
        parsed = this.parseList();
      } finally {
        if (kind === 'range') this.rangeDepth--;
      }
      const list = parsed.list;
      let elseList: Node[] | undefined;
      if (parsed.end.kind === 'eof') throw new ParseError(`unexpected EOF: {{${kind}}} without {{end}}`, pos);
      if (parsed.end.kind === 'else') {
        const next = this.peekNonSpace();
        // `{{else if ...}}` and `{{else with ...}}` are an if (with) inside the else branch,
        // ending at the same {{end}}.
        if (next.kind === 'keyword' && next.value === kind && kind !== 'range') {
          this.next();
          elseList = [this.parseControl(kind, next.pos)];
        } else {
          this.expectRightDelim('else');
          const rest = this.parseList();
          if (rest.end.kind === 'else') throw new ParseError(`expected end; found {{else}}`, rest.end.pos);
          if (rest.end.kind === 'eof') throw new ParseError(`unexpected EOF: {{${kind}}} without {{end}}`, pos);
          elseList = rest.list;
        }
      }
      return { type: kind, pos, pipe, list, elseList };
    } finally {
      this.scope.vars.length = marked;
    }
  }

  /** A pipeline up to `}}`, with optional declarations (`$x :=`, in range `$i, $v :=`) or assignment. */
  private parsePipeline(context: string, isRange: boolean): PipeNode {
    const pipe: PipeNode = { type: 'pipe', pos: this.peekNonSpace().pos, decl: [], isAssign: false, cmds: [] };
    this.parseDeclarations(pipe, context, isRange);
    for (;;) {
      const token = this.peekNonSpace();
      if (token.kind === 'rightDelim') {
        this.next();
        break;
      }
      if (token.kind === 'eof') throw this.unexpected(token, context);
      pipe.cmds.push(this.parseCommand(context));
      const after = this.peekNonSpace();
      if (after.kind === 'pipe') {
        this.next();
        const following = this.peekNonSpace();
        if (following.kind === 'rightDelim' || following.kind === 'eof' || following.kind === 'pipe') throw new ParseError('missing command after "|"', following.pos);
      } else if (after.kind !== 'rightDelim') throw this.unexpected(after, context);
    }
    this.checkPipeline(pipe, context);
    return pipe;
  }

  private parseDeclarations(pipe: PipeNode, context: string, isRange: boolean): void {
    const start = this.at;
    const first = this.peekNonSpace();
    if (first.kind !== 'variable') return;
    this.next();
    const afterFirst = this.peekNonSpace();
    if (afterFirst.kind === 'declare' || afterFirst.kind === 'assign') {
      this.next();
      pipe.isAssign = afterFirst.kind === 'assign';
      this.addVariable(pipe, first, pipe.isAssign);
      return;
    }
    if (afterFirst.kind === 'comma') {
      if (!isRange) throw new ParseError(`too many declarations in ${context}`, afterFirst.pos);
      this.next();
      const second = this.nextNonSpace();
      if (second.kind !== 'variable') throw new ParseError(`expected variable after "," in range; found ${JSON.stringify(second.value)}`, second.pos);
      const op = this.nextNonSpace();
      if (op.kind !== 'declare' && op.kind !== 'assign') throw new ParseError('range can only initialize variables', op.pos);
      pipe.isAssign = op.kind === 'assign';
      this.addVariable(pipe, first, pipe.isAssign);
      this.addVariable(pipe, second, pipe.isAssign);
      return;
    }
    // Not a declaration: the variable is the pipeline's first operand.
    this.at = start;
  }

  private addVariable(pipe: PipeNode, token: Token, isAssign: boolean): void {
    if (isAssign && !this.scope.vars.includes(token.value)) throw new ParseError(`undefined variable "${token.value}"`, token.pos);
    pipe.decl.push({ type: 'variable', pos: token.pos, ident: [token.value] });
    if (!isAssign) this.scope.vars.push(token.value);
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) throw new ParseError(`missing value for ${context}`, pipe.pos);
    // Only the first command of a pipeline may be a constant: the others receive a value.
    pipe.cmds.slice(1).forEach((cmd, index) => {
      const first = cmd.args[0];
      if (first && ['bool', 'dot', 'nil', 'number', 'string'].includes(first.type)) {
        throw new ParseError(`non executable command in pipeline stage ${index + 2}`, first.pos);
      }
    });
  }

  /** One command: operands separated by spaces, up to `|`, `)` or `}}`. */
  private parseCommand(context: string): CommandNode {
    const cmd: CommandNode = { type: 'command', pos: this.peekNonSpace().pos, args: [] };
    for (;;) {
      this.peekNonSpace();
      const operand = this.parseOperand(context);
      if (operand) cmd.args.push(operand);
      const token = this.peek();
      if (token.kind === 'space') {
        this.next();
        const following = this.peek();
        if (following.kind === 'rightDelim' || following.kind === 'rightParen' || following.kind === 'pipe') break;
        continue;
      }
      if (token.kind === 'rightDelim' || token.kind === 'rightParen' || token.kind === 'pipe') break;
      if (token.kind === 'eof') throw this.unexpected(token, context);
      throw this.unexpected(token, 'operand');
    }
    if (cmd.args.length === 0) throw new ParseError(`empty command`, cmd.pos);
    return cmd;
  }

  /** One operand (a term and any field chain glued to it); undefined at `|`, `)` or `}}`. */
  private parseOperand(context: string): Operand | undefined {
    const term = this.parseTerm(context);
    if (!term) return undefined;
    if (this.peek().kind !== 'field') return term;
    const fields: string[] = [];
    // As in Go, a chained operand is placed at its first chained field (`.b` of `.a.b`).
    const pos = this.peek().pos;
    while (this.peek().kind === 'field') fields.push(this.next().value.slice(1));
    switch (term.type) {
      case 'field':
        return { ...term, pos, ident: [...term.ident, ...fields] };
      case 'variable':
        return { ...term, pos, ident: [...term.ident, ...fields] };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        throw new ParseError(`unexpected . after term ${JSON.stringify(operandText(term))}`, pos);
      default:
        return { type: 'chain', pos, node: term, field: fields };
    }
  }

  private parseTerm(context: string): Operand | undefined {
    const token = this.peek();
    switch (token.kind) {
      case 'identifier':
        this.next();
        if (!this.functions.has(token.value)) throw new ParseError(`function ${JSON.stringify(token.value)} not defined`, token.pos);
        return { type: 'identifier', pos: token.pos, name: token.value };
      case 'dot':
        this.next();
        return { type: 'dot', pos: token.pos };
      case 'nil':
        this.next();
        return { type: 'nil', pos: token.pos };
      case 'variable':
        this.next();
        if (!this.scope.vars.includes(token.value)) throw new ParseError(`undefined variable "${token.value}"`, token.pos);
        return { type: 'variable', pos: token.pos, ident: [token.value] };
      case 'field':
        this.next();
        return { type: 'field', pos: token.pos, ident: [token.value.slice(1)] };
      case 'bool':
        this.next();
        return { type: 'bool', pos: token.pos, value: token.value === 'true' };
      case 'number':
      case 'char':
        this.next();
        return { type: 'number', pos: token.pos, text: token.value, value: token.kind === 'char' ? charValue(token) : numberValue(token) };
      case 'string':
      case 'rawString':
        this.next();
        return { type: 'string', pos: token.pos, quoted: token.value, value: token.kind === 'rawString' ? token.value.slice(1, -1).replace(/\r/g, '') : unquote(token) };
      case 'leftParen': {
        this.next();
        const pipe: PipeNode = { type: 'pipe', pos: token.pos, decl: [], isAssign: false, cmds: [] };
        for (;;) {
          const next = this.peekNonSpace();
          if (next.kind === 'rightParen') {
            this.next();
            break;
          }
          if (next.kind === 'rightDelim' || next.kind === 'eof') throw new ParseError('unclosed left paren', token.pos);
          pipe.cmds.push(this.parseCommand('parenthesized pipeline'));
          const after = this.peekNonSpace();
          if (after.kind === 'pipe') this.next();
          else if (after.kind !== 'rightParen') throw this.unexpected(after, 'parenthesized pipeline');
        }
        this.checkPipeline(pipe, 'parenthesized pipeline');
        return pipe;
      }
      case 'keyword':
        if (KEYWORDS.has(token.value)) throw new ParseError(`unexpected <${token.value}> in ${context}`, token.pos);
        return undefined;
      default:
        return undefined;
    }
  }
}

/** Go's number syntax: integers (decimal, 0x, 0o, 0b, legacy octal, `_`) and floats. */
function numberValue(token: Token): bigint | number {
  const text = token.value;
  const bad = () => new ParseError(`bad number syntax: ${JSON.stringify(text)}`, token.pos);
  if (text.endsWith('i')) throw new ParseError(`complex constants are not supported: ${JSON.stringify(text)}`, token.pos);
  if (/__|_$|^[+-]?_/.test(text)) throw bad();
  const clean = text.replace(/_/g, '');
  const sign = clean.startsWith('-') ? -1n : 1n;
  const body = clean.replace(/^[+-]/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(body) || /^0[oO][0-7]+$/.test(body) || /^0[bB][01]+$/.test(body)) return sign * BigInt(body.toLowerCase());
  if (/^0[0-7]+$/.test(body)) return sign * BigInt(`0o${body.slice(1)}`);
  if (/^[0-9]+$/.test(body)) return sign * BigInt(body);
  if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(body)) {
    const value = Number(clean);
    if (!Number.isFinite(value)) throw bad();
    return value;
  }
  throw bad();
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };

/** Go's interpreted string and rune escapes. */
function unescape(body: string, token: Token, quote: string): string {
  let out = '';
  const bytes: number[] = [];
  const flush = () => {
    if (bytes.length > 0) out += Buffer.from(bytes).toString('utf8');
    bytes.length = 0;
  };
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] ?? '';
    if (ch !== '\\') {
      flush();
      out += ch;
      continue;
    }
    const e = body[++i] ?? '';
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined && (e !== "'" || quote === "'") && (e !== '"' || quote === '"')) {
      flush();
      out += simple;
      continue;
    }
    const hex = (length: number) => {
      const digits = body.slice(i + 1, i + 1 + length);
      if (!new RegExp(`^[0-9a-fA-F]{${length}}$`).test(digits)) throw new ParseError(`invalid syntax in ${token.value}`, token.pos);
      i += length;
      return parseInt(digits, 16);
    };
    if (e === 'x') bytes.push(hex(2));
    else if (e >= '0' && e <= '7') {
      const digits = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(digits) || parseInt(digits, 8) > 255) throw new ParseError(`invalid syntax in ${token.value}`, token.pos);
      bytes.push(parseInt(digits, 8));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      flush();
      const code = hex(e === 'u' ? 4 : 8);
      if (code > 0x10ffff || (code >= 0xd800 && code < 0xe000)) throw new ParseError(`invalid syntax in ${token.value}`, token.pos);
      out += String.fromCodePoint(code);
    } else throw new ParseError(`invalid syntax in ${token.value}`, token.pos);
  }
  flush();
  return out;
}

function unquote(token: Token): string {
  return unescape(token.value.slice(1, -1), token, '"');
}

function charValue(token: Token): bigint {
  const text = unescape(token.value.slice(1, -1), token, "'");
  const code = text.codePointAt(0);
  if (code === undefined || [...text].length !== 1) throw new ParseError(`malformed character constant: ${token.value}`, token.pos);
  return BigInt(code);
}

/** An operand as Go prints it in error messages (`<.a.b>`, `<index . "x">`). */
export function operandText(node: Operand | CommandNode): string {
  switch (node.type) {
    case 'field':
      return node.ident.map((i) => `.${i}`).join('');
    case 'variable':
      return node.ident.join('.');
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    case 'bool':
      return String(node.value);
    case 'number':
      return node.text;
    case 'string':
      return node.quoted;
    case 'identifier':
      return node.name;
    case 'chain':
      return `${node.node.type === 'pipe' ? `(${operandText(node.node)})` : operandText(node.node)}${node.field.map((f) => `.${f}`).join('')}`;
    case 'command':
      return node.args.map((arg) => (arg.type === 'pipe' ? `(${operandText(arg)})` : operandText(arg))).join(' ');
    case 'pipe': {
      const decl = node.decl.length > 0 ? `${node.decl.map((d) => d.ident.join('.')).join(', ')} ${node.isAssign ? '=' : ':='} ` : '';
      return decl + node.cmds.map(operandText).join(' | ');
    }
  }
}
