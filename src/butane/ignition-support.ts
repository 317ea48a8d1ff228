/**
 * What Ignition's rules share: where findings go, and the checks of paths and modes.
 */
import path from 'node:path';
import type { IgnObject } from './ignition-schema.ts';
import type { Path } from './messages.ts';

export interface Finding {
  path: Path;
  message: string;
  warning: boolean;
}

export interface Ctx {
  out: Finding[];
  minor: number;
  version: string;
}

export type O = IgnObject;
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const notEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';
export const list = (v: unknown): O[] => (Array.isArray(v) ? (v as O[]) : []);

export function err(ctx: Ctx, p: Path, message: string | undefined): void {
  if (message) ctx.out.push({ path: p, message, warning: false });
}
export function warn(ctx: Ctx, p: Path, message: string | undefined): void {
  if (message) ctx.out.push({ path: p, message, warning: true });
}

export function validatePath(p: string): string | undefined {
  if (p === '') return 'path not specified';
  if (!p.startsWith('/')) return 'path not absolute';
  // Go's path.Clean: no `.`, `..`, doubled or trailing slashes.
  const clean = path.posix.normalize(p).replace(/(.)\/$/, '$1');
  return clean === p ? undefined : 'path is not fully simplified';
}

export function validateMode(ctx: Ctx, o: O, p: Path): void {
  const mode = o['mode'];
  if (typeof mode !== 'number') return;
  err(ctx, [...p, 'mode'], mode < 0 || mode > 0o7777 ? 'illegal file mode' : undefined);
  if (ctx.minor < 6 && (mode & 0o7000) !== 0) {
    warn(ctx, [...p, 'mode'], 'setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0');
  }
}

export function idOrName(ctx: Ctx, o: O, p: Path): void {
  if (o['id'] !== undefined && notEmpty(o['name'])) err(ctx, p, 'cannot set both id and name');
}

