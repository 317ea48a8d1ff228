/**
 * Go's printing of template values (`fmt`'s `%v`, `Sprint`, `Sprintf`) and the escapers of the
 * `html`, `js` and `urlquery` builtins, for the values templates see:
 *
 * | Go type                  | here                                   |
 * | ------------------------ | -------------------------------------- |
 * | invalid (no value)       | `undefined`                            |
 * | nil interface            | `null` (JSON null)                     |
 * | string, bool             | string, boolean                        |
 * | int (template constants) | bigint                                 |
 * | float64 (JSON numbers)   | number                                 |
 * | []interface {}           | array                                  |
 * | map[string]interface {}  | plain object (map[string]string when marked with {@link markStringMap}) |
 */

export type GoValue = undefined | null | string | boolean | bigint | number | GoValue[] | GoMap;
export interface GoMap {
  [key: string]: GoValue;
}

const STRING_MAPS = new WeakSet<object>();

/** Marks an object as a Go `map[string]string`: `index` of a missing key gives "" instead of no value. */
export function markStringMap<T extends Record<string, string>>(map: T): T {
  STRING_MAPS.add(map);
  return map;
}

export function isStringMap(value: unknown): boolean {
  return typeof value === 'object' && value !== null && STRING_MAPS.has(value);
}

export function isMap(value: GoValue): value is GoMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The Go type of a value, as Go's messages name it. */
export function goTypeName(value: GoValue): string {
  if (value === undefined) return '<nil>';
  if (value === null) return 'interface {}';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'float64';
  if (Array.isArray(value)) return '[]interface {}';
  return isStringMap(value) ? 'map[string]string' : 'map[string]interface {}';
}

function specialFloat(value: number): string | undefined {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return undefined;
}

/** Extra digits read past the rounding point: enough to tell an exact tie for any double. */
const GUARD = 30;

/**
 * Rounds a digit string to `keep` digits, half to even as Go's strconv does (JavaScript's
 * toFixed and toExponential round ties up). A carry out of the top (999 -> 1000) gives one
 * digit more than `keep`.
 */
function roundDigits(digits: string, keep: number): string {
  if (digits.length <= keep) return digits.padEnd(keep, '0');
  const head = digits.slice(0, keep);
  const next = digits[keep] ?? '0';
  const rest = digits.slice(keep + 1);
  const last = Number(head[head.length - 1] ?? '0');
  const up = next > '5' || (next === '5' && (/[1-9]/.test(rest) || last % 2 === 1));
  if (!up) return head;
  return (BigInt(head === '' ? '0' : head) + 1n).toString().padStart(keep, '0');
}

/** Decimal notation of a magnitude with `precision` digits after the point, rounded half to even. */
function toFixed(magnitude: number, precision: number): string {
  const exact = magnitude < 1e21 ? magnitude.toFixed(Math.min(precision + GUARD, 100)) : `${BigInt(magnitude).toString()}.${'0'.repeat(precision + GUARD)}`;
  const [whole = '0', fraction = ''] = exact.split('.');
  const all = roundDigits(whole + fraction, whole.length + precision);
  const intPart = all.slice(0, all.length - precision) || '0';
  return precision > 0 ? `${intPart}.${all.slice(all.length - precision)}` : intPart;
}

/** `sig` significant digits and the decimal exponent of a positive float, rounded half to even. */
function significantDigits(magnitude: number, sig: number): { digits: string; exponent: number } {
  if (magnitude === 0) return { digits: '0'.repeat(sig), exponent: 0 };
  const [mantissa = '0', exp = '0'] = magnitude.toExponential(Math.min(sig - 1 + GUARD, 100)).split('e');
  const rounded = roundDigits(mantissa.replace('.', ''), sig);
  return rounded.length > sig ? { digits: rounded.slice(0, sig), exponent: Number(exp) + 1 } : { digits: rounded, exponent: Number(exp) };
}

/** The shortest decimal digits of a float and its exponent (`1.5e3` is digits "15", exponent 3). */
function shortestDigits(value: number): { digits: string; exponent: number } {
  const [mantissa = '0', exp = '0'] = Math.abs(value).toExponential().split('e');
  return { digits: mantissa.replace('.', ''), exponent: Number(exp) };
}

