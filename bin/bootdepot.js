#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 (MiB): a file server makes little short-lived garbage, and V8's
// default young generation (up to 3 x 16 MiB) would otherwise settle into RSS under load.
// The same flag is in `npm start`, the Dockerfile and the benchmark.
// The CLI runs the TypeScript sources directly (Node's built-in type stripping), so the only
// requirement is a Node that has it. Say so plainly instead of failing on the first `.ts` import.
const [major] = process.versions.node.split('.').map(Number);
if (major === undefined || major < 24) {
  process.stderr.write(
    `bootdepot needs Node.js 24 or newer; this is ${process.version} (${process.execPath}).\n` +
      'Run it through npm (`npm start`, `npx bootdepot`), which uses the Node 24 from node_modules,\n' +
      'or put Node 24 first on PATH.\n',
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
