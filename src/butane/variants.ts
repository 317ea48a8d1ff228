/**
 * What a variant refuses of the base spec (Butane's field filters): Flatcar has no Clevis in
 * its initramfs, and no CEX.
 */
import { isEmpty, type IgnObject, type IgnSchema } from './ignition-schema.ts';
import type { Path } from './messages.ts';
import type { SpecVersion } from './versions.ts';

const FILTERS: Readonly<Record<string, readonly { field: 'clevis' | 'cex'; type: string; message: string }[]>> = {
  flatcar: [
    { field: 'clevis', type: 'Clevis', message: 'clevis is not supported in this spec version' },
    { field: 'cex', type: 'Cex', message: 'cex is not currently supported on the target platform' },
  ],
};

/** Paths (in the Ignition config) of fields the variant forbids and the config sets. */
export function forbiddenFields(config: IgnObject, spec: SpecVersion, schema: IgnSchema): { path: Path; message: string }[] {
  const found: { path: Path; message: string }[] = [];
  const luks = ((config['storage'] as IgnObject | undefined)?.['luks'] as IgnObject[] | undefined) ?? [];
  for (const filter of FILTERS[spec.variant] ?? []) {
    if (!schema.has(filter.type)) continue;
    luks.forEach((entry, i) => {
      if (!isEmpty(entry[filter.field], { type: { kind: 'struct', name: filter.type }, pointer: false }, schema)) {
        found.push({ path: ['storage', 'luks', i, filter.field], message: filter.message });
      }
    });
  }
  return found;
}