/** Places digits in decimal notation. */
function placeDigits(digits: string, exponent: number): string {
  if (exponent < 0) return `0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return digits + '0'.repeat(exponent + 1 - digits.length);
  return `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

/** Go's `%g` with the given precision, or the shortest representation (`%v`) for -1. */
export function formatFloatG(value: number, precision = -1, sharp = false): string {
  const special = specialFloat(value);
  if (special) return special;
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  let digits: string;
  let exponent: number;
  if (value === 0) {
    digits = '0';
    exponent = 0;
  } else if (precision < 0) {
    ({ digits, exponent } = shortestDigits(value));
  } else {
    ({ digits, exponent } = significantDigits(Math.abs(value), Math.max(precision, 1)));
    if (!sharp) digits = digits.replace(/0+$/, '') || '0';
  }
  // Go uses %e when the exponent is < -4 or >= the precision (6 for the shortest form).
  const eprec = precision < 0 ? 6 : Math.max(precision, 1);
  if (exponent < -4 || exponent >= eprec) {
    const mantissa = digits.length > 1 ? `${digits[0] ?? ''}.${digits.slice(1)}` : digits;
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return sign + placeDigits(digits, exponent);
}

function formatFloatE(value: number, precision: number, upper: boolean): string {
  const special = specialFloat(value);
  if (special) return special;
  const { digits, exponent } = significantDigits(Math.abs(value), precision + 1);
  const mantissa = precision > 0 ? `${digits[0] ?? '0'}.${digits.slice(1)}` : digits;
  const text = `${value < 0 ? '-' : ''}${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  return upper ? text.toUpperCase() : text;
}

/** `%v` of a value inside a composite or a print argument: nil is `<nil>`. */
export function formatValue(value: GoValue): string {
  if (value === undefined || value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'number') return formatFloatG(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(' ')}]`;
  // fmt prints maps sorted by key.
  return `map[${sortedKeys(value)
    .map((key) => `${key}:${formatValue(value[key])}`)
    .join(' ')}]`;
}

/** How an action prints its value: `<no value>` for nothing, else `%v`. */
export function printAction(value: GoValue): string {
  return value === undefined || value === null ? '<no value>' : formatValue(value);
}

export function sortedKeys(map: GoMap): string[] {
  return Object.keys(map).sort((a, b) => compareStrings(a, b));
}

/** Go compares strings by bytes; for UTF-16 strings that is code point order. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]?.codePointAt(0) ?? 0;
    const q = y[i]?.codePointAt(0) ?? 0;
    if (p !== q) return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/** `fmt.Sprint`: spaces between operands when neither is a string. */
export function sprint(args: readonly GoValue[]): string {
  let out = '';
  args.forEach((arg, i) => {
    if (i > 0 && typeof arg !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(arg);
  });
  return out;
}

/** `fmt.Sprintln`: spaces between every operand, then a newline. */
export function sprintln(args: readonly GoValue[]): string {
  return `${args.map(formatValue).join(' ')}\n`;
}

/** Go's strconv.Quote: printable characters as they are, the rest escaped. */
export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code < 0x80 || isPrintable(ch)) out += ch;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isPrintable(ch: string): boolean {
  return ch === ' ' || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch);
}

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | undefined;
  precision: number | undefined;
}

function pad(text: string, spec: Spec, numeric: boolean): string {
  const width = spec.width ?? 0;
  const length = [...text].length;
  if (length >= width) return text;
  const fill = width - length;
  if (spec.minus) return text + ' '.repeat(fill);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(text) ? (text[0] ?? '') : '';
    return sign + '0'.repeat(fill) + text.slice(sign.length);
  }
  return ' '.repeat(fill) + text;
}

function signed(text: string, negative: boolean, spec: Spec): string {
  if (negative) return `-${text}`;
  if (spec.plus) return `+${text}`;
  if (spec.space) return ` ${text}`;
  return text;
}

function badVerb(verb: string, value: GoValue): string {
  if (value === undefined || value === null) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(value)}=${formatValue(value)})`;
}

function formatInteger(value: bigint, verb: string, spec: Spec): string {
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  let digits: string;
  switch (verb) {
    case 'd':
    case 'v':
      digits = magnitude.toString(10);
      break;
    case 'x':
      digits = magnitude.toString(16);
      if (spec.sharp) digits = `0x${digits}`;
      break;
    case 'X':
      digits = magnitude.toString(16).toUpperCase();
      if (spec.sharp) digits = `0X${digits}`;
      break;
    case 'o':
      digits = magnitude.toString(8);
      if (spec.sharp) digits = `0${digits}`;
      break;
    case 'O':
      digits = `0o${magnitude.toString(8)}`;
      break;
    case 'b':
      digits = magnitude.toString(2);
      break;
    case 'c':
      return pad(String.fromCodePoint(Number(magnitude)), spec, false);
    case 'q':
      return pad(`'${goQuote(String.fromCodePoint(Number(magnitude))).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`, spec, false);
    case 'U':
      return pad(`U+${magnitude.toString(16).toUpperCase().padStart(4, '0')}`, spec, false);
    default:
      return badVerb(verb, value);
  }
  if (spec.precision !== undefined) digits = digits.padStart(spec.precision, '0');
  return pad(signed(digits, negative, spec), spec, spec.precision === undefined);
}

