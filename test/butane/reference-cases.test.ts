/**
 * Every reference case: what Butane v0.25.1 printed for an input (test/butane/cases/, copied
 * from the project's reference facts). Same accept/reject; the same Ignition config (gzip data
 * URLs compared by their decoded contents, since gzip bytes differ between compressors) and the
 * same JSON text where no gzip is involved; the same warnings and errors at the same fields.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { serializeIgnition, transpileButane, type ButaneMessage } from '../../src/butane/index.ts';

const CASES = path.join(import.meta.dirname, 'cases');
const SHARED = path.join(import.meta.dirname, '../../../shared/reference/butane/cases');

async function optional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface Expected {
  path: string;
  line: number;
  column: number;
  message: string;
}

/** `error at $.storage.files.0.path, line 5 col 13: path not absolute` */
function parseLines(text: string | undefined, kind: 'error' | 'warning'): Expected[] {
  const out: Expected[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = new RegExp(`^${kind} at \\$\\.?([^,]*), line (\\d+) col (\\d+): (.*)$`).exec(line);
    if (m) out.push({ path: m[1] ?? '', line: Number(m[2]), column: Number(m[3]), message: m[4] ?? '' });
  }
  return out;
}

/** A gzip data URL replaced by its decoded contents, so compressors' bytes do not matter. */
function decodeGzip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeGzip);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = decodeGzip(v);
  const source = out['source'];
  if (out['compression'] === 'gzip' && typeof source === 'string' && source.startsWith('data:;base64,')) {
    out['source'] = `gunzipped:${gunzipSync(Buffer.from(source.slice('data:;base64,'.length), 'base64')).toString('base64')}`;
  }
  return out;
}

function flags(text: string | undefined, caseDir: string): { filesDir?: string; strict?: boolean } {
  const words = (text ?? '').trim().split(/\s+/).filter(Boolean);
  const options: { filesDir?: string; strict?: boolean } = {};
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '--strict') options.strict = true;
    else if (words[i] === '--files-dir' || words[i] === '-d') options.filesDir = path.join(caseDir, words[++i] ?? '');
    else assert.fail(`unknown flag ${words[i]}`);
  }
  return options;
}

/** Messages name files relative to the case directory, as Butane run from inside it does. */
function relative(messages: ButaneMessage[], caseDir: string): ButaneMessage[] {
  return messages.map((m) => ({ ...m, message: m.message.replaceAll(caseDir + path.sep, '') }));
}

function sameMessages(actual: ButaneMessage[], expected: Expected[], what: string): void {
  assert.deepEqual(
    actual.map((m) => ({ path: m.path, message: m.message, line: m.line, column: m.column })),
    expected.map((e) => ({ path: e.path, message: e.message, line: e.line, column: e.column })),
    what,
  );
}

const names = (await readdir(CASES, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();

describe('Butane reference cases', () => {
  it('has every case of the reference facts', async () => {
    assert.ok(names.length >= 75, `only ${names.length} cases in ${CASES}`);
    if (existsSync(SHARED)) {
      const shared = (await readdir(SHARED, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
      assert.deepEqual(names, shared, 'test/butane/cases is out of date with shared/reference/butane/cases');
    }
  });

  for (const name of names) {
    it(name, async () => {
      const dir = path.join(CASES, name);
      const input = await readFile(path.join(dir, 'IN.bu'), 'utf8');
      const options = flags(await optional(path.join(dir, 'FLAGS')), dir);
      const exit = (await readFile(path.join(dir, 'EXIT.txt'), 'utf8')).trim();
      const result = await transpileButane(input, options);
      if (exit === '0') {
        assert.ok(result.ok, `Butane accepted it; errors: ${JSON.stringify(result.ok ? [] : result.errors)}`);
        const expected = JSON.parse(await readFile(path.join(dir, 'OUT.ign'), 'utf8')) as unknown;
        assert.deepEqual(decodeGzip(result.ignition), decodeGzip(expected));
        const compact = (await readFile(path.join(dir, 'OUT.compact.ign'), 'utf8')).trimEnd();
        if (!compact.includes('"compression":"gzip"')) {
          assert.equal(serializeIgnition(result.ignition), compact, 'compact JSON text');
          assert.equal(serializeIgnition(result.ignition, true), (await readFile(path.join(dir, 'OUT.ign'), 'utf8')).trimEnd(), 'pretty JSON text');
        }
        sameMessages(relative(result.warnings, dir), parseLines(await optional(path.join(dir, 'STDERR.txt')), 'warning'), 'warnings');
        return;
      }
      assert.equal(exit, '1');
      assert.equal(result.ok, false, 'Butane refused it');
      if (result.ok) return;
      const errText = await readFile(path.join(dir, 'ERR.txt'), 'utf8');
      const errors = relative(result.errors, dir);
      const located = [...parseLines(errText, 'error'), ...(options.strict ? parseLines(errText, 'warning') : [])];
      if (located.length > 0) {
        for (const want of located) {
          const match = errors.find((e) => e.path === want.path && e.message.includes(want.message));
          assert.ok(match, `no error at ${want.path}: ${want.message}; got ${JSON.stringify(errors)}`);
          // Problems inside an inline Ignition config are placed at that config in this file.
          if (!match.message.includes('(in the config given at')) assert.deepEqual([match.line, match.column], [want.line, want.column], `position of ${want.path}`);
        }
        assert.equal(errors.length, located.length, `the same number of errors: ${JSON.stringify(errors)}`);
      } else {
        const headline = /^Error translating config: (.*)$/m.exec(errText)?.[1] ?? '';
        assert.equal(errors.length, 1, JSON.stringify(errors));
        const [only] = errors;
        if (headline.startsWith('Error unmarshaling yaml')) {
          // A syntax error: the YAML parsers word it differently and may place it a line or two
          // apart (libyaml at the collection it was parsing, ours at the offending line).
          assert.equal(only?.path, '');
          assert.match(only?.message ?? '', /^YAML syntax error: /);
          assert.ok(only?.line !== undefined, 'the error has a line');
        } else if (headline.startsWith('yaml: unmarshal errors:')) {
          const line = /line (\d+)/.exec(errText)?.[1];
          assert.equal(only?.line, Number(line), `a YAML type error on line ${line}: ${JSON.stringify(only)}`);
          const detail = /cannot unmarshal .*/.exec(errText)?.[0] ?? '';
          assert.ok(only?.message.includes(detail), `${only?.message} says ${detail}`);
        } else {
          assert.equal(only?.message, headline);
        }
      }
    });
  }
});
