/**
 * matchbox data loads and selects as matchbox does. The data directory in
 * test/boot/matchbox-data/ is written in matchbox's own file format (JSON groups and profiles);
 * each case names the request a machine makes and the group matchbox would pick for it.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { matchGroup } from '../../src/boot/decision.ts';
import { parseDevice } from '../../src/common/identity.ts';
import { formatProblem, isWarning } from '../../src/common/problems.ts';
import { makeTree, testApp } from '../helpers.ts';

const FIXTURE = path.join(import.meta.dirname, 'matchbox-data');
const MAC = '52:54:00:89:d8:10';

/** The fixture directory as a file map, so each test gets its own copy (and can add to it). */
async function fixture(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const dir of ['groups', 'profiles', 'ignition', 'generic', 'cloud']) {
    const names = await readdir(path.join(FIXTURE, dir)).catch(() => [] as string[]);
    for (const name of names) files[`${dir}/${name}`] = await readFile(path.join(FIXTURE, dir, name), 'utf8');
  }
  return { ...files, ...extra };
}

/** The group and profile a script names in its first comment. */
function chosen(script: string): { profile?: string; group?: string } {
  const profile = /^# bootdepot: profile (\S+) for/m.exec(script)?.[1];
  const group = /: group (\S+) matched/.exec(script)?.[1];
  return { ...(profile ? { profile } : {}), ...(group ? { group } : {}) };
}

async function ipxe(t: TestContext, query: string, extra: Record<string, string> = {}) {
  const { app } = await testApp(t, { data: await fixture(extra), store: false });
  const res = await app.inject({ url: `/ipxe?${query}` });
  return { status: res.statusCode, body: res.body, ...chosen(res.body) };
}

describe('selection as matchbox', () => {
  // [what, query, group matchbox selects]
  const cases: [string, string, string][] = [
    // zone=a and rack=1 are one selector each: matchbox tries the greater text first.
    ['between as many selectors, the greater selector text first', `mac=52:54:00:00:00:01&zone=a&rack=1`, 'zone-a'],
    ['a single-selector group alone', `mac=52:54:00:00:00:01&rack=1`, 'rack-1'],
    ['more selectors before fewer', `mac=${MAC}&os=installed`, 'node1-installed'],
    ['the MAC alone', `mac=${MAC}`, 'node1'],
    ['the greater text among two-selector groups', `mac=52:54:00:00:00:01&rack=9&region=ams&zone=a`, 'region-ams-zone-a'],
    ['the other two-selector group when only it matches', `mac=52:54:00:00:00:01&rack=9&region=ams`, 'region-ams-rack-9'],
    ['the default group for anything else', `mac=52:54:00:00:00:02`, 'default'],
    ['values compared as given: case counts', `mac=52:54:00:00:00:01&zone=A`, 'default'],
    // Only the MAC is normalised (as Go's net.ParseMAC); every other value is compared as given.
    ['a hostname that is no RFC 1123 name', `mac=52:54:00:00:00:01&hostname=node_1`, 'node-1-by-hostname'],
    ['a MAC selector in dotted form, the machine in hyphens', `mac=52-54-00-00-00-07`, 'node7-dotted-mac'],
    ['a MAC sent dotted', `mac=5254.0000.0007`, 'node7-dotted-mac'],
    ['a short uuid', `mac=52:54:00:00:00:01&uuid=a1b2c3d4`, 'short-uuid'],
    ['a platform iPXE does not send', `mac=52:54:00:00:00:01&platform=metal`, 'metal'],
  ];
  for (const [what, query, group] of cases) {
    it(what, async (t) => {
      const answer = await ipxe(t, query);
      assert.equal(answer.status, 200);
      assert.equal(answer.group, group, answer.body);
    });
  }

  it('orders groups as matchbox sorts them, whatever their file names', async (t) => {
    const dir = await makeTree(t, await fixture());
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.problems.filter((p) => !isWarning(p)), []);
    assert.deepEqual(
      catalogue.groups.map((g) => g.id),
      ['region-ams-zone-a', 'region-ams-rack-9', 'node1-installed', 'zone-a', 'short-uuid', 'workers', 'legacy', 'rack-1', 'metal', 'node1', 'node7-dotted-mac', 'node5-metadata', 'node-1-by-hostname', 'default'],
    );
  });

  it('keeps file-name order between groups with the same selector, and says so', async (t) => {
    const dir = await makeTree(t, {
      'profiles/p.json': '{"id":"p","boot":{"kernel":"http://x.invalid/k"}}',
      'groups/b-second.json': '{"id":"a-first-by-id","profile":"p","selector":{"zone":"a"}}',
      'groups/a-first.json': '{"id":"z-last-by-id","profile":"p","selector":{"zone":"a"}}',
    });
    const catalogue = await loadCatalogue(dir);
    assert.equal(matchGroup(catalogue.groups, { zone: 'a' })?.file, 'groups/a-first.json');
    assert.ok(catalogue.problems.some((p) => p.source === 'groups/b-second.json' && /same selector as group/.test(p.message)));
  });

  it('matches an empty selector value when the machine does not send that label, as matchbox', async (t) => {
    const dir = await makeTree(t, {
      'profiles/p.json': '{"id":"p","boot":{"kernel":"http://x.invalid/k"}}',
      'groups/no-os.json': '{"id":"no-os","profile":"p","selector":{"zone":"a","os":""}}',
      'groups/zone.json': '{"id":"zone","profile":"p","selector":{"zone":"a"}}',
    });
    const catalogue = await loadCatalogue(dir);
    assert.equal(matchGroup(catalogue.groups, parseDevice({ mac: MAC, zone: 'a' }).labels)?.id, 'no-os');
    assert.equal(matchGroup(catalogue.groups, parseDevice({ mac: MAC, zone: 'a', os: 'installed' }).labels)?.id, 'zone');
  });
});

