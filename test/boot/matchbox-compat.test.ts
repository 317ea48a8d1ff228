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
  for (const dir of ['groups', 'profiles', 'ignition']) {
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
      ['region-ams-zone-a', 'region-ams-rack-9', 'node1-installed', 'zone-a', 'workers', 'rack-1', 'node1', 'default'],
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
