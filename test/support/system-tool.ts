/**
 * System tools the tests use (nginx, Chromium, grub-script-check, ...): finding the binary, and
 * the one skip rule. Without the tool a test skips loudly (a warning on stderr and the reason in
 * the report), except under CI=true, where it fails: CI must run every test.
 */
import { accessSync, constants } from 'node:fs';
import type { TestContext } from 'node:test';

export interface SystemTool {
  /** What to call it in messages, e.g. `nginx`. */
  name: string;
  candidates: readonly string[];
  /** An environment variable that, when set, is the only candidate. */
  override?: string;
  /** The Debian package that provides it. */
  debianPackage: string;
  /** What the skipped test would have done, for the warning, e.g. `to run the comparison`. */
  purpose: string;
}

/** The first executable candidate (only the override, when it is set), or undefined. */
export function findTool(tool: SystemTool): string | undefined {
  const override = tool.override ? process.env[tool.override] : undefined;
  for (const candidate of override ? [override] : tool.candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The binary, or undefined after skipping the test; throws under CI=true. */
export function toolOrSkip(t: TestContext, tool: SystemTool): string | undefined {
  const binary = findTool(tool);
  if (binary) return binary;
  const override = tool.override ? process.env[tool.override] : undefined;
  const reason =
    override && tool.override
      ? `${tool.name} not found at ${tool.override}=${override}`
      : `${tool.name} is not installed (looked for ${tool.candidates.join(', ')}${tool.override ? `; ${tool.override} overrides` : ''})`;
  if (process.env.CI === 'true') throw new Error(`${reason}. Under CI=true this fails instead of skipping: install it (apt-get install ${tool.debianPackage}).`);
  console.warn(`\n*** SKIPPED ${t.fullName}: ${reason}. Install ${tool.debianPackage} ${tool.purpose}. ***\n`);
  t.skip(reason);
  return undefined;
}
