/**
 * Where each part of the generated Ignition config came from in the Butane config, so that a
 * problem found in the output is reported at the field the operator wrote (Butane's translation
 * set, kept per object instead of per path). Without a recorded origin, a camelCase path is
 * turned into snake_case, as Butane does.
 */
import type { Path } from './messages.ts';

interface Origin {
  path: Path;
  /** Output fields that came from a differently named source field (`source` from `inline`). */
  renames?: Record<string, Path>;
}

export function snake(name: string): string {
  return name.replace(/(MiB|[A-Z])/g, '_$1').toLowerCase();
}

export function camel(name: string): string {
  const base = name.endsWith('_mib') ? `${name.slice(0, -4)}MiB` : name;
  return base.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replaceAll('_', '');
}

export class Origins {
  private readonly origins = new WeakMap<object, Origin>();

  set(object: object, path: Path, renames?: Record<string, Path>): void {
    const known = this.origins.get(object);
    const merged = { ...known?.renames, ...renames };
    this.origins.set(object, { path, ...(Object.keys(merged).length > 0 ? { renames: merged } : {}) });
  }

  rename(object: object, field: string, from: Path): void {
    const known = this.origins.get(object);
    if (known) this.origins.set(object, { path: known.path, renames: { ...known.renames, [field]: from } });
  }

  /** The same origin for a copy of an object. */
  copy(from: object, to: object): void {
    const known = this.origins.get(from);
    if (known) this.origins.set(to, known);
  }

  /** The Butane path of a path in the output config. */
  resolve(root: unknown, jsonPath: Path): Path {
    let base: Path = [];
    let rest: (string | number)[] = [];
    let current: unknown = root;
    let renames: Record<string, Path> | undefined;
    for (const segment of jsonPath) {
      const origin = typeof current === 'object' && current !== null ? this.origins.get(current) : undefined;
      if (origin) {
        base = origin.path;
        rest = [];
        renames = origin.renames;
      }
      const renamed = typeof segment === 'string' ? renames?.[segment] : undefined;
      if (renamed) {
        base = [...base, ...rest, ...renamed];
        rest = [];
      } else {
        rest.push(typeof segment === 'string' ? snake(segment) : segment);
      }
      renames = undefined;
      current = typeof current === 'object' && current !== null ? (current as Record<string | number, unknown>)[segment] : undefined;
    }
    const last = typeof current === 'object' && current !== null ? this.origins.get(current) : undefined;
    return last ? last.path : [...base, ...rest];
  }
}
