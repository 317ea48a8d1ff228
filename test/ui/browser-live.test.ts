/**
 * The dashboard's live parts in a real browser (Debian's Chromium): a download's progress bar
 * moving in the fleet and on the device page without a reload, the Mirror view with a fill in
 * progress and cached files, the charts with data, assigning an unknown machine, and hostile
 * text from devices and request paths shown as text in each of these places.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { makeTree, startTestServer } from '../helpers.ts';
import { bodyOf, startUpstream } from '../mirror/support.ts';
import { chromiumOrSkip, launchChromium } from '../support/chromium.ts';

const TOKEN = 'browser-live-token-0123456789';
const MAC = '52:54:00:aa:cc:01';
const STRAY = '52:54:00:aa:cc:02';
const HOSTILE = '<img src=x onerror="window.pwned=1">';
const WAIT = { timeout: 15_000 };

/** How far a `<progress>` is, 0..1 (a finished download's bar is full). */
async function fraction(page: Page, selector: string): Promise<number> {
  // `position` of an HTMLProgressElement: value / max, or -1 while indeterminate.
  return page.locator(selector).first().evaluate((element): number => (element as unknown as { position: number }).position);
}

describe('dashboard live parts in a browser', { timeout: 120_000 }, () => {
  it('moves a progress bar, shows the mirror filling, draws the charts, assigns an unknown machine, and keeps hostile text as text', async (t) => {
    const executablePath = chromiumOrSkip(t);
    if (!executablePath) return;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    t.after(() => open());
    const upstream = await startUpstream(t, {
      'vmlinuz': { body: bodyOf(400_000), fault: { kind: 'gate', after: 100_000, gate } },
      'initrd.img': { body: bodyOf(5000) },
      [`${HOSTILE}.img`]: { body: bodyOf(10) },
      'missing.img': { body: bodyOf(10), fault: { kind: 'status', status: 503 } },
    });
    const dataDir = await makeTree(t, {
      'profiles/main.yaml': 'boot: {kernel: /mirror/up/vmlinuz, initrd: [/mirror/up/initrd.img]}\n',
      'profiles/rescue.yaml': 'boot: {kernel: /mirror/up/initrd.img}\n',
      'groups/main.yaml': 'profile: main\nselector: {platform: efi}\n',
    });
    const server = await startTestServer(t, { dataDir, assetsDir: dataDir, cacheDir: await makeTree(t, {}), adminToken: TOKEN }, [`up=${upstream.url}`]);
    const base = server.url;
    // Cached before the page opens: a file, one with a hostile name, and a failure.
    assert.equal((await fetch(`${base}/mirror/up/initrd.img`)).status, 200);
    assert.equal((await fetch(`${base}/mirror/up/${encodeURIComponent(`${HOSTILE}.img`)}`)).status, 200);
    assert.equal((await fetch(`${base}/mirror/up/missing.img`)).status, 502);

    const browser = await launchChromium(t, executablePath);
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${base}/ui/`);
    await page.fill('input[name=token]', TOKEN);
    await Promise.all([page.waitForURL(`${base}/ui/`, WAIT), page.click('button[type=submit]')]);
    await page.evaluate(() => Object.assign(globalThis, { sameDocument: true }));

    // A machine boots; its kernel comes through the mirror, which has a quarter of it so far.
    const script = await (await fetch(`${base}/ipxe?mac=${MAC}&platform=efi&serial=${encodeURIComponent(HOSTILE)}`)).text();
    const kernel = /^kernel (\S+)/m.exec(script)?.[1] ?? '';
    assert.match(kernel, /\/b\/[0-9a-f]{32}\/mirror\/up\/vmlinuz/, script);
    const bootBase = kernel.replace(/\/mirror\/up\/vmlinuz.*$/, '');
    const download = fetch(kernel).then(async (res) => (await res.arrayBuffer()).byteLength);
    const row = page.locator(`tr[data-device="${MAC}"]`);
    const bar = `tr[data-device="${MAC}"] .download progress`;
    await row.locator('.bar-text', { hasText: '97.7 KiB of 390.6 KiB (25 %)' }).waitFor(WAIT);
    assert.equal(await fraction(page, bar), 0.25);
    assert.match((await row.locator('.speed').textContent()) ?? '', /^[\d.]+ [KMG]?i?B\/s$/);
    // The boots chart has this boot.
    assert.ok((await page.locator('figure[data-chart=boots] rect').count()) >= 1);
    assert.equal(await page.locator('.counts .boots b').textContent(), '1');

    // The device page shows the same download running, in its timeline.
    const devicePage = await context.newPage();
    devicePage.on('pageerror', (error) => errors.push(error.message));
    await devicePage.goto(`${base}/ui/devices/${MAC}`);
    const timelineBar = devicePage.locator('ol.timeline li', { hasText: 'kernel /mirror/up/vmlinuz' });
    await timelineBar.locator('progress').waitFor(WAIT);
    assert.match(await timelineBar.innerText(), /97\.7 KiB of 390\.6 KiB \(25 %\)/);
    await devicePage.evaluate(() => Object.assign(globalThis, { sameDocument: true }));

    // The Mirror view: the fill in progress, the cached files, the failure, hostile names as text.
    const mirrorPage = await context.newPage();
    mirrorPage.on('pageerror', (error) => errors.push(error.message));
    await mirrorPage.goto(`${base}/ui/mirror`);
    const fill = mirrorPage.locator('tr[data-fill="up/vmlinuz"]');
    await fill.waitFor(WAIT);
    assert.equal(await fraction(mirrorPage, 'tr[data-fill="up/vmlinuz"] progress'), 0.25);
    await mirrorPage.locator('tr[data-file="up/initrd.img"]').waitFor(WAIT);
    const hostileFile = mirrorPage.locator('table.files td.path', { hasText: 'onerror' });
    assert.equal(await hostileFile.textContent(), `up/${HOSTILE}.img`);
    assert.equal(await mirrorPage.locator('table.files tr', { has: mirrorPage.locator('td.path', { hasText: 'onerror' }) }).getAttribute('data-file'), `up/${HOSTILE}.img`);
    assert.match(await mirrorPage.locator('table.failures').innerText(), /up\/missing\.img\s+HTTP 503/);
    assert.ok((await mirrorPage.locator('figure[data-chart=throughput] rect').count()) >= 1, 'the throughput chart has bytes');
    await mirrorPage.evaluate(() => Object.assign(globalThis, { sameDocument: true }));

    // The rest of the kernel arrives: the bars fill up without a reload, everywhere.
    open();
    assert.equal(await download, 400_000);
    await row.locator('.bar-text', { hasText: '390.6 KiB, done' }).waitFor(WAIT);
    assert.equal(await fraction(page, bar), 1);
    await devicePage.locator('ol.timeline li', { hasText: /kernel \/mirror\/up\/vmlinuz: 390\.6 KiB in [\d.]+ m?s/ }).waitFor(WAIT);
    assert.equal(await timelineBar.locator('progress').count(), 0);
    await mirrorPage.locator('tr[data-file="up/vmlinuz"]').waitFor(WAIT);
    assert.equal(await mirrorPage.locator('tr[data-fill]').count(), 0);
    for (const each of [page, devicePage, mirrorPage]) assert.equal(await each.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument), true, 'no reload');

    // A download under a hostile path of the boot is text in the fleet and the timeline.
    await fetch(`${bootBase}/assets/${encodeURIComponent(HOSTILE)}`);
    await devicePage.locator('ol.timeline li', { hasText: `file /assets/${HOSTILE}` }).waitFor(WAIT);

    // A machine no group matches: what it sent, and assigning it boots the profile next time.
    await fetch(`${base}/ipxe?mac=${STRAY}&platform=pcbios&manufacturer=${encodeURIComponent(HOSTILE)}`);
    await page.goto(`${base}/ui/?stage=unmatched`);
    const stray = page.locator(`tr[data-device="${STRAY}"]`);
    await stray.waitFor(WAIT);
    assert.match(await stray.locator('td.sent').innerText(), new RegExp(`manufacturer ${HOSTILE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await stray.locator('select[name=profile]').selectOption('rescue');
    await Promise.all([page.waitForURL(/\/ui\/\?stage=unmatched$/, WAIT), stray.locator('button', { hasText: 'Assign' }).click()]);
    assert.equal(await stray.count(), 0, 'no longer unknown');
    assert.match(await (await fetch(`${base}/ipxe?mac=${STRAY}&platform=pcbios`)).text(), /\/mirror\/up\/initrd\.img/);

    for (const each of [page, devicePage, mirrorPage]) {
      assert.equal(await each.locator('main img, main script').count(), 0);
      assert.equal(await each.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    }
    assert.deepEqual(errors, []);
  });
});
