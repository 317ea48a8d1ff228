/** GRUB's own syntax checker (`grub-script-check`, Debian's grub-common), for the GRUB config tests. */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { TestContext } from 'node:test';

const CANDIDATES = ['/usr/bin/grub-script-check', '/usr/sbin/grub-script-check', '/usr/bin/grub2-script-check'];

function findGrubScriptCheck(): string | undefined {
  for (const candidate of CANDIDATES) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * The skip rule, as for nginx: without the checker the test skips loudly, except under CI=true,
 * where it fails (CI installs grub-common). Returns the binary, or undefined when skipped.
 */
export function grubScriptCheckOrSkip(t: TestContext): string | undefined {
  const binary = findGrubScriptCheck();
  if (binary) return binary;
  const reason = `grub-script-check is not installed (looked for ${CANDIDATES.join(', ')})`;
  if (process.env.CI === 'true') throw new Error(`${reason}. Under CI=true this fails instead of skipping: install grub-common (apt-get install grub-common).`);
  console.warn(`\n*** SKIPPED ${t.fullName}: ${reason}. Install grub-common to check GRUB configs with GRUB's parser. ***\n`);
  t.skip(reason);
  return undefined;
}

/** Runs the checker on a file: its exit code and what it printed. */
export function grubScriptCheck(binary: string, file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(binary, [file], { timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}
