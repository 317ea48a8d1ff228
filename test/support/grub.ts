/** GRUB's own syntax checker (`grub-script-check`, Debian's grub-common), for the GRUB config tests. */
import { execFile } from 'node:child_process';
import type { TestContext } from 'node:test';
import { toolOrSkip, type SystemTool } from './system-tool.ts';

const CANDIDATES = ['/usr/bin/grub-script-check', '/usr/sbin/grub-script-check', '/usr/bin/grub2-script-check'];

const GRUB_SCRIPT_CHECK: SystemTool = { name: 'grub-script-check', candidates: CANDIDATES, debianPackage: 'grub-common', purpose: "to check GRUB configs with GRUB's parser" };

/** The checker, or undefined when skipped (CI installs grub-common; under CI=true absence fails). */
export function grubScriptCheckOrSkip(t: TestContext): string | undefined {
  return toolOrSkip(t, GRUB_SCRIPT_CHECK);
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
