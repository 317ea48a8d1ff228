/**
 * The Butane config's shape, per spec version: each type's fields in Butane's order with their
 * YAML names and types. A field exists from a base spec version (`@b5` = base v0.5, used by
 * fcos 1.5 and flatcar 1.1) or a Fedora CoreOS version (`@f5` = fcos 1.5). Fields unknown to a
 * version are unused keys (a warning, an error with --strict), as in Butane.
 *
 * Notation: `name:type`, `*T` a field that may be unset (Go pointer), `[]T` a list, a capitalised
 * type another struct below.
 */
const BUTANE_TYPES: Record<string, string> = {
  Config: 'version:string variant:string ignition:Ignition kernel_arguments:KernelArguments@b4 passwd:Passwd storage:Storage systemd:Systemd',
  FcosExtras: 'boot_device:BootDevice@f3 grub:Grub@f5',
  BootDevice: 'layout:*string luks:BootDeviceLuks mirror:BootDeviceMirror',
  BootDeviceLuks: 'cex:Cex@f6 discard:*bool@f5 device:*string@f6 tang:[]Tang threshold:*int tpm2:*bool',
  BootDeviceMirror: 'devices:[]string',
  Grub: 'users:[]GrubUser',
  GrubUser: 'name:string password_hash:*string',
  Cex: 'enabled:*bool',
  Clevis: 'custom:ClevisCustom tang:[]Tang threshold:*int tpm2:*bool',
  ClevisCustom: 'config:*string needs_network:*bool pin:*string',
  Directory: 'group:NodeGroup overwrite:*bool path:string user:NodeUser mode:*int',
  Disk: 'device:string partitions:[]Partition wipe_table:*bool',
  Dropin: 'contents:*string contents_local:*string@b5 name:string',
  File: 'group:NodeGroup overwrite:*bool path:string user:NodeUser append:[]Resource contents:Resource mode:*int',
  Filesystem:
    'device:string format:*string label:*string mount_options:[]string@b2 options:[]string path:*string uuid:*string wipe_filesystem:*bool with_mount_unit:*bool@b2',
  HTTPHeader: 'name:string value:*string',
  Ignition: 'config:IgnitionConfig proxy:Proxy@b2 security:Security timeouts:Timeouts',
  IgnitionConfig: 'merge:[]Resource replace:Resource',
  KernelArguments: 'should_exist:[]string should_not_exist:[]string',
  Link: 'group:NodeGroup overwrite:*bool path:string user:NodeUser hard:*bool target:*string',
  Luks:
    'cex:Cex@b6 clevis:Clevis device:*string discard:*bool@b5 key_file:Resource label:*string name:string open_options:[]string@b5 options:[]string uuid:*string wipe_volume:*bool',
  NodeGroup: 'id:*int name:*string',
  NodeUser: 'id:*int name:*string',
  Partition:
    'guid:*string label:*string number:int resize:*bool@b3 should_exist:*bool size_mib:*int start_mib:*int type_guid:*string wipe_partition_entry:*bool',
  Passwd: 'groups:[]PasswdGroup users:[]PasswdUser',
  PasswdGroup: 'gid:*int name:string password_hash:*string should_exist:*bool@b3 system:*bool',
  PasswdUser:
    'gecos:*string groups:[]string home_dir:*string name:string no_create_home:*bool no_log_init:*bool no_user_group:*bool password_hash:*string primary_group:*string should_exist:*bool@b3 ssh_authorized_keys:[]string ssh_authorized_keys_local:[]string@b5 shell:*string system:*bool uid:*int',
  Proxy: 'http_proxy:*string https_proxy:*string no_proxy:[]string',
  Raid: 'devices:[]string level:*string name:string options:[]string spares:*int',
  Resource: 'compression:*string http_headers:[]HTTPHeader@b2 source:*string inline:*string local:*string@b2 verification:Verification',
  Security: 'tls:TLS',
  Storage:
    'directories:[]Directory disks:[]Disk files:[]File filesystems:[]Filesystem links:[]Link luks:[]Luks@b3 raid:[]Raid trees:[]Tree@b2',
  Systemd: 'units:[]Unit',
  Tang: 'thumbprint:*string url:string advertisement:*string@b5',
  TLS: 'certificate_authorities:[]Resource',
  Timeouts: 'http_response_headers:*int http_total:*int',
  Tree: 'local:string path:*string',
  Unit: 'contents:*string contents_local:*string@b5 dropins:[]Dropin enabled:*bool mask:*bool name:string',
  Verification: 'hash:*string',
};

export type FieldType = { kind: 'scalar'; scalar: 'string' | 'int' | 'bool' } | { kind: 'struct'; name: string } | { kind: 'list'; of: FieldType };

export interface Field {
  name: string;
  type: FieldType;
  /** Unset is distinct from the zero value (a Go pointer). */
  optional: boolean;
}

/** The fields a spec version knows, by struct type. */
export type Schema = ReadonlyMap<string, readonly Field[]>;

export interface SchemaLevel {
  /** Base spec minor version: v0_5 is 5. */
  base: number;
  /** Fedora CoreOS minor version (fcos 1.5 is 5), or undefined for another variant. */
  fcos?: number;
}

function parseType(text: string): FieldType {
  if (text.startsWith('[]')) return { kind: 'list', of: parseType(text.slice(2)) };
  if (text === 'string' || text === 'int' || text === 'bool') return { kind: 'scalar', scalar: text };
  return { kind: 'struct', name: text };
}

export function schemaFor(level: SchemaLevel): Schema {
  const schema = new Map<string, Field[]>();
  for (const [name, spec] of Object.entries(BUTANE_TYPES)) {
    const fields: Field[] = [];
    for (const token of spec.split(' ')) {
      const [decl = '', since] = token.split('@');
      const [fieldName = '', typeText = ''] = decl.split(':');
      if (since) {
        const need = Number(since.slice(1));
        const have = since.startsWith('f') ? level.fcos : level.base;
        if (have === undefined || have < need) continue;
      }
      const optional = typeText.startsWith('*');
      fields.push({ name: fieldName, type: parseType(optional ? typeText.slice(1) : typeText), optional });
    }
    schema.set(name, fields);
  }
  if (level.fcos !== undefined) {
    // Fedora CoreOS adds its sugar to the base config's top level.
    schema.set('Config', [...(schema.get('Config') ?? []), ...(schema.get('FcosExtras') ?? [])]);
  }
  return schema;
}