function formatFloat(value: number, verb: string, spec: Spec): string {
  const negative = value < 0 || Object.is(value, -0);
  const magnitude = Math.abs(value);
  let text: string;
  switch (verb) {
    case 'v':
    case 'g':
      text = formatFloatG(magnitude, spec.precision ?? -1, spec.sharp);
      break;
    case 'G':
      text = formatFloatG(magnitude, spec.precision ?? -1, spec.sharp).toUpperCase();
      break;
    case 'e':
    case 'E':
      text = formatFloatE(magnitude, spec.precision ?? 6, verb === 'E');
      break;
    case 'f':
    case 'F':
      text = specialFloat(magnitude) ?? toFixed(magnitude, Math.min(spec.precision ?? 6, 100));
      break;
    default:
      return badVerb(verb, value);
  }
  if (Number.isNaN(value)) return pad(text, spec, false);
  return pad(signed(text.replace(/^\+/, ''), negative, spec), spec, Number.isFinite(value));
}

function truncate(text: string, spec: Spec): string {
  return spec.precision === undefined ? text : [...text].slice(0, spec.precision).join('');
}

/** One operand with one verb; composites apply the verb to each element, as fmt does. */
function formatWith(value: GoValue, verb: string, spec: Spec): string {
  if (verb === 'T') return pad(value === undefined || value === null ? '<nil>' : goTypeName(value), spec, false);
  if (value === undefined || value === null) return verb === 'v' ? pad('<nil>', spec, false) : badVerb(verb, value);
  if (typeof value === 'bigint') return formatInteger(value, verb, spec);
  if (typeof value === 'number') return formatFloat(value, verb, spec);
  if (typeof value === 'boolean') return verb === 'v' || verb === 't' ? pad(String(value), spec, false) : badVerb(verb, value);
  if (typeof value === 'string') {
    switch (verb) {
      case 'v':
      case 's':
        return pad(truncate(value, spec), spec, false);
      case 'q':
        return pad(goQuote(truncate(value, spec)), spec, false);
      case 'x':
      case 'X': {
        const hex = Buffer.from(truncate(value, spec), 'utf8').toString('hex');
        return pad(verb === 'X' ? hex.toUpperCase() : hex, spec, false);
      }
      default:
        return badVerb(verb, value);
    }
  }
  const inner = { ...spec, width: undefined };
  if (Array.isArray(value)) return pad(`[${value.map((v) => formatWith(v, verb, inner)).join(' ')}]`, spec, false);
  return pad(
    `map[${sortedKeys(value)
      .map((key) => `${formatWith(key, verb, inner)}:${formatWith(value[key], verb, inner)}`)
      .join(' ')}]`,
    spec,
    false,
  );
}

/**
 * `fmt.Sprintf` for the verbs templates use: v s q d x X o O b c U t e E f F g G T and %%, with
 * flags, width and precision. Wrong types and missing or extra operands print as Go prints them
 * (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA ...)`). `maxWidth` caps widths and precisions, so a
 * template cannot ask for a gigabyte of padding.
 */
export function sprintf(format: string, args: readonly GoValue[], maxWidth: number): string {
  let out = '';
  let argIndex = 0;
  for (let i = 0; i < format.length; i++) {
    const ch = format[i];
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: undefined, precision: undefined };
    i++;
    for (; i < format.length; i++) {
      const flag = format[i];
      if (flag === '-') spec.minus = true;
      else if (flag === '+') spec.plus = true;
      else if (flag === '#') spec.sharp = true;
      else if (flag === ' ') spec.space = true;
      else if (flag === '0') spec.zero = !spec.minus;
      else break;
    }
    const number = (): number | undefined => {
      const start = i;
      while (/[0-9]/.test(format[i] ?? '')) i++;
      if (i === start) return undefined;
      const n = Number(format.slice(start, i));
      if (n > maxWidth) throw new RangeError(`printf width or precision ${n} is larger than ${maxWidth}`);
      return n;
    };
    spec.width = number();
    if (format[i] === '.') {
      i++;
      spec.precision = number() ?? 0;
    }
    const verb = format[i];
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argIndex >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatWith(args[argIndex++], verb, spec);
  }
  if (argIndex < args.length) {
    out += `%!(EXTRA ${args
      .slice(argIndex)
      .map((arg) => (arg === undefined || arg === null ? '<nil>' : `${goTypeName(arg)}=${formatValue(arg)}`))
      .join(', ')})`;
  }
  return out;
}

/** Go's template.HTMLEscapeString. */
export function htmlEscape(text: string): string {
  return text.replace(/[<>&'"\0]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;', '\0': '\uFFFD' })[ch] ?? ch);
}

/** Go's template.JSEscapeString. */
export function jsEscape(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    const simple = { '\\': '\\\\', "'": "\\'", '"': '\\"', '<': '\\u003C', '>': '\\u003E', '&': '\\u0026', '=': '\\u003D' }[ch];
    if (simple) out += simple;
    else if (code < 0x20) out += `\\u00${code.toString(16).toUpperCase().padStart(2, '0')}`;
    else if (code < 0x80 || isPrintable(ch)) out += ch;
    else out += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return out;
}

/** Go's url.QueryEscape: unreserved characters as they are, space as `+`, the rest %XX. */
export function queryEscape(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
