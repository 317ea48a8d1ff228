/**
 * Reading a systemd unit the way Ignition's validation does (go-systemd's lexer): only to find
 * its sections, and the errors that make Ignition refuse it.
 */

/** The section names of a unit, or the reason it cannot be read. */
export function unitSections(contents: string): { sections: string[] } | { error: string } {
  const sections: string[] = [];
  let i = 0;
  const n = contents.length;
  const toEol = (): string => {
    const end = contents.indexOf('\n', i);
    const line = end === -1 ? contents.slice(i) : contents.slice(i, end);
    i = end === -1 ? n : end + 1;
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  };
  const skipCommentLines = (): void => {
    for (;;) {
      const line = toEol().replace(/ +$/, '');
      if (!line.endsWith('\\') || i >= n) return;
    }
  };
  let inSection = false;
  while (i < n) {
    const c = contents[i++] ?? '';
    if (c === '[') {
      const end = contents.indexOf(']', i);
      if (end === -1) return { error: 'unable to find end of section' };
      const name = contents.slice(i, end);
      i = end + 1;
      const garbage = toEol().trim();
      if (garbage !== '') return { error: `found garbage after section name ${name}: ${JSON.stringify(garbage)}` };
      sections.push(name);
      inSection = true;
    } else if (c === '#' || c === ';') {
      skipCommentLines();
    } else if (!inSection || /\s/.test(c)) {
      continue; // before the first section, anything else is skipped
    } else {
      // an option: NAME=VALUE, the value continued over lines ending in a backslash
      const eq = contents.indexOf('=', i - 1);
      const nl = contents.slice(i - 1).search(/[\r\n]/);
      const newline = nl === -1 ? -1 : i - 1 + nl;
      if (eq === -1) return { error: newline === -1 ? 'EOF' : 'unexpected newline encountered while parsing option name' };
      if (newline !== -1 && newline < eq) return { error: 'unexpected newline encountered while parsing option name' };
      i = eq + 1;
      for (;;) {
        const line = toEol();
        if (line.trim() === '' || !line.replace(/\s+$/, '').endsWith('\\') || i >= n) break;
      }
    }
  }
  return { sections };
}
