import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCatalogue } from '../../src/boot/catalogue.ts';
import { decideBoot, matchGroup } from '../../src/boot/decision.ts';
import { parseDevice } from '../../src/common/identity.ts';
import { makeTree, testConfig } from '../helpers.ts';

const profile = (id: string) => JSON.stringify({ id, boot: { kernel: `/assets/${id}/vmlinuz` } });
const group = (id: string, selector: Record<string, string> | undefined, profileId = 'p') => JSON.stringify({ id, profile: profileId, ...(selector ? { selector } : {}) });

describe('group matching precedence', () => {
  const groups = {
    'groups/default.json': group('default', undefined),
    'groups/by-mac.json': group('by-mac', { mac: '52-54-00-12-34-56' }),
    'groups/by-mac-and-os.json': group('by-mac-and-os', { mac: '52:54:00:12:34:56', os: 'installed' }),
    'groups/by-arch.json': group('by-arch', { arch: 'arm64' }),
    'groups/by-region.json': group('by-region', { region: 'ams' }),
    'groups/by-zone.json': group('by-zone', { zone: 'a' }),
    'profiles/p.json': profile('p'),
  };
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['the default group when nothing else matches', { mac: '52:54:00:00:00:01' }, 'default'],
    ['a MAC selector written in hyphen form', { mac: '52:54:00:12:34:56' }, 'by-mac'],
    ['more selectors over fewer', { mac: '52:54:00:12:34:56', os: 'installed' }, 'by-mac-and-os'],
    ['an arch as iPXE sends it', { mac: '52:54:00:00:00:01', arch: 'arm64' }, 'by-arch'],
    ['an arch alias compared as given, as matchbox', { mac: '52:54:00:00:00:01', arch: 'aarch64' }, 'default'],
    ['a partial match is no match', { mac: '52:54:00:00:00:01', os: 'installed' }, 'default'],
    // by-region and by-zone both have one selector: as in matchbox, the greater selector text is tried first (zone=a > region=ams).
    ['ties broken by the sorted selector text, greater first', { mac: '52:54:00:00:00:01', region: 'ams', zone: 'a' }, 'by-zone'],
    ['label values compared exactly', { mac: '52:54:00:00:00:01', region: 'AMS' }, 'default'],
  ];
  for (const [name, query, expected] of cases) {
    it(name, async (t) => {
      const dir = await makeTree(t, groups);
      const catalogue = await loadCatalogue(dir);
      assert.deepEqual(catalogue.problems, []);
      assert.equal(matchGroup(catalogue.groups, parseDevice(query).labels)?.id, expected);
    });
  }

  it('gives the same winner whatever order the files load in', async (t) => {
    // Same groups under names that sort the other way round.
    const dir = await makeTree(t, {
      'groups/a.json': group('zone-group', { zone: 'a' }),
      'groups/b.json': group('region-group', { region: 'ams' }),
      'profiles/p.json': profile('p'),
    });
    const catalogue = await loadCatalogue(dir);
    assert.equal(matchGroup(catalogue.groups, { region: 'ams', zone: 'a' })?.file, 'groups/a.json');
  });
});

describe('decideBoot', () => {
  it('follows boot.unmatched for machines no group matches', async (t) => {
    const dir = await makeTree(t, { 'groups/only.json': group('only', { mac: '52:54:00:12:34:56' }), 'profiles/p.json': profile('p'), 'profiles/rescue.json': profile('rescue') });
    const catalogue = await loadCatalogue(dir);
    const labels = { mac: '52:54:00:00:00:09' };
    const poll = testConfig(dir, dir).boot;
    assert.equal(decideBoot({ catalogue, labels, boot: poll }).action, 'poll');
    assert.equal(decideBoot({ catalogue, labels, boot: { ...poll, unmatched: 'notFound' } }).action, 'notFound');
    const byProfile = decideBoot({ catalogue, labels, boot: { ...poll, unmatched: 'profile', unmatchedProfile: 'rescue' } });
    assert.equal(byProfile.action === 'profile' && byProfile.profile.id, 'rescue');
    const missing = decideBoot({ catalogue, labels, boot: { ...poll, unmatched: 'profile', unmatchedProfile: 'gone' } });
    assert.equal(missing.action, 'poll');
    assert.match(missing.reason, /gone is not loaded/);
  });

  it('makes a machine wait, rather than fall through, when its group names a missing profile', async (t) => {
    const dir = await makeTree(t, { 'groups/mine.json': group('mine', { mac: '52:54:00:12:34:56' }, 'missing'), 'groups/default.json': group('default', undefined), 'profiles/p.json': profile('p') });
    const catalogue = await loadCatalogue(dir);
    const decision = decideBoot({ catalogue, labels: { mac: '52:54:00:12:34:56' }, boot: testConfig(dir, dir).boot });
    assert.equal(decision.action, 'poll');
    assert.match(decision.reason, /group mine names profile missing/);
  });
});
