/**
 * The Butane transpiler the Ignition path uses, as the Ignition path needs it: Butane text in,
 * an Ignition config or Butane's errors out (the interface of src/butane's `transpileButane`).
 */

export interface ButaneMessage {
  /** Where in the Butane document, e.g. `storage.files.0.path`. */
  path: string;
  message: string;
}

export type ButaneResult = { ok: true; ignition: Record<string, unknown>; warnings: ButaneMessage[] } | { ok: false; errors: ButaneMessage[]; warnings: ButaneMessage[] };

export interface ButaneOptions {
  filesDir?: string;
  strict?: boolean;
}

export type ButaneTranspiler = (source: string, options?: ButaneOptions) => Promise<ButaneResult>;

const unavailable: ButaneTranspiler = () => Promise.resolve({ ok: false, errors: [{ path: '', message: 'this build of bootdepot has no Butane transpiler' }], warnings: [] });

let current: ButaneTranspiler = unavailable;

/** The transpiler in use. */
export function butaneTranspiler(): ButaneTranspiler {
  return current;
}

/** Replaces the transpiler (tests); returns the one it replaced. */
export function useButaneTranspiler(transpiler: ButaneTranspiler): ButaneTranspiler {
  const previous = current;
  current = transpiler;
  return previous;
}

/** Butane's messages as one line: `path: message; path: message`. */
export function butaneMessages(messages: readonly ButaneMessage[]): string {
  return messages.map((m) => (m.path ? `${m.path}: ${m.message}` : m.message)).join('; ');
}
