/**
 * Device identity: what a booting machine says about itself in the query string of a script
 * request (`/ipxe?mac=...&uuid=...`), parsed, validated and normalised.
 *
 * Every value here came from the network. Strictly formatted fields (MAC, UUID, arch, platform,
 * hostname, IP) are checked against their grammar; free-form SMBIOS strings (serial,
 * manufacturer, product, asset) are accepted when they are printable ASCII and are only ever
 * written into scripts through the encoders in `escape.ts`.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** iPXE `${buildarch}` values: the architecture iPXE was built for, not necessarily the CPU's. */
export const BUILD_ARCHES = ['i386', 'x86_64', 'arm32', 'arm64', 'riscv32', 'riscv64', 'loong64'] as const;
export type BuildArch = (typeof BUILD_ARCHES)[number];

/** iPXE `${platform}` values bootdepot knows how to boot. */
export const PLATFORMS = ['pcbios', 'efi'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Names operators and other tools use for the same architectures. */
const ARCH_ALIASES: Record<string, BuildArch> = {
  amd64: 'x86_64',
  x64: 'x86_64',
  'x86-64': 'x86_64',
  aarch64: 'arm64',
  i686: 'i386',
  i586: 'i386',
  x86: 'i386',
  arm: 'arm32',
};

export interface DeviceIdentity {
  /** Booting NIC, lowercase colon form, e.g. `52:54:00:12:34:56`. */
  mac?: string;
  /** SMBIOS system UUID, lowercase 8-4-4-4-12, e.g. `4c4c4544-0042-3510-8052-b7c04f4b4d31`. */
  uuid?: string;
  /** SMBIOS serial number, printable ASCII, e.g. `CZJ1234567`. */
  serial?: string;
  /** Hostname from DHCP, lowercase RFC 1123, e.g. `node-01`. */
  hostname?: string;
  /** DNS domain from DHCP, e.g. `rack1.example.net`. */
  domain?: string;
  /** iPXE build architecture, e.g. `x86_64`. */
  arch?: BuildArch;
  /** Firmware platform, `pcbios` or `efi`. */
  platform?: Platform;
  /** SMBIOS manufacturer, e.g. `Supermicro`. */
  manufacturer?: string;
  /** SMBIOS product name, e.g. `X11SCH-F`. */
  product?: string;
  /** SMBIOS asset tag, e.g. `A-00042`. */
  asset?: string;
  /** IP address iPXE got from DHCP, e.g. `10.0.2.15`. */
  ip?: string;
}

export type IdentityField = keyof DeviceIdentity;

export const IDENTITY_FIELDS: readonly IdentityField[] = [
  'mac',
  'uuid',
  'serial',
  'hostname',
  'domain',
  'arch',
  'platform',
  'manufacturer',
  'product',
  'asset',
  'ip',
];

export interface ParsedDevice {
  identity: DeviceIdentity;
  /**
   * Matching labels, as matchbox takes them: every query parameter with its value as given
   * (the first, when one is repeated), except `mac`, which is normalised (and dropped when it is
   * not a MAC). Values are printable ASCII; anything else is dropped.
   */
  labels: Record<string, string>;
  /** Values that were dropped, one human-readable line each. */
  warnings: string[];
}

/** A required identity value is missing or invalid: the request cannot be answered. */
export class IdentityError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'IdentityError';
    this.field = field;
  }
}

type Normaliser = (raw: string) => string | undefined;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
const MAX_FREE_TEXT = 128;

/**
 * A MAC address as Go's `net.ParseMAC` reads it (which is what matchbox uses for `mac` labels and
 * selectors): 6, 8 or 20 octets as `aa:bb:..`, `aa-bb-..` (one separator throughout) or dotted
 * `aabb.ccdd.eeff`, in any case; plus bare hex of 6 octets (`525400123456`). Lowercase colon form.
 */
export function normaliseMac(raw: string): string | undefined {
  const value = raw.trim().toLowerCase();
  let hex: string | undefined;
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2})*$/.test(value)) hex = value.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{4}(?:\.[0-9a-f]{4})+$/.test(value)) hex = value.replace(/\./g, '');
  else if (/^[0-9a-f]{12}$/.test(value)) hex = value;
  if (hex === undefined || ![12, 16, 40].includes(hex.length)) return undefined;
  return hex.match(/../g)?.join(':');
}

