import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignitionSchema } from '../../src/butane/ignition-schema.ts';
import { findDuplicates, validateIgnition, validatePath } from '../../src/butane/ignition-validate.ts';
import { unitSections } from '../../src/butane/unit-file.ts';

const schema = ignitionSchema(4);
const check = (config: Record<string, unknown>): [string, string, boolean][] =>
  validateIgnition({ ignition: { version: '3.4.0' }, ...config }, schema, 4, '3.4.0').map((f) => [f.path.join('.'), f.message, f.warning]);

describe('Ignition validation', () => {
  it('wants absolute, clean paths', () => {
    assert.equal(validatePath('/etc/x'), undefined);
    assert.equal(validatePath('/'), undefined);
    assert.equal(validatePath(''), 'path not specified');
    assert.equal(validatePath('etc/x'), 'path not absolute');
    for (const p of ['/etc//x', '/etc/./x', '/etc/../x', '/etc/x/']) assert.equal(validatePath(p), 'path is not fully simplified', p);
  });

  it('checks files, hashes, units and drop-ins in walk order', () => {
    assert.deepEqual(
      check({
        storage: { files: [{ path: '/a', mode: 0o4755, overwrite: true, contents: { verification: { hash: 'sha256-00' } } }] },
        systemd: { units: [{ name: 'a.service', enabled: true, contents: '[Service]\nExecStart=/bin/true\n', dropins: [{ name: 'x.txt', contents: '[Unit]' }] }] },
      }),
      [
        ['storage.files.0.mode', 'setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0', true],
        ['storage.files.0.overwrite', 'overwrite must be false if source is unspecified', false],
        ['storage.files.0.contents.verification.hash', 'source must be specified if verification is specified', false],
        ['storage.files.0.contents.verification.hash', 'incorrect size for hash sum', false],
        ['systemd.units.0.contents', 'unit "a.service" is enabled, but has no install section so enable does nothing', true],
        ['systemd.units.0.dropins.0.name', 'invalid systemd drop-in extension', false],
      ],
    );
  });

  it('no longer warns of special mode bits from spec 3.6', () => {
    const findings = validateIgnition({ ignition: { version: '3.6.0-experimental' }, storage: { directories: [{ path: '/t', mode: 0o1777 }] } }, ignitionSchema(6), 6, '3.6.0-experimental');
    assert.deepEqual(findings, []);
  });

  it('checks disks, filesystems, raid and luks', () => {
    assert.deepEqual(
      check({
        storage: {
          disks: [{ device: '/dev/vda', partitions: [{ number: 1, label: 'a' }, { number: 1, label: 'a:b', typeGuid: 'nope' }] }],
          filesystems: [{ device: '/dev/vda', label: 'much-too-long-label' , format: 'xfs' }],
          raid: [{ name: 'md', level: 'raid7', devices: ['dev/x'] }],
          luks: [{ name: 'a/b', clevis: { tpm2: true, custom: { pin: 'tang', config: '{}' } } }],
        },
      }).map(([p, m]) => `${p}: ${m}`),
      [
        // Storage's own checks come before its fields'.
        'storage.filesystems.0.device: filesystem overwrites partitioned device',
        'storage.disks.0.partitions.1: partition numbers collide',
        'storage.disks.0.partitions.1.label: partition label will be truncated to text before the colon',
        'storage.disks.0.partitions.1.typeGuid: doesn\'t match the form "01234567-89AB-CDEF-EDCB-A98765432101"',
        'storage.filesystems.0.label: filesystem labels cannot be longer than 12 characters when using xfs',
        'storage.luks.0.name: device names cannot contain slashes',
        'storage.luks.0.device: disk device is required',
        'storage.luks.0.clevis: cannot use custom clevis config with tpm2, tang, or threshold',
        'storage.raid.0.level: unrecognized raid level',
        'storage.raid.0.devices.0: path not absolute',
      ],
    );
  });

  it('finds entries defined twice, files and directories sharing their paths', () => {
    const dups = findDuplicates(
      { ignition: { version: '3.4.0' }, storage: { directories: [{ path: '/x' }], files: [{ path: '/x' }, { path: '/y', append: [{ source: 'data:,a' }, { source: 'data:,a' }] }] }, passwd: { users: [{ name: 'a', sshAuthorizedKeys: ['k', 'k'] }] } },
      schema,
    );
    assert.deepEqual(dups.map((d) => d.path.join('.')), ['passwd.users.0.sshAuthorizedKeys.1', 'storage.files.0']);
  });
});

describe('systemd unit files', () => {
  it('finds sections and the errors Ignition refuses a unit for', () => {
    assert.deepEqual(unitSections('# comment\n[Unit]\nDescription=a \\\n  b\n\n[Install]\nWantedBy=x\n'), { sections: ['Unit', 'Install'] });
    assert.deepEqual(unitSections('[Service\nExecStart=/bin/true\n'), { error: 'unable to find end of section' });
    assert.deepEqual(unitSections('[Unit] trailing\n'), { error: 'found garbage after section name Unit: "trailing"' });
    assert.deepEqual(unitSections('[Unit]\nNoValue\nOther=1\n'), { error: 'unexpected newline encountered while parsing option name' });
    assert.deepEqual(unitSections(''), { sections: [] });
  });
});
