/**
 * Which Butane variants and versions exist, and what each becomes: the base spec it builds on
 * (its fields), the Ignition spec version it emits, and the variant's own sugar. As in Butane
 * v0.25.1; an experimental version must be asked for by its `-experimental` name.
 */
import type { SchemaLevel } from './schema.ts';

export interface SpecVersion {
  variant: 'fcos' | 'flatcar';
  version: string;
  level: SchemaLevel;
  /** The Ignition spec version of the output, e.g. 3.4.0. */
  ignition: string;
  /** Ignition minor version (3.4.0 is 4): which output fields and rules apply. */
  ignitionMinor: number;
}

const VERSIONS: readonly SpecVersion[] = [
  spec('fcos', '1.0.0', { base: 1, fcos: 0 }, '3.0.0'),
  spec('fcos', '1.1.0', { base: 2, fcos: 1 }, '3.1.0'),
  spec('fcos', '1.2.0', { base: 3, fcos: 2 }, '3.2.0'),
  spec('fcos', '1.3.0', { base: 3, fcos: 3 }, '3.2.0'),
  spec('fcos', '1.4.0', { base: 4, fcos: 4 }, '3.3.0'),
  spec('fcos', '1.5.0', { base: 5, fcos: 5 }, '3.4.0'),
  spec('fcos', '1.6.0', { base: 6, fcos: 6 }, '3.5.0'),
  spec('fcos', '1.7.0-experimental', { base: 7, fcos: 7 }, '3.6.0-experimental'),
  spec('flatcar', '1.0.0', { base: 4 }, '3.3.0'),
  spec('flatcar', '1.1.0', { base: 5 }, '3.4.0'),
  spec('flatcar', '1.2.0-experimental', { base: 7 }, '3.6.0-experimental'),
];

function spec(variant: SpecVersion['variant'], version: string, level: SchemaLevel, ignition: string): SpecVersion {
  return { variant, version, level, ignition, ignitionMinor: Number(ignition.split('.')[1]) };
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export type VersionLookup = { ok: true; spec: SpecVersion } | { ok: false; message: string; field: 'variant' | 'version' };

/** Butane's first step: the variant must be given, the version must be semver, and both known. */
export function lookupVersion(variant: string, version: string): VersionLookup {
  if (variant === '') return { ok: false, field: 'variant', message: 'error parsing variant; must be specified' };
  if (!SEMVER.test(version)) return { ok: false, field: 'version', message: 'error parsing version; must be a valid semver' };
  const found = VERSIONS.find((v) => v.variant === variant && v.version === version);
  if (!found) return { ok: false, field: 'version', message: `No translator exists for variant ${variant} with version ${version}` };
  return { ok: true, spec: found };
}

export function knownVersions(): readonly SpecVersion[] {
  return VERSIONS;
}
