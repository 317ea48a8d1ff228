import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readFile } from 'node:fs/promises';
import { loadConfig, normaliseBaseUrl } from '../../src/config/loader.ts';
import { formatProblem } from '../../src/common/problems.ts';

const cwd = '/srv/bootdepot';

describe('config loading', () => {
  it('applies defaults when there is no file', () => {
    const { config } = loadConfig({ cwd });
    assert.ok(config);
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.server.baseUrl, undefined);
    assert.equal(config.paths.data, path.join(cwd, 'data'));
    assert.equal(config.boot.unmatched, 'poll');
    assert.equal(config.boot.retry.attempts, 3);
    assert.ok(Object.isFrozen(config.boot.retry), 'config is frozen');
  });

  it('resolves file paths against the file and flag paths against the working directory', () => {
    const { config } = loadConfig({
      file: { path: 'etc/bootdepot.yaml', text: 'paths:\n  data: d\n  assets: /var/assets\n' },
      overrides: [{ key: 'assetsDir', value: 'a', source: '--assets-dir' }],
      cwd,
    });
    assert.equal(config?.paths.data, path.join(cwd, 'etc/d'));
    assert.equal(config?.paths.assets, path.join(cwd, 'a'));
  });

  it('lets flags and environment override the file', () => {
    const { config } = loadConfig({
      file: { path: 'c.yaml', text: 'server:\n  port: 9000\n  baseUrl: http://a:1\nlog:\n  level: warn\n' },
      overrides: [
        { key: 'port', value: '0', source: 'BOOTDEPOT_PORT' },
        { key: 'baseUrl', value: 'http://10.0.0.5:8080/', source: '--base-url' },
        { key: 'logLevel', value: 'debug', source: '--log-level' },
      ],
      cwd,
    });
    assert.equal(config?.server.port, 0);
    assert.equal(config?.server.baseUrl, 'http://10.0.0.5:8080');
    assert.equal(config?.log.level, 'debug');
  });

  it('lists every problem with its location and refuses the config', () => {
    const text = ['server:', '  port: 99999', '  hots: x', 'boot:', '  unmatched: maybe', '  retry:', '    attempts: 0', 'logg: {}'].join('\n');
    const result = loadConfig({ file: { path: 'bad.yaml', text }, overrides: [{ key: 'port', value: 'eighty', source: 'BOOTDEPOT_PORT' }], cwd });
    assert.equal(result.config, undefined);
    const texts = result.problems.map(formatProblem);
    for (const pattern of [/^bad\.yaml:2:9: server\.port: must be <= 65535/, /^bad\.yaml:3:\d+: server\.hots: unknown property "hots"/, /^bad\.yaml:5:14: boot\.unmatched: must be one of "poll", "notFound", "profile"/, /^bad\.yaml:7:15: boot\.retry\.attempts: must be >= 1/, /^bad\.yaml:8:\d+: logg: unknown property/]) {
      assert.ok(texts.some((t) => pattern.test(t)), `${pattern}\n${texts.join('\n')}`);
    }
    // File problems stop before overrides are looked at; an override problem alone is reported too.
    const flags = loadConfig({ overrides: [{ key: 'port', value: 'eighty', source: 'BOOTDEPOT_PORT' }, { key: 'logLevel', value: 'loud', source: '--log-level' }], cwd });
    assert.deepEqual(flags.problems.map(formatProblem), ['BOOTDEPOT_PORT: invalid port "eighty": expected 0-65535', '--log-level: invalid log level "loud": expected one of fatal, error, warn, info, debug, trace, silent']);
  });

  it('reports YAML syntax errors with their line', () => {
    const result = loadConfig({ file: { path: 'c.yaml', text: 'server:\n  port: [1\n' }, cwd });
    assert.match(formatProblem(result.problems[0] ?? { source: '', message: '' }), /^c\.yaml:\d+:\d+: /);
  });

  it('checks base URLs', () => {
    assert.deepEqual(normaliseBaseUrl('http://boot.example.net:8080/'), { url: 'http://boot.example.net:8080' });
    assert.deepEqual(normaliseBaseUrl('https://x/prefix'), { url: 'https://x/prefix' });
    for (const bad of ['ftp://x', 'http://x/?a=1', 'not a url', 'http://u:p@x', 'http://x/a$b']) {
      assert.ok(normaliseBaseUrl(bad).problem, bad);
    }
  });

  it('accepts the shipped config', async () => {
    const file = path.join(import.meta.dirname, '../../config/bootdepot.yaml');
    const result = loadConfig({ file: { path: file, text: await readFile(file, 'utf8') }, cwd });
    assert.deepEqual(result.problems, []);
    assert.equal(result.config?.paths.data, path.join(path.dirname(file), 'data'));
  });

  it('reads the site section: defaults, the origin without a trailing slash, the token file against the file', () => {
    const text = 'site:\n  name: rack-7\n  origin: http://origin.example:8080/\n  tokenFile: secrets/site-token\n';
    const { config, problems } = loadConfig({ file: { path: '/etc/bootdepot/bootdepot.yaml', text }, cwd });
    assert.deepEqual(problems, []);
    assert.deepEqual(config?.site, { name: 'rack-7', origin: 'http://origin.example:8080', tokenFile: '/etc/bootdepot/secrets/site-token', syncIntervalSeconds: 30, forwardEvents: true });
    assert.equal(loadConfig({ cwd }).config?.site, undefined);
  });

  it('refuses a site section with a bad name, origin or interval', () => {
    const bad = loadConfig({ file: { path: 's.yaml', text: 'site:\n  name: Rack_7\n  origin: ftp://x\n  tokenFile: t\n  syncIntervalSeconds: 1\n' }, cwd });
    const text = bad.problems.map(formatProblem).join('\n');
    assert.match(text, /site\.name/);
    assert.match(text, /site\.syncIntervalSeconds/);
    const origin = loadConfig({ file: { path: 's.yaml', text: 'site:\n  name: rack-7\n  origin: ftp://x\n  tokenFile: t\n' }, cwd });
    assert.match(origin.problems.map(formatProblem).join('\n'), /site\.origin: ftp:\/\/x: must be an http/);
  });
});
