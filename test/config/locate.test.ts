import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { locateConfig } from '../../src/config/locate.ts';

const cwd = '/srv/bootdepot';
const existing = (...files: string[]) => (file: string) => files.map((f) => path.join(cwd, f)).includes(file);

describe('which config file a command reads', () => {
  it('takes --config first, even when BOOTDEPOT_CONFIG and ./bootdepot.yaml exist', () => {
    const found = locateConfig({ flag: '/etc/bd.yaml', env: '/etc/other.yaml', cwd, isFile: existing('bootdepot.yaml') });
    assert.deepEqual(found, { file: '/etc/bd.yaml', description: '/etc/bd.yaml (--config)' });
  });

  it('takes BOOTDEPOT_CONFIG before the files in the working directory', () => {
    const found = locateConfig({ env: '/etc/other.yaml', cwd, isFile: existing('bootdepot.yaml', 'config/bootdepot.yaml') });
    assert.deepEqual(found, { file: '/etc/other.yaml', description: '/etc/other.yaml (BOOTDEPOT_CONFIG)' });
  });

  it('takes ./bootdepot.yaml before ./config/bootdepot.yaml', () => {
    assert.equal(locateConfig({ cwd, isFile: existing('bootdepot.yaml', 'config/bootdepot.yaml') }).file, 'bootdepot.yaml');
  });

  it('finds ./config/bootdepot.yaml, as in a checkout, and says where it found it', () => {
    assert.deepEqual(locateConfig({ cwd, isFile: existing('config/bootdepot.yaml') }), {
      file: 'config/bootdepot.yaml',
      description: 'config/bootdepot.yaml (found in the working directory)',
    });
  });

  it('says when it uses the embedded defaults, and what it looked for', () => {
    const found = locateConfig({ flag: '', env: '', cwd, isFile: existing() });
    assert.equal(found.file, undefined);
    assert.match(found.description, /^the embedded defaults \(no --config, no BOOTDEPOT_CONFIG, no \.\/bootdepot\.yaml or \.\/config\/bootdepot\.yaml\)$/);
  });
});
