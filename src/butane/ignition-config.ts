/**
 * An Ignition config given inline to `ignition.config.merge` or `replace`: Butane checks it
 * as Ignition would, or warns and skips the check when its version is not the one this Butane
 * version emits. Its problems are named by their path inside that config.
 */
import { ignitionSchema, type IgnObject } from './ignition-schema.ts';
import { findDuplicates, validateIgnition } from './ignition-validate.ts';
import type { Path, Report } from './messages.ts';
import type { SpecVersion } from './versions.ts';

export function validateInlineIgnition(text: string, at: Path, spec: SpecVersion, report: Report): void {
  const inline = [...at, 'inline'];
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    report.error(inline, `config is not valid: ${(error as Error).message}`);
    return;
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    report.error(inline, 'config is not valid: not a JSON object');
    return;
  }
  const version = ((config as IgnObject)['ignition'] as IgnObject | undefined)?.['version'];
  const semver = typeof version === 'string' && /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version);
  if (semver && version !== spec.ignition) {
    report.warn([...at, 'version'], 'skipping validation for the merge/replace ignition config due to an unkown version');
    return;
  }
  const schema = ignitionSchema(spec.ignitionMinor);
  const where = report.positionOf(inline);
  const findings = [...findDuplicates(config as IgnObject, schema), ...validateIgnition(config as IgnObject, schema, spec.ignitionMinor, spec.ignition)];
  for (const finding of findings) {
    const message = `${finding.message} (in the config given at ${inline.join('.')})`;
    if (finding.warning) report.warn(finding.path, message, where);
    else report.error(finding.path, message, where);
  }
}
