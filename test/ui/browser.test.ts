/**
 * The dashboard in a real browser (Debian's Chromium): login, the fleet view following a
 * simulated iPXE boot live, the device view's next-boot buttons, escaping, a cross-site form,
 * logout.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { testApp } from '../helpers.ts';
import { chromiumOrSkip, launchChromium } from '../support/chromium.ts';

const TOKEN = 'browser-dashboard-token-0123456789';
const MAC = '52:54:00:aa:bb:01';
const HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
const DATA = {
  'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz, initrd: [/assets/main/initrd]}\n',
  'groups/default.yaml': 'profile: main\n',
};
const WAIT = { timeout: 10_000 };

async function start(t: TestContext) {
  const built = await testApp(t, { data: DATA, assets: { 'main/vmlinuz': 'kernel bytes', 'main/initrd': 'initrd bytes' }, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  return { ...built, base };
}

async function logIn(page: Page, base: string): Promise<void> {
  await page.goto(`${base}/ui/`);
  assert.match(page.url(), /\/ui\/login\?next=/);
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${base}/ui/`, WAIT), page.click('button[type=submit]')]);
}

/** Fetches the URLs a booting iPXE machine fetches, step by step. */
async function ipxeScript(base: string, query: string): Promise<{ text: string; kernel: string; initrd: string; beacon: string }> {
  const text = await (await fetch(`${base}/ipxe?${query}`)).text();
  const url = (pattern: RegExp) => pattern.exec(text)?.[1] ?? '';
  return { text, kernel: url(/kernel[^\n]*?(http:\/\/\S+vmlinuz)/), initrd: url(/initrd[^\n]*?(http:\/\/\S+initrd)/), beacon: url(/(http:\/\/\S+\/beacon)/) };
}

describe('dashboard in a browser', { timeout: 120_000 }, () => {
  it('logs in, follows a boot live, holds a device, escapes device text, refuses cross-site posts, logs out', async (t) => {
    const executablePath = chromiumOrSkip(t);
    if (!executablePath) return;
    const { base } = await start(t);
    const browser = await launchChromium(t, executablePath);

    // Without a session or the token: the login page, and 401 for anything that is not a page.
    const anonymous = await browser.newPage();
    await anonymous.goto(`${base}/ui/devices/${MAC}`);
    assert.match(anonymous.url(), /\/ui\/login/);
    assert.equal((await anonymous.request.get(`${base}/ui/fleet`)).status(), 401);
    await anonymous.close();

    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await logIn(page, base);
    assert.ok(await page.isVisible('text=No devices yet'));
    await page.evaluate(() => Object.assign(globalThis, { sameDocument: true }));

    // The device appears and moves through its boot without a reload.
    const boot = await ipxeScript(base, `mac=${MAC}&serial=${encodeURIComponent(HOSTILE)}`);
    assert.ok(boot.kernel && boot.initrd && boot.beacon, boot.text);
    const row = page.locator(`tr[data-device="${MAC}"]`);
    await row.locator('.stage', { hasText: 'booting' }).waitFor(WAIT);
    await row.locator('.detail', { hasText: 'script sent' }).waitFor(WAIT);
    assert.equal(await row.locator('td').nth(4).textContent(), 'main');
    await (await fetch(boot.kernel)).arrayBuffer();
    await row.locator('.detail', { hasText: 'downloading the kernel' }).waitFor(WAIT);
    await (await fetch(boot.initrd)).arrayBuffer();
    await (await fetch(boot.beacon)).arrayBuffer();
    await row.locator('.detail', { hasText: 'kernel started (beacon)' }).waitFor(WAIT);
    const bootId = /\/b\/([^/]+)\/beacon/.exec(boot.beacon)?.[1] ?? '';
    const report = await fetch(`${base}/b/${bootId}/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'running', message: HOSTILE }) });
    assert.equal(report.status, 200);
    await row.locator('.stage', { hasText: 'running' }).waitFor(WAIT);
    await page.locator('.counts .booting b', { hasText: '0' }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument), true, 'no reload');

    // The stage filter and the search box.
    await page.selectOption('#stage', 'waiting');
    await page.locator('text=No devices match').waitFor(WAIT);
    await page.selectOption('#stage', '');
    await page.fill('#q', 'aa:bb:01');
    await row.waitFor(WAIT);

    // The device view: hostile text is text, and the timeline has the whole boot.
    await Promise.all([page.waitForURL(`${base}/ui/devices/${encodeURIComponent(MAC)}`, WAIT), row.locator('a').click()]);
    const serial = page.locator('.identity dd').filter({ hasText: 'onerror' });
    assert.equal(await serial.textContent(), HOSTILE);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.ok((await page.locator('ol.timeline').innerText()).includes(HOSTILE));
    const timeline = await page.locator('ol.timeline').innerText();
    assert.match(timeline, /kernel \/assets\/main\/vmlinuz: 12 B in /);
    assert.match(timeline, /beacon/);
    assert.match(await page.locator('.decision').innerText(), /^profile main/);

    // Hold it from the device view: the next script waits.
    await page.fill('input[name=reason]', 'swap the disk');
    await Promise.all([page.waitForURL(`${base}/ui/devices/${encodeURIComponent(MAC)}`, WAIT), page.click('button[value=hold]')]);
    await page.locator('.decision', { hasText: 'hold' }).waitFor(WAIT);
    assert.match((await ipxeScript(base, `mac=${MAC}&serial=${encodeURIComponent(HOSTILE)}`)).text, /held by the operator: next boot set to hold: swap the disk/);
    assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);

    // A form on another site posting to the dashboard changes nothing.
    const evil = createServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end(`<form method="post" action="${base}/ui/devices/${MAC}/next-boot"><input name="action" value="local"><button id="go">go</button></form>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => evil.close(() => resolve())));
    const evilPage = await context.newPage();
    // localhost and 127.0.0.1 are different sites to the browser.
    await evilPage.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
    const [answer] = await Promise.all([evilPage.waitForResponse((r) => r.url().includes('/next-boot'), WAIT), evilPage.click('#go')]);
    assert.ok([401, 403].includes(answer.status()), `cross-site post answered ${answer.status()}`);
    await evilPage.close();
    await page.reload();
    assert.match(await page.locator('.decision').innerText(), /^hold/);

    // Logging out ends the session.
    await Promise.all([page.waitForURL(/\/ui\/login$/, WAIT), page.click('text=Log out')]);
    await page.goto(`${base}/ui/`);
    assert.match(page.url(), /\/ui\/login/);
    assert.deepEqual(errors, []);
  });
});
