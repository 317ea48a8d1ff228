/**
 * The problems a data directory has beyond its files' own: what each group's machines would get
 * if they booted now. Every group's script is rendered (with its Ignition config) for a machine
 * that group would match, so a missing image or a template that fails on a group's metadata is
 * found before a machine finds it. `bootdepot check` and the running server (its log and
 * `bootdepot_data_problems`) report the same list, from this one function.
 */
import type { AssetReader } from '../assets/asset-root.ts';
import type { Config } from '../config/schema.ts';
import { formatProblem, type Problem } from '../common/problems.ts';
import { bootsAnything, type Catalogue } from './catalogue.ts';
import { unservableConfigs } from './device-configs.ts';
import { parseDevice } from '../common/identity.ts';
import type { RenderContext } from './render-context.ts';
import { renderDeviceScript } from './render.ts';

/** What the audit gives the Flatcar kind for the mirror: it never reads (resolveFlatcarCurrent is off). */
const OFFLINE_MIRROR = { readText: () => Promise.reject(new Error('the data audit does not contact upstreams')) };

/** A MAC for groups that do not select on one: locally administered, never a real NIC's. */
const SAMPLE_MAC = '02:00:00:00:00:01';

export interface AuditInput {
  config: Pick<Config, 'boot' | 'server' | 'source'>;
  catalogue: Catalogue;
  assets: AssetReader;
}

export async function auditCatalogue({ config, catalogue, assets }: AuditInput): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const group of catalogue.groups) {
    const device = parseDevice({ mac: SAMPLE_MAC, ...group.selector });
    const ctx: RenderContext = {
      baseUrl: config.server.baseUrl ?? 'http://bootdepot.invalid',
      device,
      catalogue,
      assets,
      // A broken group file is a problem of its own; each group is checked for its own problems.
      boot: { ...config.boot, brokenGroups: 'ignore' },
      // Validation must not depend on the internet: Flatcar `current` stays unresolved here.
      mirror: OFFLINE_MIRROR,
      resolveFlatcarCurrent: false,
    };
    const script = await renderDeviceScript(ctx);
    const decided = script.decision.action === 'profile' ? script.decision.profile : undefined;
    if (decided && !bootsAnything(decided)) {
      // A profile for its configs only (matchbox's Ignition-only profiles): its machines are
      // meant to ask for configs, not scripts; what can go wrong is its configs.
      for (const failed of await unservableConfigs({ profile: decided, group }, ctx)) {
        problems.push({ source: group.file, message: `its machines' config would fail: ${failed.message}` });
        if (failed.problem && !problems.some((p) => formatProblem(p) === formatProblem(failed.problem as Problem))) problems.push(failed.problem);
      }
      continue;
    }
    // A missing profile is already a problem of the group file itself.
    if (script.problem && script.decision.action === 'profile') {
      problems.push({ source: group.file, message: `its machines would wait: ${script.problem}` });
      // A config file that fails for this group's machines is that file's problem too, once.
      for (const fileProblem of script.fileProblems ?? []) {
        if (!problems.some((p) => formatProblem(p) === formatProblem(fileProblem))) problems.push(fileProblem);
      }
    }
  }
  if (config.boot.unmatched === 'profile' && !catalogue.profiles.has(config.boot.unmatchedProfile)) {
    problems.push({ source: config.source, path: 'boot.unmatchedProfile', message: `profile "${config.boot.unmatchedProfile}" is not loaded` });
  }
  return problems;
}
