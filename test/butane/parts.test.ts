import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignitionSchema } from '../../src/butane/ignition-schema.ts';
import { mergeConfigs } from '../../src/butane/merge.ts';
import { unitNamePathEscape } from '../../src/butane/mount-units.ts';
import { camel, Origins, snake } from '../../src/butane/origins.ts';
import { serializeIgnition, toOutput } from '../../src/butane/output.ts';
import { isDecimalMode } from '../../src/butane/validate-butane.ts';
import { lookupVersion } from '../../src/butane/versions.ts';

describe('Butane helpers', () => {
  it('escapes paths into unit names like systemd-escape --path', () => {
    assert.equal(unitNamePathEscape('/var/lib/data'), 'var-lib-data');
    assert.equal(unitNamePathEscape('/dev/disk/by-partlabel/my data'), 'dev-disk-by\\x2dpartlabel-my\\x20data');
    assert.equal(unitNamePathEscape('/.hidden//x/'), '\\x2ehidden-x');
    assert.equal(unitNamePathEscape('/'), '-');
    assert.equal(unitNamePathEscape('/ä'), '\\xc3\\xa4');
  });

  it('tells a decimal mode written by mistake from an unusual one', () => {
    for (const mode of [644, 755, 600, 640, 750, 700, 444]) assert.equal(isDecimalMode(mode, false), true, String(mode));
    for (const mode of [0o644, 0o755, 0, 1000, 888, 7778]) assert.equal(isDecimalMode(mode, false), false, String(mode));
    assert.equal(isDecimalMode(1777, true), true, 'sticky world-writable directory');
    assert.equal(isDecimalMode(1777, false), false, 'sticky is not a file mode');
  });

  it('converts between snake_case and camelCase, MiB included', () => {
    assert.equal(camel('size_mib'), 'sizeMiB');
    assert.equal(camel('type_guid'), 'typeGuid');
    assert.equal(snake('sizeMiB'), 'size_mib');
    assert.equal(snake('httpHeaders'), 'http_headers');
  });

  it('maps a path of the output back to the field written, through renames and copies', () => {
    const origins = new Origins();
    const resource = { source: 'data:,x' };
    origins.set(resource, ['storage', 'files', 3, 'contents'], { source: ['inline'] });
    const config = { storage: { files: [{ path: '/f', contents: resource }] } };
    assert.deepEqual(origins.resolve(config, ['storage', 'files', 0, 'contents', 'source']), ['storage', 'files', 3, 'contents', 'inline']);
    assert.deepEqual(origins.resolve(config, ['storage', 'files', 0, 'contents', 'httpHeaders', 0]), ['storage', 'files', 3, 'contents', 'http_headers', 0]);
    assert.deepEqual(origins.resolve(config, ['storage', 'files', 0, 'path']), ['storage', 'files', 0, 'path'], 'no origin: snake_case of the same path');
  });

  it('merges like Ignition: child values win, keyed entries merge in the parent place', () => {
    const schema = ignitionSchema(4);
    const parent = { ignition: { version: '3.4.0' }, storage: { files: [{ path: '/a', mode: 1 }, { path: '/b', mode: 2 }], filesystems: [{ device: '/d', format: 'xfs' }] } };
    const child = { ignition: { version: '3.4.0' }, storage: { directories: [{ path: '/b' }], files: [{ path: '/a', overwrite: true }, { path: '/c' }], filesystems: [{ device: '/d', label: 'x' }] } };
    const merged = mergeConfigs(parent, child, schema, new Origins());
    assert.deepEqual(merged['storage'], {
      directories: [{ path: '/b' }],
      files: [{ path: '/a', overwrite: true, mode: 1 }, { path: '/c' }],
      filesystems: [{ device: '/d', format: 'xfs', label: 'x' }],
    });
  });

  it('leaves out empty fields as Go omitempty does, keeps set ones, in Ignition order', () => {
    const out = toOutput({ storage: { files: [{ mode: 0o644, path: '/x', contents: { compression: '' }, user: {} }], disks: [] }, systemd: { units: [] }, ignition: { version: '3.4.0' } }, 4);
    assert.equal(serializeIgnition(out), '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/x","contents":{"compression":""},"mode":420}]}}');
    assert.equal(serializeIgnition({ a: [1, { b: 'x' }], c: {} }, true), '{\n  "a": [\n    1,\n    {\n      "b": "x"\n    }\n  ],\n  "c": {}\n}');
  });

  it('knows the versions of Butane v0.25.1', () => {
    const found = lookupVersion('fcos', '1.3.0');
    assert.ok(found.ok && found.spec.ignition === '3.2.0');
    assert.equal(lookupVersion('fcos', '1.8.0-experimental').ok, false);
    assert.equal(lookupVersion('openshift', '4.16.0').ok, false, 'not a variant bootdepot serves');
  });
});

describe('messages', () => {
  it('print like bootdepot check prints its problems', async () => {
    const { formatProblem } = await import('../../src/common/problems.ts');
    const { formatButaneMessage, toProblem } = await import('../../src/butane/messages.ts');
    for (const message of [
      { path: 'storage.files.0.mode', message: 'illegal file mode', line: 6, column: 13 },
      { path: '', message: 'error parsing variant; must be specified' },
      { path: 'systemd', message: 'x', line: 2 },
    ]) {
      assert.equal(formatButaneMessage(message, 'ignition/a.bu'), formatProblem(toProblem(message, 'ignition/a.bu')));
    }
  });
});
