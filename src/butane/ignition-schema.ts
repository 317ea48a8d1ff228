/**
 * The Ignition config's shape (spec 3.x), each type's fields in the order Ignition declares them,
 * which is the order Butane writes them in. `?` marks a field left out when empty (Go's
 * omitempty), `*T` a field written whenever it is set, even to "" or false; `@4` a field that
 * exists from spec 3.4 on.
 */
import { text } from './values.ts';
const IGNITION_TYPES: Record<string, string> = {
  Config: 'ignition:Ignition kernelArguments?:KernelArguments@3 passwd?:Passwd storage?:Storage systemd?:Systemd',
  Ignition: 'config?:IgnitionConfig proxy?:Proxy@1 security?:Security timeouts?:Timeouts version:string',
  IgnitionConfig: 'merge?:[]Resource replace?:Resource',
  Proxy: 'httpProxy?:*string httpsProxy?:*string noProxy?:[]string',
  Security: 'tls?:TLS',
  TLS: 'certificateAuthorities?:[]Resource',
  Timeouts: 'httpResponseHeaders?:*int httpTotal?:*int',
  KernelArguments: 'shouldExist?:[]string shouldNotExist?:[]string',
  Passwd: 'groups?:[]PasswdGroup users?:[]PasswdUser',
  PasswdGroup: 'gid?:*int name:string passwordHash?:*string shouldExist?:*bool@2 system?:*bool',
  PasswdUser:
    'gecos?:*string groups?:[]string homeDir?:*string name:string noCreateHome?:*bool noLogInit?:*bool noUserGroup?:*bool passwordHash?:*string primaryGroup?:*string sshAuthorizedKeys?:[]string shell?:*string shouldExist?:*bool@2 system?:*bool uid?:*int',
  Storage: 'directories?:[]Directory disks?:[]Disk files?:[]File filesystems?:[]Filesystem links?:[]Link luks?:[]Luks@2 raid?:[]Raid',
  Directory: 'group?:NodeGroup overwrite?:*bool path:string user?:NodeUser mode?:*int',
  File: 'group?:NodeGroup overwrite?:*bool path:string user?:NodeUser append?:[]Resource contents?:Resource mode?:*int',
  Link: 'group?:NodeGroup overwrite?:*bool path:string user?:NodeUser hard?:*bool target?:*string!2',
  NodeGroup: 'id?:*int name?:*string',
  NodeUser: 'id?:*int name?:*string',
  Disk: 'device:string partitions?:[]Partition wipeTable?:*bool',
  Partition:
    'guid?:*string label?:*string number?:int resize?:*bool@2 shouldExist?:*bool sizeMiB?:*int startMiB?:*int typeGuid?:*string wipePartitionEntry?:*bool',
  Filesystem: 'device:string format?:*string label?:*string mountOptions?:[]string@1 options?:[]string path?:*string uuid?:*string wipeFilesystem?:*bool',
  Luks:
    'cex?:Cex@5 clevis?:Clevis device?:*string discard?:*bool@4 keyFile?:Resource label?:*string name:string openOptions?:[]string@4 options?:[]string uuid?:*string wipeVolume?:*bool',
  Cex: 'enabled?:*bool',
  Clevis: 'custom?:ClevisCustom tang?:[]Tang threshold?:*int tpm2?:*bool',
  ClevisCustom: 'config?:*string needsNetwork?:*bool pin?:*string',
  Tang: 'advertisement?:*string@4 thumbprint?:*string url?:string',
  Raid: 'devices?:[]string!2 level?:*string!2 name:string options?:[]string spares?:*int',
  Resource: 'compression?:*string httpHeaders?:[]HTTPHeader@1 source?:*string verification?:Verification',
  HTTPHeader: 'name:string value?:*string',
  Verification: 'hash?:*string',
  Systemd: 'units?:[]Unit',
  Unit: 'contents?:*string dropins?:[]Dropin enabled?:*bool mask?:*bool name:string',
  Dropin: 'contents?:*string name:string',
};