export function normaliseUuid(raw: string): string | undefined {
  const value = raw.trim().toLowerCase();
  const m =
    /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/.exec(value) ??
    /^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/.exec(value);
  return m ? m.slice(1).join('-') : undefined;
}

export function normaliseArch(raw: string): BuildArch | undefined {
  const value = raw.trim().toLowerCase();
  if ((BUILD_ARCHES as readonly string[]).includes(value)) return value as BuildArch;
  return ARCH_ALIASES[value];
}

/** GRUB's `${grub_platform}` says `pc` for BIOS (and `efi` as iPXE does). */
const PLATFORM_ALIASES: Record<string, Platform> = { pc: 'pcbios' };

export function normalisePlatform(raw: string): Platform | undefined {
  const value = raw.trim().toLowerCase();
  return (PLATFORMS as readonly string[]).includes(value) ? (value as Platform) : PLATFORM_ALIASES[value];
}

function normaliseHostname(raw: string): string | undefined {
  const value = raw.trim().toLowerCase().replace(/\.$/, '');
  if (value.length === 0 || value.length > 253) return undefined;
  const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
  return value.split('.').every((part) => label.test(part)) ? value : undefined;
}

function normaliseIp(raw: string): string | undefined {
  const value = raw.trim();
  return isIPv4(value) || isIPv6(value) ? value.toLowerCase() : undefined;
}

function normaliseFreeText(raw: string): string | undefined {
  const value = raw.trim();
  if (value.length === 0 || value.length > MAX_FREE_TEXT) return undefined;
  return PRINTABLE_ASCII.test(value) ? value : undefined;
}

const NORMALISERS: Record<IdentityField, Normaliser> = {
  mac: normaliseMac,
  uuid: normaliseUuid,
  serial: normaliseFreeText,
  hostname: normaliseHostname,
  domain: normaliseHostname,
  arch: normaliseArch,
  platform: normalisePlatform,
  manufacturer: normaliseFreeText,
  product: normaliseFreeText,
  asset: normaliseFreeText,
  ip: normaliseIp,
};

const EXPECTED: Record<IdentityField, string> = {
  mac: 'a MAC address such as 52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456 or 525400123456',
  uuid: 'a UUID such as 4c4c4544-0042-3510-8052-b7c04f4b4d31',
  serial: `printable ASCII, at most ${MAX_FREE_TEXT} characters`,
  hostname: 'an RFC 1123 host name',
  domain: 'an RFC 1123 domain name',
  arch: `one of ${BUILD_ARCHES.join(', ')} (or amd64, aarch64)`,
  platform: `one of ${PLATFORMS.join(', ')} (or GRUB's pc)`,
  manufacturer: `printable ASCII, at most ${MAX_FREE_TEXT} characters`,
  product: `printable ASCII, at most ${MAX_FREE_TEXT} characters`,
  asset: `printable ASCII, at most ${MAX_FREE_TEXT} characters`,
  ip: 'an IPv4 or IPv6 address',
};

/** A label's value as given, when it is one bootdepot keeps: printable ASCII, not too long. */
function labelValue(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || value.length > MAX_LABEL_VALUE || !PRINTABLE_ASCII.test(value)) return undefined;
  return value;
}

/** Label names other than identity fields: short, and plain enough to appear in a selector. */
const LABEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_LABEL_VALUE = 256;
const MAX_EXTRA_LABELS = 32;
/** Dropped-label warnings kept per request; the rest are counted in one summary line. */
const MAX_WARNINGS = 5;

/**
 * SMBIOS strings that the bootstrap sends hex-encoded as `<field>_hex` (iPXE `:hexraw`), because
 * iPXE's `:uristring` leaves `&` and `+` unescaped (seen in Debian's 2019 build): a serial
 * `AB&C` would arrive cut at the `&`, and `+` would read as a space.
 */
