/**
 * Lists of client addresses and CIDR ranges (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`), matched with
 * node's BlockList. An IPv4 client reached over an IPv6 socket (`::ffff:10.0.0.5`) matches its
 * IPv4 entries.
 */
import { BlockList, isIP } from 'node:net';

function parseEntry(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | string {
  const [address = '', prefixText, ...rest] = entry.trim().split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return `${JSON.stringify(entry)} is not an address or CIDR range (e.g. 10.0.0.0/8, fd00::/8)`;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return `${JSON.stringify(entry)}: the prefix length must be 0-${max}`;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Why an allow-list entry is not usable, or undefined when it is. */
export function addressRangeProblem(entry: string): string | undefined {
  const parsed = parseEntry(entry);
  return typeof parsed === 'string' ? parsed : undefined;
}

export function unmapIPv4(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

/** A matcher for the entries (already checked by the config loader; a bad one throws). */
export function addressMatcher(entries: readonly string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const parsed = parseEntry(entry);
    if (typeof parsed === 'string') throw new Error(parsed);
    list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return (ip: string) => {
    const address = unmapIPv4(ip);
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}
