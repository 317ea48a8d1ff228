/**
 * The Go template engine against Go's own behaviour: every expected string here is what Go's
 * text/template (with `missingkey=error`, data decoded from JSON as matchbox decodes it) gives
 * for the same template and data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GoTemplateError, markStringMap, parseGoTemplate, type GoValue } from '../../src/gotemplate/index.ts';

function render(source: string, data: GoValue = {}, options = {}): string {
  return parseGoTemplate(source, 't').execute(data, options);
}

function failure(fn: () => unknown): GoTemplateError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof GoTemplateError, `expected a GoTemplateError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

const renderError = (source: string, data: GoValue = {}, options = {}) => failure(() => render(source, data, options));
const parseError = (source: string) => failure(() => parseGoTemplate(source, 't'));

describe('Go templates: values and fields', () => {
  it('prints fields and nested fields', () => {
    assert.equal(render('{{.x}} {{.a.b}}', { x: 'hi', a: { b: 'deep' } }), 'hi deep');
  });

  it('prints numbers from data as Go prints float64, and constants as int', () => {
    assert.equal(render('{{.n}} {{.f}} {{.big}} {{.small}} {{.e}} {{.neg}}', { n: 3, f: 0.5, big: 1000000, small: 0.00001, e: 123456, neg: -2.5 }), '3 0.5 1e+06 1e-05 123456 -2.5');
    assert.equal(render("{{'a'}} {{0x1F}} {{1e3}} {{-3}} {{+4}} {{1_000}} {{0o17}} {{017}}"), '97 31 1000 -3 4 1000 15 15');
  });

  it('prints maps sorted by key, slices, nil and no value as Go does', () => {
    assert.equal(render('{{.m}} {{.l}} {{.nul}} {{.b}}', { m: { b: [1, 'x'], a: { z: null } }, l: [1, 2.5, 's', true, null], nul: null, b: false }), 'map[a:map[z:<nil>] b:[1 x]] [1 2.5 s true <nil>] <no value> false');
  });

  it('decodes Go string constants', () => {
    assert.equal(render('{{"\\u00e9\\x41\\101\\t"}}|{{`raw\\n`}}'), 'éAA\t|raw\\n');
  });

  it('drops comments and trims around trim markers', () => {
    assert.equal(render('{{/* c */}}x{{- /* d */ -}}  y'), 'xy');
    assert.equal(render('a  {{- .x -}}  b {{.x}}\n', { x: 'X' }), 'aXb X\n');
    assert.equal(render('x\r\n{{- .a}}', { a: 'y' }), 'xy');
    assert.equal(render('{{ -3 }}'), '-3');
  });
});

describe('Go templates: control structures', () => {
  it('if, else if, else', () => {
    const t = '{{if .a}}A{{else if .b}}B{{else}}C{{end}}';
    assert.equal(render(t, { a: 'x', b: 0 }), 'A');
    assert.equal(render(t, { a: '', b: 2 }), 'B');
    assert.equal(render(t, { a: '', b: 0 }), 'C');
    assert.equal(render('{{if .l}}y{{else}}n{{end}}{{if .m}}y{{else}}n{{end}}', { l: [], m: {} }), 'nn');
  });

  it('range over slices, with index and element variables, and else', () => {
    assert.equal(render('{{range .l}}[{{.}}]{{end}}', { l: ['a', 'b'] }), '[a][b]');
    assert.equal(render('{{range $i, $v := .l}}{{$i}}={{$v}},{{end}}', { l: ['a', 'b'] }), '0=a,1=b,');
    assert.equal(render('{{range .l}}x{{else}}none{{end}}', { l: [] }), 'none');
    assert.equal(render('{{range .missing}}x{{else}}none{{end}}', { missing: null }), 'none');
  });

  it('range over maps in sorted key order', () => {
    assert.equal(render('{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}', { m: { b: 2, a: 1, c: { x: 1 } } }), 'a=1;b=2;c=map[x:1];');
    assert.equal(render('{{range $v := .m}}{{$v}} {{end}}', { m: { b: 2, a: 1 } }), '1 2 ');
  });

  it('break and continue', () => {
    assert.equal(render('{{range .l}}{{if eq . 2.0}}{{break}}{{end}}{{.}}{{end}}', { l: [1, 2, 3] }), '1');
    assert.equal(render('{{range .l}}{{if eq . 2.0}}{{continue}}{{end}}{{.}}{{end}}', { l: [1, 2, 3] }), '13');
  });

  it('with sets dot, else when empty', () => {
    assert.equal(render('{{with .a}}{{.b}}{{else}}no{{end}}', { a: { b: 'B' } }), 'B');
    assert.equal(render('{{with .a}}{{.b}}{{else}}no{{end}}', { a: {} }), 'no');
    assert.equal(render('{{with $x := .a}}{{$x.b}}{{end}}', { a: { b: 1 } }), '1');
  });

  it('variables: declare, assign, $ and scope', () => {
    assert.equal(render('{{$x := .a}}{{$x}}{{$x = "y"}}{{$x}}{{range .l}}{{$.a}}{{end}}', { a: 'A', l: [1] }), 'AyA');
    assert.equal(render('{{if $x := .a}}{{$x}}{{end}}', { a: 'v' }), 'v');
    assert.equal(parseError('{{range $i, $e := .l}}{{$i}}{{end}}{{$i}}').detail, 'undefined variable "$i"');
  });
});

