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
