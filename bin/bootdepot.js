#!/usr/bin/env node
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
