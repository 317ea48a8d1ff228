/** Running the `bootdepot` command from any working directory, and copying the repository's layout for it. */
import { cp, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { makeTree, REPO_ROOT, runBootdepotIn } from '../helpers.ts';

export const BIN = path.join(REPO_ROOT, 'bin/bootdepot.js');

/** Runs `bootdepot ARGS` with `cwd` as the working directory, killed after `timeoutMs`. */
export const runIn = runBootdepotIn;

/** A temp directory laid out like a checkout: config/ (shipped config and demo data) and assets/. */
export async function repoLayout(t: TestContext): Promise<string> {
  const dir = await makeTree(t, {});
  for (const part of ['config/bootdepot.yaml', 'config/data/groups', 'config/data/ignition', 'config/data/profiles', 'assets']) {
    await cp(path.join(REPO_ROOT, part), path.join(dir, part), { recursive: true });
  }
  return dir;
}

/** Every file and directory under `dir` with its size and mtime, to show that nothing was written. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    const info = await stat(full);
    result.set(path.relative(dir, full), entry.isDirectory() ? 'dir' : `${info.size} ${info.mtimeMs}`);
  }
  return result;
}