describe('Go templates: functions and pipelines', () => {
  it('index on maps (missing keys give the zero value), slices and nested', () => {
    const data = { request: { query: markStringMap({ mac: 'x' }) }, l: ['a', 'b'], m: { a: { b: 'deep' } } };
    assert.equal(render('{{index .request.query "nope"}}|{{index .l 1}}|{{index .m "a" "b"}}|{{index . "pxe"}}', data), '|b|deep|<no value>');
    assert.equal(render('{{if index . "pxe"}}yes{{else}}no{{end}}', { a: 1 }), 'no');
    assert.equal(renderError('{{index .l 5}}', { l: ['a'] }).detail, 'executing "t" at <index .l 5>: error calling index: index out of range: 5');
    assert.equal(renderError('{{index .l 1.0}}', { l: ['a', 'b'] }).detail, 'executing "t" at <index .l 1.0>: error calling index: cannot index slice/array with type float64');
  });

  it('pipes pass the value as the last argument; parentheses group', () => {
    assert.equal(render('{{.x | printf "%s-%s" "a"}}', { x: 'X' }), 'a-X');
    assert.equal(render('{{(index . "a").b}} {{(printf "%s" "xyz") | len}}', { a: { b: 'chained' } }), 'chained 3');
    assert.equal(render('{{.a | not}} {{.a | and 1}} {{.a | or 0}}', { a: 'x' }), 'false x x');
  });

  it('and, or, not, len', () => {
    assert.equal(render('{{and 1 0 2}} {{and 1 2}} {{or 0 ""}} {{or 0 "x" 3}} {{not 0}} {{not .l}}', { l: [1] }), '0 2  x true false');
    assert.equal(render('{{len .s}} {{len .l}} {{len .m}} {{len "héllo"}}', { s: 'abc', l: [1], m: { a: 1, b: 2 } }), '3 1 2 6');
    assert.equal(render('{{$x := .nul}}{{not $x}} {{not nil}}', { nul: null }), 'true true');
    assert.equal(renderError('{{len .n}}', { n: 3 }).detail, 'executing "t" at <len .n>: error calling len: len of type float64');
  });

  it('comparisons, with Go\'s type rules', () => {
    assert.equal(render('{{eq 1 1}} {{eq 1 2 1}} {{eq "a" "a"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}}'), 'true true true true true true true false');
    assert.equal(render('{{eq .nul .nul}} {{eq .nul "x"}}', { nul: null }), 'true false');
    // Numbers from JSON are float64: comparing one with an int constant is an error in Go.
    assert.equal(renderError('{{eq .n 3}}', { n: 3 }).detail, 'executing "t" at <eq .n 3>: error calling eq: incompatible types for comparison');
    assert.equal(renderError('{{eq .l .l}}', { l: [1] }).detail, 'executing "t" at <eq .l .l>: error calling eq: non-comparable type [%!s(float64=1)]: []interface {}');
    assert.equal(renderError('{{lt true false}}').detail, 'executing "t" at <lt true false>: error calling lt: invalid type for comparison');
  });

  it('print, printf, println', () => {
    assert.equal(render('{{print 1 2 "a" "b" 3 .nul}}|{{println 1 "a"}}|', { nul: null }), '1 2ab3 <nil>|1 a\n|');
    assert.equal(
      render('{{printf "%d %5.2f %q %v %x %t %s %03d %-4s| %e %g %G" 3 3.14159 "q\\"" .m 255 true .n 7 "ab" 1234.5678 0.000012345 1e21}}', { m: { a: 1 }, n: 5 }),
      '3  3.14 "q\\"" map[a:1] ff true %!s(float64=5) 007 ab  | 1.234568e+03 1.2345e-05 1E+21',
    );
    assert.equal(render('{{printf "%d" .n}} {{printf "%s"}} {{printf "%s" 1 2}} {{printf "%v" .nul}} {{printf "%s" .nul}}', { n: 5, nul: null }), '%!d(float64=5) %!s(MISSING) %!s(int=1)%!(EXTRA int=2) <nil> %!s(<nil>)');
    assert.equal(render('{{printf "%5s|%-5d|%+d|% d|%x|%X|%o|%b|%c|%U" "ab" 3 3 3 "hi" 255 8 5 65 65}}'), '   ab|3    |+3| 3|6869|FF|10|101|A|U+0041');
    assert.equal(render('{{printf "%T %T %T %T %T %T" 1 1.5 "s" .m .l true}}', { m: {}, l: [] }), 'int float64 string map[string]interface {} []interface {} bool');
  });

  it('rounds printf floats half to even, as Go does', () => {
    assert.equal(render('{{printf "%.0f %.1f %.2f %.1e %.2g %.0e %.3f %.1f %.2e" 2.5 0.25 1.005 2.25 2.25 5.0 9.9995 0.05 9.995}}'), '2 0.2 1.00 2.2e+00 2.2 5e+00 9.999 0.1 9.99e+00');
    assert.equal(render('{{printf "%.1f %.0f %.0f %f %e %g" 9.96 0.5 1.5 1e21 1e21 1e21}}'), '10.0 0 2 1000000000000000000000.000000 1.000000e+21 1e+21');
    assert.equal(render('{{printf "%v %v %v %v %v %v" 100000.0 1234567.0 0.0001 123456789.0 1e-7 -0.0}}'), '100000 1.234567e+06 0.0001 1.23456789e+08 1e-07 -0');
  });

  it('html, js, urlquery', () => {
    assert.equal(render('{{html "<a href=\'x\'>&\\""}} {{js "a\'b\\"c<>&=\\n"}} {{urlquery "a b&c/d"}} {{html 1 2}}'), '&lt;a href=&#39;x&#39;&gt;&amp;&#34; a\\\'b\\"c\\u003C\\u003E\\u0026\\u003D\\u000A a+b%26c%2Fd 1 2');
  });
});