describe('profiles found by file name, as matchbox', () => {
  it('boots a profile whose id differs from its file name, and check warns about it', async (t) => {
    const answer = await ipxe(t, `mac=52:54:00:00:00:01&role=worker`);
    assert.equal(answer.group, 'workers', answer.body);
    assert.equal(answer.profile, 'worker');
    assert.match(answer.body, /images\.example\.invalid\/worker\/vmlinuz/);
    const catalogue = await loadCatalogue(await makeTree(t, await fixture()));
    const warning = catalogue.problems.find((p) => p.source === 'profiles/worker.json');
    assert.ok(warning && isWarning(warning));
    assert.equal(formatProblem(warning), 'profiles/worker.json:2:9: warning: id: id "worker-v2" differs from the file name; groups name it as "worker" (profiles are found by file name, as matchbox does)');
  });

  it('does not find a profile by an id that is not its file name', async (t) => {
    const answer = await ipxe(t, `mac=52:54:00:00:00:01&role=worker`, { 'groups/workers.json': '{"id":"workers","profile":"worker-v2","selector":{"role":"worker"}}' });
    assert.equal(answer.profile, undefined);
    assert.match(answer.body, /group workers names profile worker-v2, which is not loaded/);
  });

  it('reports two files of one name, and a file name that cannot be a name', async (t) => {
    const catalogue = await loadCatalogue(await makeTree(t, {
      'profiles/p.json': '{"id":"p","boot":{"kernel":"http://x.invalid/k"}}',
      'profiles/p.yaml': 'boot: {kernel: "http://x.invalid/other"}\n',
      'profiles/bad name.json': '{"id":"bad","boot":{"kernel":"http://x.invalid/k"}}',
    }));
    assert.equal(catalogue.profiles.get('p')?.boot?.kernel, 'http://x.invalid/k');
    assert.ok(catalogue.problems.some((p) => p.source === 'profiles/p.yaml' && /profile "p" is also profiles\/p\.json/.test(p.message) && !isWarning(p)));
    assert.ok(catalogue.problems.some((p) => p.source === 'profiles/bad name.json' && /not a usable name/.test(p.message) && !isWarning(p)));
  });
});

