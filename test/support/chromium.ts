/**
 * Debian's Chromium for the dashboard's browser tests, driven by playwright-core (which never
 * downloads a browser of its own here). The skip rule is nginx's: without Chromium a test skips
 * loudly, except under CI=true, where it fails.
 */
import type { TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { findTool, toolOrSkip, type SystemTool } from './system-tool.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

const CHROMIUM: SystemTool = { name: 'chromium', candidates: CANDIDATES, override: 'BOOTDEPOT_CHROMIUM', debianPackage: 'chromium', purpose: 'to run the browser tests' };

/** The Chromium binary; BOOTDEPOT_CHROMIUM, when set, is the only candidate. */
export function findChromium(): string | undefined {
  return findTool(CHROMIUM);
}

export function chromiumOrSkip(t: TestContext): string | undefined {
  return toolOrSkip(t, CHROMIUM);
}

/** A headless Chromium, closed after the test. */
export async function launchChromium(t: TestContext, executablePath: string): Promise<Browser> {
  const browser = await chromium.launch({ executablePath, headless: true, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}
