/**
 * The boot decision: which group a device matches and what it boots. Every script request
 * goes through {@link decideBoot}; the boot-state rules (hold, local disk, boot once) extend it
 * here rather than in the routes.
 */
import type { Config } from '../config/schema.ts';
import type { NextBoot } from '../state/model.ts';
import type { Catalogue, Group, Profile } from './catalogue.ts';

export type BootDecision =
  /** Boot a profile. `once` marks an operator's one-time boot, consumed when it starts. */
  | { action: 'profile'; profile: Profile; group: Group | undefined; reason: string; once?: boolean }
  | { action: 'poll'; interval: number; group: Group | undefined; reason: string }
  /** Held by the operator: wait and ask again until released. */
  | { action: 'hold'; interval: number; group: Group | undefined; reason: string }
  /** Boot the local disk. */
  | { action: 'local'; group: Group | undefined; reason: string }
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
  /** The device's recorded next boot, when the store knows one. */
  nextBoot?: NextBoot | null;
}

/** The operator's word comes first: hold, local disk, a one-time or pinned profile. */
function decideByNextBoot(input: DecideInput, nextBoot: NextBoot, group: Group | undefined): BootDecision | undefined {
  const why = `next boot set to ${nextBoot.action}${nextBoot.profile ? ` ${nextBoot.profile}` : ''}: ${nextBoot.reason}`;
  switch (nextBoot.action) {
    case 'hold':
      return { action: 'hold', interval: input.boot.pollInterval, group, reason: why };
    case 'local':
      return { action: 'local', group, reason: why };
    case 'once':
    case 'profile': {
      if (nextBoot.profile === undefined) return undefined;
      const profile = input.catalogue.profiles.get(nextBoot.profile);
      if (!profile) return { action: 'poll', interval: input.boot.pollInterval, group, reason: `${why}; profile ${nextBoot.profile} is not loaded` };
      return { action: 'profile', profile, group, reason: why, ...(nextBoot.action === 'once' ? { once: true } : {}) };
    }
  }
}

export function decideBoot(input: DecideInput): BootDecision {
  const { catalogue, labels, boot } = input;
  const pollInterval = boot.pollInterval;
  const group = matchGroup(catalogue.groups, labels);
  if (input.nextBoot) {
    const decided = decideByNextBoot(input, input.nextBoot, group);
    if (decided) return decided;
  }
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
