/**
 * The lexer of Go's text/template: text between actions, and the tokens inside `{{ }}`.
 *
 * As in Go, `{{- ` trims the whitespace before an action and ` -}}` the whitespace after it (the
 * marker needs the space: `{{-3}}` is the number -3), and a comment is `{{/* ... *\/}}` with
 * nothing else in the action. Tokens carry their offset in the source, from which errors give
 * a line and column.
 */

export type TokenKind =
  | 'text'
  | 'leftDelim'
  | 'rightDelim'
  | 'comment'
  | 'space'
  | 'leftParen'
  | 'rightParen'
  | 'pipe'
  | 'declare'
  | 'assign'
  | 'comma'
  | 'field'
  | 'variable'
  | 'dot'
  | 'identifier'
  | 'keyword'
  | 'string'
  | 'rawString'
  | 'char'
  | 'number'
  | 'bool'
  | 'nil'
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** The token's text; for `text` tokens, the text after trimming. */
  value: string;
  /** Offset of the token's first character in the source. */
  pos: number;
}

/** Thrown for text that is not a template; the parser turns it into a positioned error. */
export class LexError extends Error {
  readonly pos: number;
  constructor(message: string, pos: number) {
    super(message);
    this.name = 'LexError';
    this.pos = pos;
  }
}

export const KEYWORDS = new Set(['block', 'break', 'continue', 'define', 'else', 'end', 'if', 'range', 'template', 'with']);

const LEFT = '{{';
const RIGHT = '}}';

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

function isAlphaNumeric(ch: string | undefined): boolean {
  return ch !== undefined && (ch === '_' || /[\p{L}\p{Nd}]/u.test(ch));
}

/** Splits a template into tokens. */
export function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  let trimNextText = false;
  while (at <= source.length) {
    const open = source.indexOf(LEFT, at);
    let text = source.slice(at, open < 0 ? source.length : open);
    const trimBefore = open >= 0 && source[open + 2] === '-' && isSpace(source[open + 3]);
    if (trimNextText) text = text.replace(/^[ \t\r\n]+/, '');
    if (trimBefore) text = text.replace(/[ \t\r\n]+$/, '');
    if (text !== '') tokens.push({ kind: 'text', value: text, pos: at });
    if (open < 0) break;
    at = lexAction(source, open, trimBefore, tokens);
    trimNextText = tokens.at(-1)?.value === '-}}';
  }
  tokens.push({ kind: 'eof', value: '', pos: source.length });
  return tokens;
}

/** Whether a right delimiter starts at `at`, with or without its trim marker; its length if so. */
function rightDelimAt(source: string, at: number): { length: number; trim: boolean } | undefined {
  if (isSpace(source[at]) && source[at + 1] === '-' && source.startsWith(RIGHT, at + 2)) return { length: 4, trim: true };
  if (source.startsWith(RIGHT, at)) return { length: 2, trim: false };
  return undefined;
}

