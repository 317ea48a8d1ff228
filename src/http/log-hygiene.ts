/**
 * Device-sent text in logs must not drive the operator's terminal. pino's JSON escapes C0
 * control characters but writes DEL and the C1 range (U+0080-U+009F, e.g. U+009B, a one-byte
 * CSI) as they are, and pino-pretty prints messages raw. So the app's logger escapes every
 * control character in strings of what it logs (fields, errors, messages) as `\xHH` text.
 */
import type { FastifyBaseLogger } from 'fastify';
import { stdSerializers } from 'pino';

// Control characters are exactly what these match.
/* eslint-disable no-control-regex */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
// A stack trace keeps its line breaks: they are ours, and it is read on several lines.
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;
/* eslint-enable no-control-regex */

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** `text` with every C0, DEL and C1 control character written as `\xHH`. */
export function escapeControlCharacters(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROLS, hex) : text;
}

const MAX_DEPTH = 6;

function escapeValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return escapeControlCharacters(value);
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object' || value instanceof Error || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map((item) => escapeValue(item, depth + 1));
  const prototype = Object.getPrototypeOf(value) as unknown;
  // Only plain records are rewritten; anything else keeps its own serialisation.
  if (prototype !== Object.prototype && prototype !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) out[escapeControlCharacters(key)] = escapeValue(child, depth + 1);
  return out;
}

/** pino's error serialiser, with control characters escaped in what it returns. */
function serializeError(error: unknown): unknown {
  const serialized = error instanceof Error ? (stdSerializers.err(error) as unknown as Record<string, unknown>) : error;
  if (serialized === null || typeof serialized !== 'object') return escapeValue(serialized, 0);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(serialized)) {
    out[key] = key === 'stack' && typeof value === 'string' ? value.replace(CONTROLS_BUT_NEWLINE, hex) : escapeValue(value, 1);
  }
  return out;
}

/**
 * A child of `logger` (same stream and level) that escapes control characters in everything
 * logged through it and its children (Fastify's request loggers are its children).
 */
export function hygienicLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child(
    {},
    {
      formatters: { log: (object: object) => escapeValue(object, 0) as object },
      serializers: { err: serializeError, msg: (message: unknown) => (typeof message === 'string' ? escapeControlCharacters(message) : message) },
    },
  );
}
