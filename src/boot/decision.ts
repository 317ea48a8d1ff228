/**
 * The boot decision: which group a device matches and what it boots. Every script request
 * goes through {@link decideBoot}; the boot-state rules (hold, local disk, boot once) extend it
 * here rather than in the routes.
 */
import type { Config } from '../config/schema.ts';
import type { Catalogue, Group, Profile } from './catalogue.ts';

export type BootDecision =
  | { action: 'profile'; profile: Profile; group: Group | undefined; reason: string }
  | { action: 'poll'; interval: number; group: Group | undefined; reason: string }
  | { action: 'notFound'; reason: string };

/** matchbox semantics: a group matches when every selector equals the device's label. */
export function matchGroup(groups: readonly Group[], labels: Readonly<Record<string, string>>): Group | undefined {
  // `groups` is kept in precedence order by the catalogue, so the first match is the winner.
  return groups.find((group) => Object.entries(group.selector).every(([key, value]) => labels[key] === value));
}

function describeSelector(group: Group): string {
  return group.selectorKey === '' ? 'default group' : `selector ${group.selectorKey}`;
}

export interface DecideInput {
  catalogue: Catalogue;
  labels: Readonly<Record<string, string>>;
  boot: Pick<Config['boot'], 'unmatched' | 'unmatchedProfile' | 'pollInterval'>;
}

export function decideBoot(input: DecideInput): BootDecision {
  const { catalogue, labels, boot } = input;
  const pollInterval = boot.pollInterval;
  const group = matchGroup(catalogue.groups, labels);
  if (group) {
    const profile = catalogue.profiles.get(group.profile);
    if (!profile) {
      return {
        action: 'poll',
        interval: pollInterval,
        group,
        reason: `group ${group.id} names profile ${group.profile}, which is not loaded`,
      };
    }
    return { action: 'profile', profile, group, reason: `group ${group.id} matched (${describeSelector(group)})` };
  }
  switch (boot.unmatched) {
    case 'notFound':
      return { action: 'notFound', reason: 'no group matches this machine' };
    case 'poll':
      return { action: 'poll', interval: pollInterval, group: undefined, reason: 'no group matches this machine' };
    case 'profile': {
      const profile = catalogue.profiles.get(boot.unmatchedProfile);
      if (!profile) {
        return {
          action: 'poll',
          interval: pollInterval,
          group: undefined,
          reason: `no group matches and the unmatched profile ${boot.unmatchedProfile} is not loaded`,
        };
      }
      return { action: 'profile', profile, group: undefined, reason: `no group matches; boot.unmatched boots profile ${profile.id}` };
    }
  }
}