/** Lexes one action starting at `open` (its `{{`); returns the offset after its `}}`. */
function lexAction(source: string, open: number, trimmed: boolean, tokens: Token[]): number {
  tokens.push({ kind: 'leftDelim', value: LEFT, pos: open });
  let at = open + 2 + (trimmed ? 2 : 0);
  if (source.startsWith('/*', at)) {
    const end = source.indexOf('*/', at + 2);
    if (end < 0) throw new LexError('unclosed comment', open);
    const close = rightDelimAt(source, end + 2);
    if (!close) throw new LexError('comment ends before closing delimiter', open);
    tokens.push({ kind: 'comment', value: source.slice(at, end + 2), pos: at });
    tokens.push({ kind: 'rightDelim', value: close.trim ? '-}}' : RIGHT, pos: end + 2 });
    return end + 2 + close.length;
  }
  let parens = 0;
  for (;;) {
    const close = rightDelimAt(source, at);
    if (close) {
      if (parens > 0) throw new LexError('unclosed left paren', at);
      tokens.push({ kind: 'rightDelim', value: close.trim ? '-}}' : RIGHT, pos: at });
      return at + close.length;
    }
    const ch = source[at];
    if (ch === undefined) throw new LexError('unclosed action', open);
    const start = at;
    if (isSpace(ch)) {
      while (isSpace(source[at]) && !rightDelimAt(source, at)) at++;
      tokens.push({ kind: 'space', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === '(') {
      parens++;
      tokens.push({ kind: 'leftParen', value: ch, pos: at++ });
      continue;
    }
    if (ch === ')') {
      if (--parens < 0) throw new LexError('unexpected right paren', at);
      tokens.push({ kind: 'rightParen', value: ch, pos: at++ });
      continue;
    }
    if (ch === '|') {
      tokens.push({ kind: 'pipe', value: ch, pos: at++ });
      continue;
    }
    if (ch === ',') {
      tokens.push({ kind: 'comma', value: ch, pos: at++ });
      continue;
    }
    if (ch === ':') {
      if (source[at + 1] !== '=') throw new LexError('expected :=', at);
      tokens.push({ kind: 'declare', value: ':=', pos: at });
      at += 2;
      continue;
    }
    if (ch === '=') {
      tokens.push({ kind: 'assign', value: ch, pos: at++ });
      continue;
    }
    if (ch === '"') {
      at++;
      for (;;) {
        const c = source[at];
        if (c === undefined || c === '\n') throw new LexError('unterminated quoted string', start);
        at++;
        if (c === '\\') {
          if (source[at] === undefined || source[at] === '\n') throw new LexError('unterminated quoted string', start);
          at++;
        } else if (c === '"') break;
      }
      tokens.push({ kind: 'string', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === '`') {
      const end = source.indexOf('`', at + 1);
      if (end < 0) throw new LexError('unterminated raw quoted string', start);
      at = end + 1;
      tokens.push({ kind: 'rawString', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === "'") {
      at++;
      for (;;) {
        const c = source[at];
        if (c === undefined || c === '\n') throw new LexError('unterminated character constant', start);
        at++;
        if (c === '\\') at++;
        else if (c === "'") break;
      }
      tokens.push({ kind: 'char', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === '$') {
      at++;
      while (isAlphaNumeric(source[at])) at++;
      tokens.push({ kind: 'variable', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === '.') {
      const next = source[at + 1];
      if (next !== undefined && next >= '0' && next <= '9') {
        at = lexNumber(source, at, tokens);
        continue;
      }
      at++;
      while (isAlphaNumeric(source[at])) at++;
      tokens.push({ kind: at - start === 1 ? 'dot' : 'field', value: source.slice(start, at), pos: start });
      continue;
    }
    if (ch === '+' || ch === '-' || (ch >= '0' && ch <= '9')) {
      at = lexNumber(source, at, tokens);
      continue;
    }
    if (isAlphaNumeric(ch)) {
      while (isAlphaNumeric(source[at])) at++;
      const word = source.slice(start, at);
      const kind: TokenKind = KEYWORDS.has(word) ? 'keyword' : word === 'true' || word === 'false' ? 'bool' : word === 'nil' ? 'nil' : 'identifier';
      tokens.push({ kind, value: word, pos: start });
      continue;
    }
    throw new LexError(`unrecognized character in action: ${JSON.stringify(ch)}`, at);
  }
}

/** Scans a number the way Go's lexer does (generously), leaving validation to the parser. */
function lexNumber(source: string, at: number, tokens: Token[]): number {
  const start = at;
  if (source[at] === '+' || source[at] === '-') at++;
  let digits = '0123456789_';
  if (source[at] === '0' && /[xXoObB]/.test(source[at + 1] ?? '')) {
    const base = (source[at + 1] ?? '').toLowerCase();
    digits = base === 'x' ? '0123456789abcdefABCDEF_' : base === 'o' ? '01234567_' : '01_';
    at += 2;
  }
  const run = () => {
    while (source[at] !== undefined && digits.includes(source[at] ?? '')) at++;
  };
  run();
  if (source[at] === '.') {
    at++;
    run();
  }
  const exponent = digits.length === 11 ? 'eE' : digits.includes('f') ? 'pP' : '';
  if (exponent && exponent.includes(source[at] ?? '?')) {
    at++;
    if (source[at] === '+' || source[at] === '-') at++;
    while (/[0-9_]/.test(source[at] ?? '')) at++;
  }
  if (source[at] === 'i') at++;
  // Something glued to a number ("3x") is a bad number, as in Go.
  while (isAlphaNumeric(source[at]) || source[at] === '.') at++;
  tokens.push({ kind: 'number', value: source.slice(start, at), pos: start });
  return at;
}
