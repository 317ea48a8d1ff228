/**
 * An Ignition config given inline to `ignition.config.merge` or `replace`: Butane checks it
 * as Ignition would, or warns and skips the check when its version is not the one this Butane
 * version emits. Its problems are named by their path inside that config.
 */
import { ignitionSchema, type IgnObject, type IgnSchema, type IgnType } from './ignition-schema.ts';
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
  const schema = ignitionSchema(spec.ignitionMinor);
  const shape = checkShape(config, schema);
  if (shape.errors.length > 0) {
    for (const e of shape.errors) report.error(inline, `config is not valid: ${e}`);
    return;
  }
  const version = ((config as IgnObject)['ignition'] as IgnObject | undefined)?.['version'];
  const semver = typeof version === 'string' && /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version);
  if (semver && version !== spec.ignition) {
    report.warn([...at, 'version'], 'skipping validation for the merge/replace ignition config due to an unkown version');
    return;
  }
  const where = report.positionOf(inline);
  // Ignition's order: its rules, then duplicates, then keys it does not know.
  const findings = [
    ...validateIgnition(config as IgnObject, schema, spec.ignitionMinor, spec.ignition),
    ...findDuplicates(config as IgnObject, schema),
    ...shape.unused.map((p) => ({ path: p, message: `unused key ${String(p[p.length - 1])}`, warning: true })),
  ];
  for (const finding of findings) {
    const message = `${finding.message} (in the config given at ${inline.join('.')})`;
    if (finding.warning) report.warn(finding.path, message, where);
    else report.error(finding.path, message, where);
  }
}

/** JSON values of the wrong type (Go's json.Unmarshal refuses them) and keys the spec does not have. */
function checkShape(config: unknown, schema: IgnSchema): { errors: string[]; unused: Path[] } {
  const errors: string[] = [];
  const unused: Path[] = [];
  const walk = (value: unknown, type: IgnType, p: Path): void => {
    if (value === null || value === undefined) return;
    const where = p.length > 0 ? ` at ${p.join('.')}` : '';
    if (type.kind === 'scalar') {
      const ok = type.scalar === 'string' ? typeof value === 'string' : type.scalar === 'bool' ? typeof value === 'boolean' : Number.isInteger(value);
      if (!ok) errors.push(`cannot unmarshal ${jsonType(value)} into ${type.scalar}${where}`);
      return;
    }
    if (type.kind === 'list') {
      if (!Array.isArray(value)) errors.push(`cannot unmarshal ${jsonType(value)} into a list${where}`);
      else value.forEach((item, i) => walk(item, type.of, [...p, i]));
      return;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`cannot unmarshal ${jsonType(value)} into an object${where}`);
      return;
    }
    const fields = schema.get(type.name) ?? [];
    for (const key of Object.keys(value)) if (!fields.some((f) => f.name === key)) unused.push([...p, key]);
    for (const field of fields) walk((value as IgnObject)[field.name], field.type, [...p, field.name]);
  };
  walk(config, { kind: 'struct', name: 'Config' }, []);
  return { errors, unused };
}

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? 'object' : typeof value;
}