describe('labels as matchbox takes them', () => {
  it('says when a selector bootdepot used to normalise is now compared as written', async (t) => {
    const catalogue = await loadCatalogue(await makeTree(t, {
      'profiles/p.json': '{"id":"p","boot":{"kernel":"http://x.invalid/k"}}',
      'groups/arch.json': '{"id":"arch","profile":"p","selector":{"arch":"amd64"}}',
      'groups/uuid.json': '{"id":"uuid","profile":"p","selector":{"uuid":"4C4C4544-0042-3510-8052-B7C04F4B4D31"}}',
      'groups/fine.json': '{"id":"fine","profile":"p","selector":{"hostname":"node_1","platform":"metal","mac":"5254.0000.0007"}}',
    }));
    const lines = catalogue.problems.map(formatProblem);
    assert.deepEqual(lines, [
      'groups/arch.json:1:47: warning: selector.arch: "amd64" is compared as written, as matchbox does: a machine sending "x86_64" does not match',
      'groups/uuid.json:1:47: warning: selector.uuid: "4C4C4544-0042-3510-8052-B7C04F4B4D31" is compared as written, as matchbox does: a machine sending "4c4c4544-0042-3510-8052-b7c04f4b4d31" does not match',
    ]);
    assert.equal(catalogue.groups.find((g) => g.id === 'fine')?.selector.mac, '52:54:00:00:00:07');
  });

  it('refuses a MAC selector that is not a MAC, as matchbox', async (t) => {
    const catalogue = await loadCatalogue(await makeTree(t, {
      'profiles/p.json': '{"id":"p","boot":{"kernel":"http://x.invalid/k"}}',
      'groups/bad.json': '{"id":"bad","profile":"p","selector":{"mac":"52:54:00:00:07"}}',
    }));
    assert.equal(catalogue.groups.length, 0);
    assert.match(catalogue.problems.map(formatProblem).join('\n'), /groups\/bad\.json:1:45: selector\.mac: invalid mac "52:54:00:00:07": not a MAC address/);
  });

  it('writes a value a machine sent into its script only escaped', async (t) => {
    const hostname = 'node_1${x}&y';
    const { app } = await testApp(t, {
      data: await fixture({ 'groups/odd.json': JSON.stringify({ id: 'odd', profile: 'install', selector: { hostname } }) }),
      yaml: 'boot:\n  unmatched: poll\n',
      store: false,
    });
    const res = await app.inject({ url: `/ipxe?mac=52:54:00:00:00:01&hostname=${encodeURIComponent(hostname)}` });
    assert.equal(chosen(res.body).group, 'odd', res.body);
    // The group's own selector text may be named in a comment (operator data); no command has it.
    const commands = res.body.split('\n').filter((line) => !line.startsWith('#'));
    assert.ok(commands.every((line) => !line.includes('${x}') && !line.includes('&y')), res.body);
    assert.ok(res.body.includes(`hostname_hex=${Buffer.from(hostname).toString('hex')}`), res.body);
  });
});

