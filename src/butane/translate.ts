/**
 * The base translation, common to every variant: each Butane field to its Ignition field
 * (snake_case to camelCase), and Butane's own sugar resolved: `inline` and `local` contents to
 * data URLs, `contents_local` of units and drop-ins, `ssh_authorized_keys_local`.
 */
import type { ButaneObject } from './decode.ts';
import type { Path, Report } from './messages.ts';
import { camel, type Origins } from './origins.ts';
import { makeDataUrl, readLocalFile } from './resources.ts';
import type { FieldType, Schema } from './schema.ts';
import type { IgnObject } from './ignition-schema.ts';

export interface TranslateContext {
  schema: Schema;
  filesDir: string | undefined;
  report: Report;
  origins: Origins;
}

/** Butane-only fields, handled by the hooks below or by later steps (mount units, trees, variants). */
const BUTANE_ONLY: Readonly<Record<string, readonly string[]>> = {
  Config: ['version', 'variant', 'boot_device', 'grub'],
  Resource: ['inline', 'local'],
  Filesystem: ['with_mount_unit'],
  Storage: ['trees'],
  Unit: ['contents_local'],
  Dropin: ['contents_local'],
  PasswdUser: ['ssh_authorized_keys_local'],
};

export async function translateConfig(config: ButaneObject, ignitionVersion: string, ctx: TranslateContext): Promise<IgnObject> {
  const out = (await translateValue(config, { kind: 'struct', name: 'Config' }, [], ctx)) as IgnObject;
  const ignition = (out['ignition'] ?? {}) as IgnObject;
  ignition['version'] = ignitionVersion;
  out['ignition'] = ignition;
  return out;
}

export async function translateValue(value: unknown, type: FieldType, path: Path, ctx: TranslateContext): Promise<unknown> {
  if (value === undefined) return undefined;
  if (type.kind === 'scalar') return value;
  if (type.kind === 'list') {
    const items = value as unknown[];
    const out: unknown[] = [];
    for (const [i, item] of items.entries()) out.push(await translateValue(item, type.of, [...path, i], ctx));
    return out;
  }
  const from = value as ButaneObject;
  const to: IgnObject = {};
  ctx.origins.set(to, path);
  const skip = BUTANE_ONLY[type.name] ?? [];
  for (const field of ctx.schema.get(type.name) ?? []) {
    if (skip.includes(field.name) || from[field.name] === undefined) continue;
    to[camel(field.name)] = await translateValue(from[field.name], field.type, [...path, field.name], ctx);
  }
  const hook = HOOKS[type.name];
  if (hook) await hook(from, to, path, ctx);
  return to;
}

type Hook = (from: ButaneObject, to: IgnObject, path: Path, ctx: TranslateContext) => Promise<void>;

const HOOKS: Readonly<Record<string, Hook>> = {
  Resource: translateResource,
  PasswdUser: translateUser,
  Unit: translateUnitLocal,
  Dropin: translateUnitLocal,
};

async function translateResource(from: ButaneObject, to: IgnObject, path: Path, ctx: TranslateContext): Promise<void> {
  let contents: Uint8Array | undefined;
  let field: 'local' | 'inline' | undefined;
  if (typeof from['local'] === 'string') {
    const read = await readLocalFile(from['local'], ctx.filesDir);
    if ('error' in read) {
      ctx.report.error([...path, 'local'], read.error);
      return;
    }
    contents = read.data;
    field = 'local';
  }
  if (typeof from['inline'] === 'string') {
    contents = Buffer.from(from['inline'], 'utf8');
    field = 'inline';
  }
  if (contents === undefined || field === undefined) return;
  const url = makeDataUrl(contents, to['compression'] as string | undefined);
  to['source'] = url.source;
  ctx.origins.rename(to, 'source', [field]);
  if (url.compression !== undefined) {
    to['compression'] = url.compression;
    ctx.origins.rename(to, 'compression', [field]);
  }
}

async function translateUser(from: ButaneObject, to: IgnObject, path: Path, ctx: TranslateContext): Promise<void> {
  const files = from['ssh_authorized_keys_local'];
  if (!Array.isArray(files) || files.length === 0) return;
  const keys = (to['sshAuthorizedKeys'] as string[] | undefined) ?? [];
  const at = [...path, 'ssh_authorized_keys_local'];
  if (!ctx.filesDir) {
    ctx.report.error(at, 'local file paths are relative to a files directory that must be specified with -d/--files-dir');
    return;
  }
  for (const [i, file] of (files as string[]).entries()) {
    const read = await readLocalFile(file, ctx.filesDir);
    if ('error' in read) {
      ctx.report.error([...at, i], read.error);
      continue;
    }
    for (const line of read.data.toString('utf8').split(/\r?\n/)) if (line !== '') keys.push(line);
  }
  to['sshAuthorizedKeys'] = keys;
}

async function translateUnitLocal(from: ButaneObject, to: IgnObject, path: Path, ctx: TranslateContext): Promise<void> {
  const local = from['contents_local'];
  if (typeof local !== 'string' || local === '') return;
  const read = await readLocalFile(local, ctx.filesDir);
  if ('error' in read) {
    ctx.report.error([...path, 'contents_local'], read.error);
    return;
  }
  to['contents'] = read.data.toString('utf8');
  ctx.origins.rename(to, 'contents', ['contents_local']);
}