export const HEX_FIELDS: readonly IdentityField[] = ['serial', 'manufacturer', 'product', 'asset'];
const HEX_PARAMS = new Set(HEX_FIELDS.map((f) => `${f}_hex`));

/** Query parameters that steer bootdepot itself and are not device labels. */
const RESERVED_PARAMS = new Set(['boot', ...HEX_PARAMS]);

/** Shows a hostile value in a warning without letting it break the log line. */
export function describeValue(value: string): string {
  const shown = value.length > 64 ? `${value.slice(0, 64)}...` : value;
  return JSON.stringify(shown);
}

export interface ParseOptions {
  /** Fields that must be present and valid; a problem with one of them throws {@link IdentityError}. */
  required?: readonly IdentityField[];
}

export type QueryInput = Record<string, string | readonly string[] | undefined>;

function single(field: string, value: string | readonly string[] | undefined): { value?: string; problem?: string } {
  if (value === undefined) return {};
  if (typeof value === 'string') return { value };
  if (value.length === 1) return { value: value[0] };
  return { problem: `${field} was given ${value.length} times` };
}

/** Decodes `<field>_hex`; undefined (with a warning when malformed) falls back to `<field>`. */
function decodeHexParam(field: string, value: string | readonly string[] | undefined, warnings: string[]): string | undefined {
  const { value: hex, problem } = single(`${field}_hex`, value);
  if (problem !== undefined) {
    warnings.push(`${problem}; ignored`);
    return undefined;
  }
  if (hex === undefined || hex === '') return undefined;
  if (!/^(?:[0-9a-fA-F]{2}){1,128}$/.test(hex)) {
    warnings.push(`invalid ${field}_hex ${describeValue(hex)}: expected hex bytes; ignored`);
    return undefined;
  }
  // latin1 keeps every byte one character, so non-ASCII is seen (and refused) as such.
  return Buffer.from(hex, 'hex').toString('latin1');
}

/**
 * Parses a device's query parameters. Empty values count as absent, because iPXE expands an
 * unset setting (`${serial}` on a machine without SMBIOS) to an empty string.
 */
