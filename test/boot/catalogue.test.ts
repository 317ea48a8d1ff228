import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { formatProblem } from '../../src/common/problems.ts';
import { makeTree } from '../helpers.ts';

// Written from matchbox's documented format (profiles/*.json, groups/*.json).
const MATCHBOX_PROFILE = `{
  "id": "flatcar-install",
  "name": "Flatcar Linux install",
  "cloud_id": "",
  "ignition_id": "install.ign",
  "generic_id": "",
  "boot": {
    "kernel": "/assets/flatcar/current/flatcar_production_pxe.vmlinuz",
    "initrd": ["/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz"],
    "args": [
      "initrd=flatcar_production_pxe_image.cpio.gz",
      "flatcar.config.url=http://matchbox.example.com:8080/ignition?uuid=\${uuid}&mac=\${mac:hexhyp}",
      "flatcar.first_boot=yes",
      "console=tty0",
      "console=ttyS0"
    ]
  }
}`;
const MATCHBOX_GROUP = `{
  "id": "node1",
  "name": "etcd node 1",
  "profile": "flatcar-install",
  "selector": {
    "mac": "52:54:00:a1:9c:ae",
    "os": "installed"
  },
  "metadata": {
    "domain_name": "node1.example.com",
    "etcd_name": "node1",
    "ssh_authorized_keys": ["ssh-rsa AAAAB3Nz..."]
  }
}`;

function problemTexts(problems: readonly Parameters<typeof formatProblem>[0][]): string[] {
  return problems.map(formatProblem);
}

describe('catalogue loading', () => {
  it('loads matchbox profiles and groups unchanged', async (t) => {
    const dir = await makeTree(t, {
      'profiles/flatcar-install.json': MATCHBOX_PROFILE,
      'groups/node1.json': MATCHBOX_GROUP,
      'ignition/install.ign': '{"ignition":{"version":"3.3.0"}}',
    });
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(problemTexts(catalogue.problems), []);
    const profile = catalogue.profiles.get('flatcar-install');
    assert.equal(profile?.kind, 'boot');
    assert.equal(profile?.boot?.args.length, 5);
    const group = catalogue.groups[0];
    assert.equal(group?.id, 'node1');
    assert.deepEqual(group?.selector, { mac: '52:54:00:a1:9c:ae', os: 'installed' });
    assert.equal(catalogue.ignition.get('install.ign')?.kind, 'json');
  });

  it('reads YAML too, and takes ids from file names', async (t) => {
    const dir = await makeTree(t, {
      'profiles/lk.yaml': 'linuxkit:\n  name: sshd\n',
      'groups/all.yml': 'profile: lk\n',
    });
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(problemTexts(catalogue.problems), []);
    assert.equal(catalogue.profiles.get('lk')?.linuxkit?.dir, 'linuxkit');
    assert.equal(catalogue.groups[0]?.id, 'all');
  });

  it('reports each broken file with its line and column and keeps the rest', async (t) => {
    const dir = await makeTree(t, {
      'profiles/good.json': '{"boot":{"kernel":"/k"}}',
      'profiles/syntax.json': '{\n  "boot": {"kernel": "/k",}\n}',
      'profiles/unknown-key.yaml': 'boot:\n  kernel: /k\n  kernal: /typo\n',
      'profiles/two-kinds.yaml': 'boot:\n  kernel: /k\nlinuxkit:\n  name: x\n',
      'profiles/no-kind.yaml': 'name: nothing\n',
      'profiles/newline.json': '{"boot":{"kernel":"/k\\nchain http://evil"}}',
      'groups/bad-mac.yaml': 'profile: good\nselector:\n  mac: not-a-mac\n',
      'groups/missing-profile.yaml': 'profile: nowhere\nselector:\n  os: x\n',
      'groups/d1.yaml': 'profile: good\n',
      'groups/d2.yaml': 'profile: good\n',
      'ignition/broken-go.yaml': 'variant: flatcar\nversion: 1.0.0\n{{ if .x }}\n',
      'generic/broken.cfg': 'a={{.a | nofunc}}\n',
      'ignition/not-ignition.json': '{"a":1}',
      'templates/broken.liquid': '#!ipxe\n{% if x %}\nkernel {{ y }\n',
      'profiles/uses-missing-template.yaml': 'template: nope\n',
    });
    const catalogue = await loadCatalogue(dir);
    const texts = problemTexts(catalogue.problems);
    const expectations: [string, RegExp][] = [
      ['syntax error located', /^profiles\/syntax\.json:2:\d+: invalid JSON: /],
      ['unknown key located at its line', /^profiles\/unknown-key\.yaml:3:\d+: boot\.kernal: unknown property "kernal"/],
      ['two kinds', /^profiles\/two-kinds\.yaml:1:1: a profile has exactly one of .* this one has boot and linuxkit/],
      ['no kind', /^profiles\/no-kind\.yaml:1:1: a profile needs one of/],
      ['line break in script text', /^profiles\/newline\.json:1:\d+: boot\.kernel: must match pattern/],
      ['invalid selector', /^groups\/bad-mac\.yaml:3:8: selector\.mac: invalid mac "not-a-mac"/],
      ['missing profile', /^groups\/missing-profile\.yaml: profile: profile "nowhere" is not loaded/],
      ['two defaults', /more than one default group \(no selector\): d1, d2; "d1" wins/],
      ['Go template syntax', /^ignition\/broken-go\.yaml:3:4: Go template: unexpected EOF: \{\{if\}\} without \{\{end\}\}$/],
      ['Go template in generic/', /^generic\/broken\.cfg:1:10: Go template: function "nofunc" not defined$/],
      ['not ignition', /^ignition\/not-ignition\.json: not an Ignition config/],
      ['template syntax', /^templates\/broken\.liquid:3:8: output ".*" not closed$/],
      ['missing template', /^profiles\/uses-missing-template\.yaml: template: template "nope" not found/],
    ];
    for (const [name, pattern] of expectations) {
      assert.ok(texts.some((text) => pattern.test(text)), `${name}: no problem matches ${pattern}\n${texts.join('\n')}`);
    }
    assert.ok(catalogue.profiles.has('good'));
    assert.ok(catalogue.profiles.has('uses-missing-template'));
    assert.deepEqual([...catalogue.profiles.keys()].sort(), ['good', 'uses-missing-template']);
  });

  it('keeps serving the last good version of a file that breaks', async (t) => {
    const dir = await makeTree(t, {
      'profiles/p.yaml': 'boot:\n  kernel: /k\n',
      'groups/mine.yaml': 'profile: p\nselector:\n  mac: 52:54:00:12:34:56\n',
    });
    const first = await loadCatalogue(dir);
    assert.equal(first.groups.length, 1);
    await writeFile(path.join(dir, 'groups/mine.yaml'), 'profile: p\nselector: [oops\n');
    const second = await loadCatalogue(dir, first);
    assert.equal(second.groups[0]?.id, 'mine', 'the broken group stays in service');
    const texts = problemTexts(second.problems);
    assert.ok(texts.some((text) => text.startsWith('groups/mine.yaml:')), texts.join('\n'));
    assert.ok(texts.some((text) => /still serving the last good version/.test(text)));
    // A fresh start has no good version to fall back on.
    assert.equal((await loadCatalogue(dir)).groups.length, 0);
  });

  it('reports a missing data directory', async (t) => {
    const dir = await makeTree(t, {});
    const catalogue = await loadCatalogue(path.join(dir, 'nope'));
    assert.match(problemTexts(catalogue.problems)[0] ?? '', /data directory does not exist/);
  });
});
