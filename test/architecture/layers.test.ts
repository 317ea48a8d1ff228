/**
 * The folders of src/ import one way: each only from the folders below it in LAYERS. A new
 * import that goes up (a folder-level cycle in the making) fails here, naming the file.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';

const SRC = path.join(import.meta.dirname, '../../src');

/**
 * Bottom first: shared vocabulary (identity, escaping, problems) beside the pure transpilers
 * (Butane to Ignition, Go templates), the HTTP-file and HTTP
 * toolkits, the mirror, config (which holds the mirror's fragment), boot state, the boot
 * decision, the admin API beside site mode (an origin's site endpoints, a site's sync and
 * reports), the dashboard, the app and server (src/ itself), the command line.
 */
const LAYERS = [['common', 'butane', 'gotemplate'], ['assets', 'http'], 'mirror', 'config', 'state', 'boot', ['api', 'site'], 'ui', '.', 'cli'] as const;

function layerOf(folder: string): number {
  const index = LAYERS.findIndex((layer) => (typeof layer === 'string' ? layer === folder : (layer as readonly string[]).includes(folder)));
  assert.ok(index >= 0, `folder src/${folder} is in no layer: add it to LAYERS`);
  return index;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => path.join(e.parentPath, e.name));
}

function folderOf(file: string): string {
  const relative = path.relative(SRC, file).split(path.sep);
  return relative.length > 1 ? (relative[0] ?? '.') : '.';
}

describe('layers', () => {
  it('imports only downward between the folders of src/', async () => {
    const wrong: string[] = [];
    let imports = 0;
    for (const file of await sourceFiles(SRC)) {
      const text = await readFile(file, 'utf8');
      const from = folderOf(file);
      for (const match of text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), match[1] ?? '');
        if (!target.startsWith(SRC + path.sep)) continue; // package.json and the like
        const to = folderOf(target);
        if (to === from) continue;
        imports += 1;
        if (layerOf(to) >= layerOf(from)) wrong.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)} (${from} may not depend on ${to})`);
      }
    }
    assert.ok(imports > 20, `found ${imports} imports between folders: is the pattern still right?`);
    assert.deepEqual(wrong, []);
  });

  it('would catch an upward import', () => {
    assert.ok(layerOf('common') < layerOf('boot'));
    assert.ok(layerOf('boot') > layerOf('state'));
    assert.ok(layerOf('mirror') < layerOf('boot'));
    assert.equal(layerOf('assets'), layerOf('http'));
  });
});