export type IgnType = { kind: 'scalar'; scalar: 'string' | 'int' | 'bool' } | { kind: 'struct'; name: string } | { kind: 'list'; of: IgnType };

export interface IgnField {
  name: string;
  type: IgnType;
  /** Go pointer: written when set, whatever the value. */
  pointer: boolean;
  omitEmpty: boolean;
}

export type IgnSchema = ReadonlyMap<string, readonly IgnField[]>;

function parseType(text: string): IgnType {
  if (text.startsWith('[]')) return { kind: 'list', of: parseType(text.slice(2)) };
  if (text === 'string' || text === 'int' || text === 'bool') return { kind: 'scalar', scalar: text };
  return { kind: 'struct', name: text };
}

const cache = new Map<number, IgnSchema>();

/** The schema of Ignition spec 3.`minor`. */
export function ignitionSchema(minor: number): IgnSchema {
  const known = cache.get(minor);
  if (known) return known;
  const schema = new Map<string, IgnField[]>();
  for (const [name, spec] of Object.entries(IGNITION_TYPES)) {
    const fields: IgnField[] = [];
    for (const token of spec.split(' ')) {
      const [declared = '', since] = token.split('@');
      if (since && minor < Number(since)) continue;
      const [decl = '', requiredUntil] = declared.split('!');
      const required = requiredUntil !== undefined && minor <= Number(requiredUntil);
      const [rawName = '', rawType = ''] = decl.split(':');
      const omitEmpty = rawName.endsWith('?') && !required;
      const pointer = rawType.startsWith('*') && !required;
      fields.push({ name: rawName.replace(/\?$/, ''), type: parseType(rawType.replace(/^\*/, '')), pointer, omitEmpty });
    }
    schema.set(name, fields);
  }
  cache.set(minor, schema);
  return schema;
}

export type IgnObject = { [key: string]: unknown };

/** Go's isEmptyValue as Butane's JSON encoder applies it: recursively empty structs count as empty. */
export function isEmpty(value: unknown, field: Pick<IgnField, 'type' | 'pointer'>, schema: IgnSchema): boolean {
  if (value === undefined || value === null) return true;
  if (field.pointer) return false;
  const type = field.type;
  if (type.kind === 'list') return !Array.isArray(value) || value.length === 0;
  if (type.kind === 'scalar') return value === '' || value === 0 || value === false;
  const object = value as IgnObject;
  return (schema.get(type.name) ?? []).every((f) => isEmpty(object[f.name], f, schema));
}

/**
 * Ignition's merge keys: entries of a list with the same key are the same entry. Files,
 * directories and links share one key space (the path), as do the two kernel argument lists.
 */
export function entryKey(typeName: string, item: unknown): string {
  if (typeof item !== 'object' || item === null) return String(item);
  const o = item as IgnObject;
  switch (typeName) {
    case 'File':
    case 'Directory':
    case 'Link':
      return text(o['path']);
    case 'Disk':
    case 'Filesystem':
      return text(o['device']);
    case 'Partition':
      if (typeof o['number'] === 'number' && o['number'] !== 0) return `number:${o['number']}`;
      return typeof o['label'] === 'string' ? `label:${o['label']}` : '';
    case 'Luks':
    case 'Raid':
    case 'Unit':
    case 'Dropin':
    case 'PasswdUser':
    case 'PasswdGroup':
    case 'HTTPHeader':
      return text(o['name']);
    case 'Tang':
      return text(o['url']);
    case 'Resource':
      return text(o['source']);
    default:
      return JSON.stringify(o);
  }
}

/** Lists whose entries may repeat (their order is their meaning). */
export const IGNORE_DUPLICATES: Readonly<Record<string, readonly string[]>> = {
  File: ['append'],
  Filesystem: ['options', 'mountOptions'],
  Luks: ['options'],
  Raid: ['options'],
};

/** Lists of one struct that share a key space. */
export const MERGED_KEYS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  Storage: { directories: 'Node', files: 'Node', links: 'Node' },
  KernelArguments: { shouldExist: 'KernelArgument', shouldNotExist: 'KernelArgument' },
};