describe('Go templates: missingkey and errors with positions', () => {
  it('a missing key is an error naming it, at its line and column', () => {
    const error = renderError('a\n  {{.a.b}}', { a: {} });
    assert.equal(error.message, 'template: t:2:6: executing "t" at <.a.b>: map has no entry for key "b"');
    assert.equal(error.line, 2);
    assert.equal(error.column, 7);
    assert.equal(error.phase, 'execute');
    assert.equal(renderError('{{.missing}}').message, 'template: t:1:2: executing "t" at <.missing>: map has no entry for key "missing"');
    assert.equal(renderError('{{range .l}}{{.x}}{{end}}', { l: [{ x: 1 }, {}] }).message, 'template: t:1:14: executing "t" at <.x>: map has no entry for key "x"');
  });

  it('Go columns count bytes from 0; ours count characters from 1', () => {
    const error = renderError('é{{.b.c}}', { b: {} });
    assert.equal(error.message, 'template: t:1:6: executing "t" at <.b.c>: map has no entry for key "c"');
    assert.equal(error.column, 6);
  });

  it('missingkey default and zero', () => {
    assert.equal(render('{{.missing}}|{{.m.x}}', { m: markStringMap({}) }, { missingKey: 'default' }), '<no value>|<no value>');
    assert.equal(render('{{.m.x}}|{{.missing}}', { m: markStringMap({}) }, { missingKey: 'zero' }), '|<no value>');
  });

  it('fields of nil, of strings and of range elements', () => {
    assert.equal(renderError('{{.a.b}}', { a: null }).detail, 'executing "t" at <.a.b>: nil pointer evaluating interface {}.b');
    assert.equal(renderError('{{.a.b.c}}', { a: { b: 's' } }).detail, 'executing "t" at <.a.b.c>: can\'t evaluate field c in type interface {}');
    assert.equal(renderError('{{range $i, $e := .l}}{{$e.x}}{{end}}', { l: ['s'] }).detail, 'executing "t" at <$e.x>: can\'t evaluate field x in type interface {}');
    assert.equal(renderError('{{$x := .s}}{{$x.y}}', { s: 'str' }).detail, 'executing "t" at <$x.y>: can\'t evaluate field y in type string');
  });

  it('execution errors Go reports', () => {
    assert.equal(renderError('{{.x 1}}', { x: 'a' }).detail, 'executing "t" at <.x>: x is not a method but has arguments');
    assert.equal(renderError('{{1 2}}').detail, 'executing "t" at <1>: can\'t give argument to non-function 1');
    assert.equal(renderError('{{nil}}').detail, 'executing "t" at <nil>: nil is not a command');
    assert.equal(renderError('{{len}}').detail, 'executing "t" at <len>: wrong number of args for len: want 1 got 0');
    assert.equal(renderError('{{range .s}}x{{end}}', { s: 3.5 }).detail, 'executing "t" at <.s>: range can\'t iterate over 3.5');
    assert.equal(renderError('{{printf .n}}', { n: 1 }).detail, 'executing "t" at <.n>: wrong type for value; expected string; got float64');
  });

  it('parse errors carry the position of the token', () => {
    const cases: [string, string, number, number][] = [
      ['{{else}}', 'unexpected {{else}}', 1, 3],
      ['{{end}}', 'unexpected {{end}}', 1, 3],
      ['x\n{{if .a}}', 'unexpected EOF: {{if}} without {{end}}', 2, 3],
      ['{{undefinedfn 1}}', 'function "undefinedfn" not defined', 1, 3],
      ['{{$nope}}', 'undefined variable "$nope"', 1, 3],
      ['{{"a" | "b"}}', 'non executable command in pipeline stage 2', 1, 9],
      ['{{/* unclosed', 'unclosed comment', 1, 1],
      ['{{.a', 'unclosed action', 1, 1],
      ['{{3x}}', 'bad number syntax: "3x"', 1, 3],
      ['{{ }}', 'missing value for command', 1, 4],
      ['{{break}}', '{{break}} outside {{range}}', 1, 3],
      ['{{$a, $b := 1}}', 'too many declarations in command', 1, 5],
      ['{{range .a}}{{else}}{{else}}{{end}}', 'expected end; found {{else}}', 1, 23],
      ['{{define "x"}}{{end}}', '{{define}} is not supported: each file is one template', 1, 3],
    ];
    for (const [source, detail, line, column] of cases) {
      const error = parseError(source);
      assert.equal(error.detail, detail, source);
      assert.deepEqual([error.line, error.column, error.phase], [line, column, 'parse'], source);
      assert.match(error.message, new RegExp(`^template: t:${line}:${column - 1}: `), source);
    }
  });
});

describe('Go templates: bounds', () => {
  it('stops at the output limit instead of writing on', () => {
    const error = renderError('{{range .l}}{{.}}{{end}}', { l: Array.from({ length: 100 }, () => 'x'.repeat(100)) }, { maxOutputBytes: 1000 });
    assert.match(error.detail, /output is larger than 1000 bytes$/);
  });

  it('stops after the step limit (nested ranges over data)', () => {
    const l = Array.from({ length: 50 }, (_, i) => i);
    assert.equal(render('{{range .l}}{{range $.l}}{{end}}{{end}}x', { l }, { maxSteps: 100_000 }), 'x');
    const error = renderError('{{range .l}}{{range $.l}}{{range $.l}}{{end}}{{end}}{{end}}', { l }, { maxSteps: 10_000 });
    assert.match(error.detail, /stopped after 10000 steps/);
  });

  it('refuses printf widths past the output limit', () => {
    const error = renderError('{{printf "%999999999s" "x"}}', {}, { maxOutputBytes: 1000 });
    assert.match(error.detail, /error calling printf: printf width or precision 999999999 is larger than 1000/);
  });
});