describe('file forms matchbox loads', () => {
  it('installs, then serves the installed Ignition config by the labels the installer asks with', async (t) => {
    const { app } = await testApp(t, { data: await fixture() });
    const from = { remoteAddress: '10.0.0.10' };
    const script = await app.inject({ url: `/ipxe?mac=${MAC}`, ...from });
    assert.equal(chosen(script.body).profile, 'install', script.body);
    // The installer's URL (in its kernel arguments): the install config, from the boot.
    assert.match((await app.inject({ url: `/ignition?mac=${MAC}`, ...from })).body, /\/etc\/install"/);
    // Then it asks with os=installed (typhoon's flow): matchbox answers the installed group's config.
    const installed = await app.inject({ url: `/ignition?mac=${MAC}&os=installed`, ...from });
    assert.equal(installed.statusCode, 200, installed.body);
    assert.match(installed.body, /\/etc\/installed"/);
    // Only to the machine's own address, as every plain config URL.
    assert.equal((await app.inject({ url: `/ignition?mac=${MAC}&os=installed`, remoteAddress: '10.0.0.66' })).statusCode, 403);
  });

  it('loads an Ignition-only profile ("boot": {}), keeps its other config ids, and has a machine asking it for a script wait', async (t) => {
    const catalogue = await loadCatalogue(await makeTree(t, await fixture()));
    const installed = catalogue.profiles.get('installed');
    assert.equal(installed?.boot?.kernel, undefined);
    assert.equal(installed?.generic_id, 'installed.tmpl');
    assert.equal(installed?.cloud_id, 'installed.yaml.tmpl');
    const answer = await ipxe(t, `mac=${MAC}&os=installed`);
    assert.equal(answer.status, 200);
    assert.match(answer.body, /profile installed has no kernel \(a profile for its configs only, such as Ignition\): nothing to boot over the network/);
    assert.match(answer.body, /^sleep \d+$/m);
  });

  it('loads a profile with configs and no boot at all', async (t) => {
    const catalogue = await loadCatalogue(await makeTree(t, await fixture({ 'profiles/installed.json': '{"id":"installed","ignition_id":"installed.ign"}' })));
    assert.deepEqual(catalogue.problems.filter((p) => !isWarning(p)), []);
    assert.equal(catalogue.profiles.get('installed')?.kind, 'boot');
  });

  it('has a machine of a group without a profile wait, naming the group, and serves the group\'s metadata', async (t) => {
    const answer = await ipxe(t, 'mac=52:54:00:00:00:05');
    assert.match(answer.body, /group node5-metadata has no profile \(it carries metadata only\): nothing to boot/);
    assert.match(answer.body, /^sleep \d+$/m);
    const catalogue = await loadCatalogue(await makeTree(t, await fixture()));
    const warning = catalogue.problems.find((p) => p.source === 'groups/node5-metadata.json');
    assert.ok(warning && isWarning(warning), JSON.stringify(catalogue.problems));
    const { app } = await testApp(t, { data: await fixture(), store: false });
    const metadata = await app.inject({ url: '/metadata?mac=52-54-00-00-00-05' });
    assert.equal(metadata.statusCode, 200, metadata.body);
    assert.match(metadata.body, /^ETCD_NAME=node5$/m);
  });

  it('appends the legacy boot.cmdline map to the kernel arguments in key order, and warns', async (t) => {
    const answer = await ipxe(t, 'mac=52:54:00:00:00:01&role=legacy');
    assert.match(answer.body, /^kernel http:\/\/images\.example\.invalid\/legacy\/vmlinuz console=ttyS0 coreos.autologin coreos.config.url=http:\/\/matchbox.example.invalid\/ignition\?mac=\$\{mac:hexhyp\} coreos.first_boot=1 \|\| goto/m);
    const catalogue = await loadCatalogue(await makeTree(t, await fixture()));
    const warning = catalogue.problems.find((p) => p.source === 'profiles/legacy.json');
    assert.equal(warning && formatProblem(warning), 'profiles/legacy.json:7:16: warning: boot.cmdline: matchbox\'s legacy form: appended to the kernel arguments in key order, as matchbox v0.6 did (matchbox v0.7 and later ignore it); write them into "args"');
  });
});

describe('requests without a MAC, as matchbox answers them', () => {
  it('boots the default group, recording nothing', async (t) => {
    const { app, store } = await testApp(t, { data: await fixture({ 'groups/default.json': '{"id":"default","profile":"rescue"}' }) });
    const res = await app.inject({ url: '/ipxe' });
    assert.equal(res.statusCode, 200);
    assert.equal(chosen(res.body).group, 'default', res.body);
    assert.doesNotMatch(res.body, /\/b\/[0-9a-f]{32}\//, 'no boot id: the boot is not tracked');
    assert.deepEqual(await store?.listDevices(), []);
    // The bootstrap sends mac= empty when iPXE knows none: the same.
    assert.equal(chosen((await app.inject({ url: '/ipxe?mac=&zone=a' })).body).group, 'zone-a');
  });

  it('does not boot a profile whose Ignition config would go to no known machine', async (t) => {
    const { app } = await testApp(t, { data: await fixture({ 'groups/default.json': '{"id":"default","profile":"install"}' }) });
    const res = await app.inject({ url: '/ipxe' });
    assert.match(res.body, /profile install has an Ignition config, which is served only to the boot of a known machine: ask with mac=, or mark group default public/);
    // Public groups' configs go to anyone anyway; without boot state, as matchbox.
    const open = await testApp(t, { data: await fixture({ 'groups/default.json': '{"id":"default","profile":"install","public":true}' }) });
    assert.equal(chosen((await open.app.inject({ url: '/ipxe' })).body).profile, 'install');
    const stateless = await testApp(t, { data: await fixture({ 'groups/default.json': '{"id":"default","profile":"install"}' }), store: false });
    assert.equal(chosen((await stateless.app.inject({ url: '/ipxe' })).body).profile, 'install');
  });

  it('still answers 400 to a MAC that is not one', async (t) => {
    assert.equal((await ipxe(t, 'mac=12:34')).status, 400);
  });
});

describe('matchbox\'s other answers', () => {
  it('keeps a metadata value with a line break on its own line', async (t) => {
    const { app } = await testApp(t, { data: await fixture({ 'groups/default.json': '{"id":"default","profile":"rescue","metadata":{"motd":"a\\nFORGED=1"}}' }), store: false });
    const res = await app.inject({ url: '/metadata?mac=52:54:00:00:00:09' });
    assert.match(res.body, /^MOTD=a\\nFORGED=1$/m);
    assert.doesNotMatch(res.body, /^FORGED=/m);
  });

  it('answers GET / with 200 and its name', async (t) => {
    const { app } = await testApp(t, { data: await fixture(), store: false });
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'bootdepot\n');
  });

  it('writes /metadata as matchbox does: metadata, selectors over it, the request over both', async (t) => {
    const { app } = await testApp(t, { data: await fixture(), store: false });
    const res = await app.inject({ url: '/metadata?mac=5254.0000.0005&serial=&role=db%20a' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, await readFile(path.join(import.meta.dirname, 'golden/matchbox-metadata.env'), 'utf8'));
  });
});