export function parseDevice(query: QueryInput, options: ParseOptions = {}): ParsedDevice {
  const required = new Set(options.required ?? []);
  const identity: DeviceIdentity = {};
  const labels: Record<string, string> = {};
  const warnings: string[] = [];

  for (const field of IDENTITY_FIELDS) {
    const hex = HEX_FIELDS.includes(field) ? decodeHexParam(field, query[`${field}_hex`], warnings) : undefined;
    const given = query[field];
    const { value: raw, problem } = hex !== undefined ? { value: hex, problem: undefined } : single(field, given);
    if (problem !== undefined) {
      if (required.has(field)) throw new IdentityError(field, `${problem}; expected one ${EXPECTED[field]}`);
      // matchbox matches on the first value; a MAC given twice could be either machine.
      const first = field === 'mac' ? undefined : labelValue((given as readonly string[])[0]);
      if (first !== undefined) labels[field] = first;
      warnings.push(first !== undefined ? `${problem}; the first is matched, none kept as the device's ${field}` : `${problem}; ignored`);
      continue;
    }
    if (raw === undefined || raw.trim() === '') {
      if (required.has(field)) throw new IdentityError(field, `${field} is required: ${EXPECTED[field]}`);
      continue;
    }
    const normalised = NORMALISERS[field](raw);
    // Labels as matchbox takes them: the MAC normalised, everything else as given.
    const label = field === 'mac' ? normalised : labelValue(raw);
    if (label !== undefined) labels[field] = label;
    if (normalised === undefined) {
      const message = `invalid ${field} ${describeValue(raw)}: expected ${EXPECTED[field]}`;
      if (required.has(field)) throw new IdentityError(field, message);
      warnings.push(label !== undefined ? `${message}; matched as given, not kept as the device's ${field}` : `${message}; ignored`);
      continue;
    }
    (identity as Record<string, string>)[field] = normalised;
  }

  let extra = 0;
  let dropped = 0;
  const extras = Object.entries(query);
  // `NAME_hex=HEX` carries label NAME (bootdepot's own URLs write values that way, see
  // labelQuery); it wins over a plain NAME, as the hex form of identity fields does.
  const hexLabels = new Set(extras.map(([name]) => name).filter((name) => name.endsWith('_hex') && !HEX_PARAMS.has(name)).map((name) => name.slice(0, -4)));
  for (const [param, rawValue] of extras) {
    if ((IDENTITY_FIELDS as readonly string[]).includes(param) || RESERVED_PARAMS.has(param)) continue;
    if (!LABEL_NAME.test(param)) {
      if (++dropped <= MAX_WARNINGS) warnings.push(`invalid label name ${describeValue(param)}; ignored`);
      continue;
    }
    const isHex = param.endsWith('_hex');
    const name = isHex ? param.slice(0, -4) : param;
    if (!isHex && hexLabels.has(name)) continue;
    if (isHex && ((IDENTITY_FIELDS as readonly string[]).includes(name) || !LABEL_NAME.test(name))) {
      if (++dropped <= MAX_WARNINGS) warnings.push(`invalid label name ${describeValue(param)}; ignored`);
      continue;
    }
    const { value: given, problem } = single(param, rawValue);
    // matchbox matches on a repeated parameter's first value.
    if (problem !== undefined && ++dropped <= MAX_WARNINGS) warnings.push(`${problem}; the first is matched`);
    let value = problem !== undefined ? (rawValue as readonly string[])[0] : given;
    if (isHex && value !== undefined && value !== '') {
      if (!/^(?:[0-9a-fA-F]{2})+$/.test(value) || value.length > MAX_LABEL_VALUE * 2) {
        if (++dropped <= MAX_WARNINGS) warnings.push(`invalid ${param} ${describeValue(value)}: expected hex bytes; ignored`);
        continue;
      }
      value = Buffer.from(value, 'hex').toString('latin1');
    }
    if (value === undefined || value === '') continue;
    // `MAC` is matchbox's `mac` too: any case of the name is normalised as a MAC.
    if (name.toLowerCase() === 'mac') {
      const mac = normaliseMac(value);
      if (mac === undefined) {
        if (++dropped <= MAX_WARNINGS) warnings.push(`invalid ${name} ${describeValue(value)}: expected ${EXPECTED.mac}; ignored`);
        continue;
      }
      value = mac;
    }
    if (value.length > MAX_LABEL_VALUE || !PRINTABLE_ASCII.test(value)) {
      if (++dropped <= MAX_WARNINGS) warnings.push(`invalid value for label ${name} ${describeValue(value)}: expected printable ASCII; ignored`);
      continue;
    }
    if (++extra > MAX_EXTRA_LABELS) {
      if (++dropped <= MAX_WARNINGS) warnings.push(`more than ${MAX_EXTRA_LABELS} labels; ${name} ignored`);
      continue;
    }
    labels[name] = value;
  }
  // One request with thousands of bad labels must not write thousands of log lines.
  if (dropped > MAX_WARNINGS) warnings.push(`${dropped - MAX_WARNINGS} more label(s) dropped`);
  return { identity, labels, warnings };
}

/**
 * A request's query as matchbox's `request.query` has it: every parameter (its first value), as
 * given, even empty, with `mac` normalised (left out when it is not a MAC). Names and values
 * bootdepot would not keep as labels (see {@link parseDevice}) are left out too.
 */
export function queryLabels(query: QueryInput): Record<string, string> {
  const out: Record<string, string> = {};
  let count = 0;
  for (const [name, raw] of Object.entries(query)) {
    const given = typeof raw === 'string' ? raw : raw?.[0];
    if (given === undefined || !LABEL_NAME.test(name) || given.length > MAX_LABEL_VALUE || (given !== '' && !PRINTABLE_ASCII.test(given))) continue;
    if (++count > MAX_EXTRA_LABELS + IDENTITY_FIELDS.length + HEX_FIELDS.length) break;
    if (name.toLowerCase() === 'mac') {
      const mac = normaliseMac(given);
      if (mac !== undefined) out[name] = mac;
      continue;
    }
    out[name] = given;
  }
  return out;
}
