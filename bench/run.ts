/**
 * `npm run bench [-- SECTION...]`: runs the benchmarks (all, or the named sections: assets,
 * scripts, mirror, store, storm) and rewrites their sections of docs/benchmarks.md, keeping the others. Not part of
 * the tests. Each section's module says what it measures and how.
 *
 * `npm run bench -- cache-tests` runs only when named: it needs a checkout of the cache-tests
 * suite (CACHE_TESTS_DIR) and writes its section of docs/mirror.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assetsBenchmark } from './assets.ts';
import { cacheTestsBenchmark } from './cache-tests.ts';
import { mirrorBenchmark } from './mirror.ts';
import { scriptsBenchmark } from './scripts.ts';
import { storeBenchmark } from './store.ts';
import { stormBenchmark } from './storm.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = path.join(REPO, 'docs', 'benchmarks.md');

const SECTIONS: Record<string, () => Promise<string>> = { assets: assetsBenchmark, scripts: scriptsBenchmark, mirror: mirrorBenchmark, store: storeBenchmark, storm: stormBenchmark };

/** Sections run only when named, each written to its own page (nothing is written when it returns undefined). */
const ON_REQUEST: Record<string, { run: () => Promise<string | undefined>; doc: string }> = {
  'cache-tests': { run: cacheTestsBenchmark, doc: path.join(REPO, 'docs', 'mirror.md') },
};

const HEADER = `# Benchmarks

Written by \`npm run bench\`; \`npm run bench -- NAME\` reruns one section (${Object.keys(SECTIONS).join(', ')}) and
keeps the others. Numbers come from this project's 2-CPU machines; rerun on yours.
\`npm run bench -- cache-tests\` (the cache-tests suite against the mirror and nginx) runs only
when named and writes docs/mirror.md.
`;

function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from >= 0 && to > from) return `${doc.slice(0, from)}${block}${doc.slice(to + end.length)}`;
  return `${doc.trimEnd()}\n\n${block}\n`;
}

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const unknown = requested.filter((name) => !(name in SECTIONS) && !(name in ON_REQUEST));
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}: expected ${[...Object.keys(SECTIONS), ...Object.keys(ON_REQUEST)].join(', ')}`);
  for (const name of requested) {
    const section = ON_REQUEST[name];
    if (!section) continue;
    const body = await section.run();
    if (body === undefined) continue;
    await writeFile(section.doc, replaceSection(await readFile(section.doc, 'utf8'), name, body));
    process.stderr.write(`[bench] ${name}: wrote ${path.relative(REPO, section.doc)}\n`);
  }
  const sections = requested.length > 0 ? requested.filter((name) => name in SECTIONS) : Object.keys(SECTIONS);
  if (sections.length === 0) return;
  let doc = await readFile(DOC, 'utf8').catch(() => '');
  if (!doc.startsWith('# Benchmarks')) doc = HEADER;
  for (const name of sections) {
    const body = await (SECTIONS[name] as () => Promise<string>)();
    doc = replaceSection(doc, name, body);
    await writeFile(DOC, doc);
    process.stderr.write(`[bench] ${name}: wrote ${path.relative(REPO, DOC)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
