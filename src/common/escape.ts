/**
 * Escaping for values that end up inside an iPXE script.
 *
 * iPXE has no quoting: a script line is split on whitespace, `${...}` is expanded anywhere,
 * `#` starts a comment, `||` and `&&` chain commands, and a line break starts a new command.
 * So a value a device sent can only be made safe by keeping every one of those characters out
 * of it. Both encoders here percent-encode every byte outside a small safe set; the result is
 * one token that iPXE passes through literally and that a web server decodes back.
 */

/** RFC 3986 unreserved characters: the only bytes left as they are by {@link encodeUriComponentStrict}. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

const QUERY_SAFE = /^[A-Za-z0-9\-._~:]$/;

/** Characters left readable by {@link ipxeToken}: no whitespace, `$`, `#`, `|`, `&`, quotes or `%`. */
const IPXE_TOKEN_SAFE = /^[A-Za-z0-9\-._~:/,=+@]$/;

function percentEncode(value: string, keep: RegExp): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && keep.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Percent-encodes everything but RFC 3986 unreserved characters: for query-string values and
 * path segments. Stricter than `encodeURIComponent`, which leaves `!'()*` alone.
 */
export function encodeUriComponentStrict(value: string): string {
  return percentEncode(value, UNRESERVED);
}

/**
 * Percent-encodes a query-string value: like {@link encodeUriComponentStrict} but keeps `:`,
 * which RFC 3986 allows in a query and which keeps MAC addresses readable in URLs and logs.
 */
export function encodeQueryValue(value: string): string {
  return percentEncode(value, QUERY_SAFE);
}

/**
 * Makes a string safe to stand as (part of) one iPXE token. Characters common in kernel
 * arguments and URLs (`:/,=+@`) stay readable; everything else is percent-encoded, `%` itself
 * included so that encoding is reversible.
 */
export function ipxeToken(value: string): string {
  return percentEncode(value, IPXE_TOKEN_SAFE);
}

/** True when a trusted string (operator config) holds no line break that could start a command. */
export function hasLineBreak(value: string): boolean {
  return /[\r\n\u2028\u2029\u0085]/.test(value);
}

/** Line breaks and other control characters: never left in a GRUB word (see {@link grubQuote}). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must go
const GRUB_CONTROL = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/g;

/**
 * Makes any string one GRUB script word that stands for the string itself. GRUB expands
 * `$name` and `${name}` outside single quotes and inside double quotes, splits words on
 * whitespace, and treats `;`, `|`, `&`, `<`, `>`, `#`, `{`, `}` and quotes specially; inside
 * single quotes nothing is special, but a single quote cannot appear there even after a
 * backslash. So the value is single-quoted and each `'` written as `'\''` (close, an escaped
 * quote, reopen), as in a POSIX shell. Control characters, line breaks included, become `_`:
 * a quoted line break would carry the word onto the next line of the config.
 */
export function grubQuote(value: string): string {
  return `'${value.replace(GRUB_CONTROL, '_').replace(/'/g, `'\\''`)}'`;
}

/** A GRUB variable reference: `$name`, `${name}`, or a positional `$1` / `${1}`. */
const GRUB_VARIABLE = /^\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|\{(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\})/;

/**
 * Writes an operator's string (a profile's kernel argument) as one GRUB word in double quotes,
 * as matchbox's GRUB configs are read: GRUB variables (`${net_default_mac}`) still expand, while
 * whitespace, `;`, `#` and the like stay literal. A `$` that does not start a well-formed GRUB
 * variable (iPXE's `${mac:hexhyp}`) is escaped, since GRUB would reject the whole config over
 * it; `"` and `\` are escaped, and control characters become `_`. Never for values a device
 * sent: those go through {@link grubQuote}, where nothing expands.
 */
export function grubDoubleQuote(value: string): string {
  const text = value.replace(GRUB_CONTROL, '_');
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '$') {
      const variable = GRUB_VARIABLE.exec(text.slice(i))?.[0];
      if (variable) {
        out += variable;
        i += variable.length - 1;
      } else out += '\\$';
    } else out += ch;
  }
  return `"${out}"`;
}
