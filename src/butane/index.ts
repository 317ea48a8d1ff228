/**
 * Butane to Ignition, as Butane v0.25.1 does it, for the variants and versions in versions.ts.
 * Operators coming from matchbox keep Butane configs (`.bu`, `.yaml`) with their Ignition
 * configs; bootdepot serves what Butane would have produced, with Butane's warnings and errors.
 *
 * The steps, in Butane's order: read the YAML; find the variant and version; decode by that
 * version's schema; warn of unused keys; validate the source; translate; add the sugar (mount
 * units, trees, the variant's boot disk and GRUB); refuse what the variant filters out; validate
 * the Ignition config that came out.
 */
import { decodeConfig, unusedKeys } from './decode.ts';
import { bootDeviceConfig, grubConfig, wrongPartitionNumbers } from './fcos.ts';
import { ignitionSchema } from './ignition-schema.ts';
import { findDuplicates, validateIgnition } from './ignition-validate.ts';
import { mergeConfigs } from './merge.ts';
import { Report, type ButaneMessage } from './messages.ts';
import { mountUnits } from './mount-units.ts';
import { Origins } from './origins.ts';
import { toOutput } from './output.ts';
import { schemaFor } from './schema.ts';
import { translateConfig } from './translate.ts';
import { addTrees } from './trees.ts';
import { validateButane } from './validate-butane.ts';
import { forbiddenFields } from './variants.ts';
import { lookupVersion } from './versions.ts';
import { indexPositions, parseTree } from './yaml-tree.ts';
import type { ButaneObject } from './decode.ts';
import { text } from './values.ts';

export type { ButaneMessage } from './messages.ts';
export { formatButaneMessage, toProblem } from './messages.ts';
export { serializeIgnition } from './output.ts';

export type ButaneResult =
  | { ok: true; ignition: Record<string, unknown>; warnings: ButaneMessage[] }
  | { ok: false; errors: ButaneMessage[]; warnings: ButaneMessage[] };

export interface ButaneOptions {
  /** The directory `local:`, `contents_local`, `ssh_authorized_keys_local` and trees read from (Butane's --files-dir). */
  filesDir?: string;
  /** Warnings are errors (Butane's --strict). */
  strict?: boolean;
}

const HEAD = new Map([['Config', [
  { name: 'version', type: { kind: 'scalar', scalar: 'string' } as const, optional: false },
  { name: 'variant', type: { kind: 'scalar', scalar: 'string' } as const, optional: false },
]]]);

export async function transpileButane(source: string, options: ButaneOptions = {}): Promise<ButaneResult> {
  const tree = parseTree(source);
  if (!tree.ok) {
    return { ok: false, errors: [{ path: '', message: `YAML syntax error: ${tree.message}`, ...(tree.at ? { line: tree.at.line, column: tree.at.column } : {}) }], warnings: [] };
  }
  const report = new Report(indexPositions(tree.root));
  const fail = (): ButaneResult => ({ ok: false, errors: report.errors, warnings: report.warnings });

  const head = decodeConfig(tree.root, HEAD);
  for (const e of head.errors) report.error(e.path, e.message, e.at);
  if (report.fatal) return fail();
  const found = lookupVersion(text(head.value['variant']), text(head.value['version']));
  if (!found.ok) {
    report.error(found.field === 'variant' && head.value['variant'] === undefined ? [] : [found.field], found.message);
    return fail();
  }
  const spec = found.spec;
  const schema = schemaFor(spec.level);

  const decoded = decodeConfig(tree.root, schema);
  for (const e of decoded.errors) report.error(e.path, e.message, e.at);
  if (report.fatal) return fail();
  const config = decoded.value;
  for (const unused of unusedKeys(tree.root, schema)) report.warnKey(unused.path, `unused key ${unused.key}`);

  validateButane(config, schema, spec, report);
  if (report.fatal) return fail();

  const origins = new Origins();
  const ignSchema = ignitionSchema(spec.ignitionMinor);
  let ignition = await translateConfig(config, spec.ignition, { schema, filesDir: options.filesDir, report, origins });
  const storage = config['storage'] as ButaneObject | undefined;
  const units = mountUnits(storage, origins);
  if (units) ignition = mergeConfigs(units, ignition, ignSchema, origins);
  await addTrees(ignition, (storage?.['trees'] as ButaneObject[] | undefined) ?? [], options.filesDir, report, origins);
  if (report.fatal) return fail();

  if (spec.variant === 'fcos') {
    const boot = bootDeviceConfig(config['boot_device'] as ButaneObject | undefined, origins);
    if (boot) ignition = mergeConfigs(boot, ignition, ignSchema, origins);
    for (const p of wrongPartitionNumbers(ignition)) {
      report.warn(origins.resolve(ignition, p), 'incorrect partition number; a new partition will be created using reserved label');
    }
    const grub = grubConfig(config['grub'] as ButaneObject | undefined, origins);
    if (grub) ignition = mergeConfigs(grub, ignition, ignSchema, origins);
  }

  const output = toOutput(ignition, spec.ignitionMinor, origins);
  for (const f of forbiddenFields(output, spec, ignSchema)) report.error(origins.resolve(output, f.path), f.message);
  if (report.fatal) return fail();

  for (const finding of [...findDuplicates(output, ignSchema), ...validateIgnition(output, ignSchema, spec.ignitionMinor, spec.ignition)]) {
    const at = origins.resolve(output, finding.path);
    if (finding.warning) report.warn(at, finding.message);
    else report.error(at, finding.message);
  }
  if (report.fatal) return fail();

  if (options.strict && report.warnings.length > 0) {
    return { ok: false, errors: [...report.warnings], warnings: [] };
  }
  return { ok: true, ignition: output, warnings: report.warnings };
}
