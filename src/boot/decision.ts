/**
 * The boot decision: which group a device matches and what it boots. Every script request
 * goes through {@link decideBoot}; the boot-state rules (hold, local disk, boot once) extend it
 * here rather than in the routes.
 */
import type { Config } from '../config/schema.ts';
import type { NextBoot } from '../state/model.ts';
import type { BrokenGroup, Catalogue, Group, Profile } from './catalogue.ts';

export type BootDecision =
  /**
   * Boot a profile. `once` marks an operator's one-time boot, consumed when it starts;
   * `unmatched`: no group matched, and this is `boot.unmatched: profile`'s fallback.
   */
  | { action: 'profile'; profile: Profile; group: Group | undefined; reason: string; once?: boolean; unmatched?: boolean }
  /** Wait and ask again; `broken` when it is because of data that does not load. */
  | { action: 'poll'; interval: number; group: Group | undefined; reason: string; broken?: boolean }
  /** Held by the operator: wait and ask again until released. */
  | { action: 'hold'; interval: number; group: Group | undefined; reason: string }
  /** Boot the local disk. */
  | { action: 'local'; group: Group | undefined; reason: string }
  | { action: 'notFound'; reason: string };

/**
 * matchbox semantics: a group matches when every selector equals the device's label. A label
 * the device did not send reads as empty, as in matchbox (a Go map's missing value), so a
 * selector with an empty value matches machines that do not send that label.
 */
export function groupMatches(group: Pick<Group, 'selector'>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(group.selector).every(([key, value]) => (labels[key] ?? '') === value);
}

export function matchGroup(groups: readonly Group[], labels: Readonly<Record<string, string>>): Group | undefined {
  // `groups` is kept in precedence order by the catalogue, so the first match is the winner.
  return groups.find((group) => groupMatches(group, labels));
}

function describeSelector(group: Group): string {
  return group.selectorKey === '' ? 'default group' : `selector ${group.selectorKey}`;
}

/**
 * The broken group files that might select this device over the group it matches now, so that
 * its decision depends on them. A broken group concerns a device when every selector value that
 * could be read equals the device's label (a value that could not be read may be anything), and
 * it has at least as many selectors as the device's match (more selectors win; with as many the
 * tie-break could go either way). A file that could not be parsed at all concerns every device.
 */
export function brokenGroupsConcerning(catalogue: Catalogue, labels: Readonly<Record<string, string>>, matched: Group | undefined): BrokenGroup[] {
  const matchedSize = matched ? Object.keys(matched.selector).length : -1;
  return catalogue.brokenGroups.filter((broken) => {
    if (!broken.selector) return true;
    const entries = Object.entries(broken.selector);
    if (entries.length < matchedSize) return false;
    return entries.every(([key, value]) => value === undefined || (labels[key] ?? '') === value);
  });
}

export interface DecideInput {
  catalogue: Catalogue;
  labels: Readonly<Record<string, string>>;
  boot: Pick<Config['boot'], 'unmatched' | 'unmatchedProfile' | 'pollInterval'> & Partial<Pick<Config['boot'], 'brokenGroups'>>;
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
  if ((boot.brokenGroups ?? 'wait') === 'wait') {
    const broken = brokenGroupsConcerning(catalogue, labels, group);
    if (broken[0]) {
      const more = broken.length > 1 ? ` (and ${broken.length - 1} more broken group file(s))` : '';
      return { action: 'poll', interval: pollInterval, group, reason: `group file ${broken[0].file} does not load and may select this machine: ${broken[0].problem}${more}`, broken: true };
    }
  }
  if (group) {
    // matchbox selects it all the same (over less specific groups) and answers 404: nothing to boot.
    if (group.profile === undefined) return { action: 'poll', interval: pollInterval, group, reason: `group ${group.id} has no profile (it carries metadata only): nothing to boot` };
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
      return { action: 'profile', profile, group: undefined, reason: `no group matches; boot.unmatched boots profile ${profile.id}`, unmatched: true };
    }
  }
}
