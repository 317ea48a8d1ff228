#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 (MiB): a file server makes little short-lived garbage, and V8's
// default young generation (up to 3 x 16 MiB) would otherwise settle into RSS under load.
// The same flag is in `npm start`, the Dockerfile and the benchmark.
//
// The CLI runs the compiled JavaScript in dist/ (written by `npm ci` / `npm run build`) when it
// is at least as new as every source file, and the TypeScript sources directly (Node's built-in
// type stripping) otherwise, so an edited checkout never runs stale code. The build saves the
// memory and start-up time of stripping types at run time.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [major] = process.versions.node.split('.').map(Number);
if (major === undefined || major < 24) {
  process.stderr.write(
    `bootdepot needs Node.js 24 or newer; this is ${process.version} (${process.execPath}).\n` +
      'Run it through npm (`npm start`, `npx bootdepot`), which uses the Node 24 from node_modules,\n' +
      'or put Node 24 first on PATH.\n',
  );
  process.exit(1);
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** True when dist/ holds a build newer than every file under src/ (or there are no sources, as in the image). */
function buildIsCurrent() {
  let builtAt;
  try {
    builtAt = statSync(path.join(root, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    return false;
  }
  if (!existsSync(path.join(root, 'src'))) return true;
  for (const entry of readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(path.join(entry.parentPath, entry.name)).mtimeMs > builtAt) return false;
  }
  return true;
}

await import(buildIsCurrent() ? '../dist/cli/main.js' : '../src/cli/main.ts');
