/**
 * Flatcar's `FILE.DIGESTS`: sections headed `# MD5 HASH`, `# SHA1 HASH`, `# SHA512 HASH`, each
 * followed by `<hex>  <basename>` lines. Only the SHA-512 section is trusted for integrity.
 */

/** Digests by algorithm (`SHA512`, ...) and file basename, as lowercase hex. */
export type DigestTable = Map<string, Map<string, string>>;

export function parseDigests(text: string): DigestTable {
  const table: DigestTable = new Map();
  let section: Map<string, string> | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    const heading = /^#\s*([A-Za-z0-9]+)\s+HASH\s*$/i.exec(line);
    if (heading?.[1]) {
      const algorithm = heading[1].toUpperCase();
      section = table.get(algorithm) ?? new Map<string, string>();
      table.set(algorithm, section);
      continue;
    }
    if (line.startsWith('#')) {
      section = undefined;
      continue;
    }
    // `sha512sum` output: hex, two spaces (or space-star for binary mode), the name.
    const entry = /^([0-9a-fA-F]+)\s+\*?(\S.*)$/.exec(line);
    if (section && entry?.[1] && entry[2]) section.set(entry[2].trim(), entry[1].toLowerCase());
  }
  return table;
}

/** The published SHA-512 of `basename`, or undefined when the file lists none. */
export function publishedSha512(text: string, basename: string): string | undefined {
  const hex = parseDigests(text).get('SHA512')?.get(basename);
  return hex !== undefined && /^[0-9a-f]{128}$/.test(hex) ? hex : undefined;
}
