/**
 * Debian's Chromium for the dashboard's browser tests, driven by playwright-core (which never
 * downloads a browser of its own here). The skip rule is nginx's: without Chromium a test skips
 * loudly, except under CI=true, where it fails.
 */
import { accessSync, constants } from 'node:fs';
import type { TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The Chromium binary; BOOTDEPOT_CHROMIUM, when set, is the only candidate. */
export function findChromium(): string | undefined {
  const override = process.env.BOOTDEPOT_CHROMIUM;
  for (const candidate of override ? [override] : CANDIDATES) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export function chromiumOrSkip(t: TestContext): string | undefined {
  const binary = findChromium();
  if (binary) return binary;
  const reason = process.env.BOOTDEPOT_CHROMIUM ? `chromium not found at BOOTDEPOT_CHROMIUM=${process.env.BOOTDEPOT_CHROMIUM}` : `chromium is not installed (looked for ${CANDIDATES.join(', ')}; BOOTDEPOT_CHROMIUM overrides)`;
  if (process.env.CI === 'true') throw new Error(`${reason}. Under CI=true this fails instead of skipping: install it (apt-get install chromium).`);
  console.warn(`\n*** SKIPPED ${t.fullName}: ${reason}. Install chromium to run the browser tests. ***\n`);
  t.skip(reason);
  return undefined;
}

/** A headless Chromium, closed after the test. */
export async function launchChromium(t: TestContext, executablePath: string): Promise<Browser> {
  const browser = await chromium.launch({ executablePath, headless: true, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}
