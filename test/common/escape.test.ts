/**
 * The GRUB escapers, checked against a reader of GRUB's quoting rules (GRUB manual, "Shell-like
 * scripting": single quotes keep everything literal, double quotes keep all but `$` and `\`, a
 * backslash outside quotes keeps the next character, unquoted whitespace and `;|&<>#{}` end a
 * word). A value is safe when it reads back as exactly one word equal to itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grubDoubleQuote, grubQuote } from '../../src/common/escape.ts';

type Word = { text: string; expands: string[] };

/** Reads one line as GRUB words; throws where GRUB would report a syntax error. */
function readGrubWords(line: string): Word[] {
  const words: Word[] = [];
  let word: Word | undefined;
  let i = 0;
  const current = () => (word ??= { text: '', expands: [] });
  const variable = (at: number): number => {
    const m = /^\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|\{(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\})/.exec(line.slice(at));
    if (!m) throw new Error(`bad variable at ${at}: ${line}`);
    current().expands.push(m[0]);
    return m[0].length;
  };
  while (i < line.length) {
    const ch = line[i] ?? '';
    if (ch === '\n' || ch === '\r') throw new Error('line break inside a line');
    if (ch === ' ' || ch === '\t') {
      if (word) words.push(word);
      word = undefined;
      i++;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      current().text += line.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('unterminated double quote');
        const c = line[i] ?? '';
        if (c === '"') break;
        if (c === '\\' && '$"\\'.includes(line[i + 1] ?? '')) {
          current().text += line[i + 1];
          i += 2;
        } else if (c === '$') i += variable(i);
        else {
          current().text += c;
          i++;
        }
      }
      current();
      i++;
    } else if (ch === '\\') {
      current().text += line[i + 1] ?? '';
      i += 2;
    } else if (ch === '$') i += variable(i);
    else if (';|&<>#{}'.includes(ch)) throw new Error(`unquoted ${ch} in ${line}`);
    else {
      current().text += ch;
      i++;
    }
  }
  if (word) words.push(word);
  return words;
}

const HOSTILE = [
  "it's",
  "'; reboot; echo '",
  '"; reboot; echo "',
  '$(reboot)',
  '${prefix}/evil',
  '$root',
  'a\\',
  "\\'",
  'x && y || z; w | v > u < t # comment { } ',
  'line\nbreak',
  'cr\rlf\r\n',
  'tab\tnul\u0000del\u007f',
  '\u2028sep\u2029\u0085',
  '',
  '     ',
  'ünïcødé ☃',
];

describe('grubQuote', () => {
  for (const value of HOSTILE) {
    it(`keeps ${JSON.stringify(value)} one literal word`, () => {
      const quoted = grubQuote(value);
      assert.doesNotMatch(quoted, /[\r\n\u2028\u2029\u0085]/);
      const words = readGrubWords(`echo ${quoted}`);
      assert.equal(words.length, 2, quoted);
      assert.deepEqual(words[1], { text: value.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, '_'), expands: [] });
    });
  }
});

describe('grubDoubleQuote', () => {
  for (const value of HOSTILE) {
    it(`keeps ${JSON.stringify(value)} one word, expanding only GRUB variables`, () => {
      const quoted = grubDoubleQuote(value);
      assert.doesNotMatch(quoted, /[\r\n\u2028\u2029\u0085]/);
      const words = readGrubWords(`linux k ${quoted}`);
      assert.equal(words.length, 3, quoted);
      const expected = value.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, '_');
      // Reading back with each expansion put back as written gives the value.
      assert.equal(words[2]?.text, expected.replace(/\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|\{(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\})/g, ''));
    });
  }

  it('lets GRUB variables expand and keeps iPXE expansions literal', () => {
    const words = readGrubWords(`linux k ${grubDoubleQuote('mac=${net_default_mac} ipxe=${mac:hexhyp} $1 cost=$5.00$')}`);
    assert.deepEqual(words[2]?.expands, ['${net_default_mac}', '$1', '$5']);
    assert.equal(words[2]?.text, 'mac= ipxe=${mac:hexhyp}  cost=.00$');
  });
});
