/**
 * Takes the screenshots in docs/ui/ (docs/ui.md) with Debian's Chromium: a server over a temp
 * data directory and a local upstream, an hour of backdated boots for the charts, and machines
 * booting, waiting, held, failed and downloading right now. Not a test; run it by hand after
 * changing the pages:
 *
 *   node test/ui/screenshots.ts [OUTPUT-DIR]     (default docs/ui)
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import { buildApp } from '../../src/app.ts';
import { createAssetReader } from '../../src/assets/asset-root.ts';
import { openLiveCatalogue } from '../../src/boot/live-catalogue.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { PullThroughMirror } from '../../src/mirror/mirror.ts';
import { BootState } from '../../src/state/boot-state.ts';
import type { NewEvent } from '../../src/state/model.ts';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { findChromium } from '../support/chromium.ts';
import { REPO_ROOT, writeFiles } from '../helpers.ts';

const TOKEN = 'screenshot-token-0123456789abcdef';
const OUT = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'docs/ui'));
const V = 'amd64-usr/4152.2.0';
const KERNEL = `${V}/flatcar_production_pxe.vmlinuz`;
const INITRD = `${V}/flatcar_production_pxe_image.cpio.gz`;
const MiB = 1024 * 1024;

const executablePath = findChromium();
if (!executablePath) throw new Error('Chromium not found (apt-get install chromium, or BOOTDEPOT_CHROMIUM)');
const root = await mkdtemp(path.join(tmpdir(), 'bootdepot-screens-'));
const logger = pino({ level: 'silent' });

// The upstream: the kernel stops at 40 % until the end, so downloads stand still mid-way.
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (release = resolve));
const files: Record<string, number> = { [KERNEL]: 48 * MiB, [INITRD]: 12 * MiB, [`${V}/version.txt`]: 300, [`${V}/flatcar_production_pxe.vmlinuz.DIGESTS`]: 1200, 'amd64-usr/4081.2.1/flatcar_production_pxe.vmlinuz': 46 * MiB };
const upstream = http.createServer((req, res) => {
  const name = decodeURIComponent((req.url ?? '/').slice(1));
  const size = files[name];
  if (size === undefined) {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded\n');
    return;
  }
  res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
  const chunk = Buffer.alloc(256 * 1024, 7);
  let sent = 0;
  const pump = () => {
    while (sent < size) {
      if (name === KERNEL && sent >= size * 0.4) {
        void gate.then(() => setImmediate(pump));
        return;
      }
      const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
      sent += piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

const dataDir = path.join(root, 'data');
const assetsDir = path.join(root, 'assets');
await mkdir(assetsDir, { recursive: true });
await writeFiles(dataDir, {
  'profiles/worker.yaml': 'boot: {kernel: /assets/worker/vmlinuz, initrd: [/assets/worker/initrd.img], args: [console=ttyS0]}\n',
  'profiles/flatcar-install.yaml': `boot: {kernel: /mirror/fc/${KERNEL}, initrd: [/mirror/fc/${INITRD}], args: [flatcar.first_boot=yes]}\n`,
  'profiles/rescue.yaml': 'boot: {kernel: /assets/worker/vmlinuz}\n',
  'groups/rack1.yaml': 'profile: worker\nselector: {rack: "1"}\n',
  'groups/rack2.yaml': 'profile: flatcar-install\nselector: {rack: "2"}\n',
  'groups/rack9.yaml': 'profile: retired\nselector: {rack: "9"}\n',
});
await writeFiles(assetsDir, { 'worker/vmlinuz': Buffer.alloc(9 * MiB, 1), 'worker/initrd.img': Buffer.alloc(2 * MiB, 2) });
const result = loadConfig({
  cwd: root,
  // A small cache budget, so its bar shows.
  file: { path: path.join(root, 'bootdepot.yaml'), text: 'mirror:\n  maxBytes: 268435456\n' },
  overrides: [
    { key: 'dataDir', value: dataDir, source: 'screens' },
    { key: 'assetsDir', value: assetsDir, source: 'screens' },
    { key: 'cacheDir', value: path.join(root, 'cache'), source: 'screens' },
    { key: 'adminToken', value: TOKEN, source: 'screens' },
  ],
  mirrorFlags: [{ value: `fc=${upstreamUrl}`, source: 'screens' }],
});
if (!result.config) throw new Error(JSON.stringify(result.problems));
const config = result.config;
const catalogue = await openLiveCatalogue(config.paths.data, logger);
const store = new SqliteDeviceStore(path.join(root, 'bootdepot.db'));
await store.migrate();
const bootState = new BootState({ store, log: logger, catalogue: () => catalogue.current() });
const mirror = await PullThroughMirror.open({ settings: config.mirror });
const app = await buildApp({ config, logger, catalogue, assets: createAssetReader(config.paths.assets), bootState, mirror });
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

// An hour of boots, backdated: rack 1's workers, most of which came up; two failed.
const now = Date.now();
let n = 0;
const history: NewEvent[] = [];
const mac = (i: number) => `52:54:00:10:00:${i.toString(16).padStart(2, '0')}`;
for (let minute = 58; minute >= 2; minute -= 1) {
  const boots = Math.round(2 + 2 * Math.sin(minute / 6) + (minute % 7 === 0 ? 4 : 0));
  for (let b = 0; b < boots; b++) {
    n += 1;
    const device = mac(n % 18);
    const at = now - minute * 60_000 + b * 7000;
    const bootId = `${n.toString(16).padStart(8, '0')}${'0'.repeat(24)}`;
    const ip = `10.0.1.${n % 18 + 10}`;
    history.push({ deviceId: device, bootId, at: new Date(at), detail: { type: 'script', ip, userAgent: 'iPXE/1.21.1', identity: { mac: device, hostname: `worker-${(n % 18) + 1}`, serial: `CZ2${(7340 + (n % 18)).toString()}`, platform: 'efi', arch: 'x86_64' }, action: 'boot', reason: 'group rack1 matched (rack=1)', group: 'rack1', profile: 'worker' } });
    history.push({ deviceId: device, bootId, at: new Date(at + 1000), detail: { type: 'download', path: '/assets/worker/vmlinuz', role: 'kernel', phase: 'started', bytes: 0, status: 200, ip, total: 9 * MiB } });
    history.push({ deviceId: device, bootId, at: new Date(at + 2200), detail: { type: 'download', path: '/assets/worker/vmlinuz', role: 'kernel', phase: 'completed', bytes: 9 * MiB, status: 200, ip, total: 9 * MiB, ms: 1150 } });
    history.push({ deviceId: device, bootId, at: new Date(at + 2300), detail: { type: 'download', path: '/assets/worker/initrd.img', role: 'initrd', phase: 'started', bytes: 0, status: 200, ip, total: 2 * MiB } });
    history.push({ deviceId: device, bootId, at: new Date(at + 2600), detail: { type: 'download', path: '/assets/worker/initrd.img', role: 'initrd', phase: 'completed', bytes: 2 * MiB, status: 200, ip, total: 2 * MiB, ms: 280 } });
    history.push({ deviceId: device, bootId, at: new Date(at + 2700), detail: { type: 'beacon', ip } });
    const failed = n % 18 === 5 || n % 18 === 11;
    history.push({ deviceId: device, bootId, at: new Date(at + 40_000), detail: { type: 'report', state: failed ? 'failed' : 'succeeded', ...(failed ? { code: 1002, message: 'disk /dev/sda not found' } : {}), ip, via: 'boot', verified: true } });
  }
}
await store.recordEvents(history);

// Now: rack 2 installs Flatcar through the mirror (downloads at 40 %), two strays wait, one is held.
const ipxe = (query: string) => fetch(`${base}/ipxe?${query}`).then((res) => res.text());
const pending: Promise<unknown>[] = [];
for (let i = 1; i <= 3; i++) {
  const script = await ipxe(`mac=52:54:00:20:00:0${i}&rack=2&hostname=storage-${i}&serial=SRV2000${i}&platform=efi&manufacturer=Supermicro`);
  const kernel = /^kernel (\S+)/m.exec(script)?.[1];
  if (kernel) pending.push(fetch(kernel).then((res) => res.arrayBuffer()));
}
await ipxe('mac=52:54:00:30:00:01&platform=pcbios&serial=VMW-42%2011%20aa&manufacturer=VMware%2C%20Inc.&product=VMware7%2C1');
await ipxe('mac=52:54:00:30:00:02&platform=efi&hostname=spare-07&serial=J31X9Q2&manufacturer=Dell%20Inc.&product=PowerEdge%20R650');
await ipxe('mac=52:54:00:10:00:03&rack=1&hostname=worker-4&serial=CZ27343&platform=efi');
await fetch(`${base}/api/v1/devices/52:54:00:10:00:03/next-boot`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'hold', reason: 'replace the failed DIMM first' }) });
await ipxe('mac=52:54:00:10:00:03&rack=1&hostname=worker-4&serial=CZ27343&platform=efi');

// The mirror: cached files (one warmed: pinned), a failure, the fill of the kernel at 40 %.
for (const file of [`${V}/version.txt`, `${V}/flatcar_production_pxe.vmlinuz.DIGESTS`, 'amd64-usr/4081.2.1/flatcar_production_pxe.vmlinuz']) await (await fetch(`${base}/mirror/fc/${file}`)).arrayBuffer();
for (const file of [`${V}/version.txt`, `${V}/version.txt`, `${V}/flatcar_production_pxe.vmlinuz.DIGESTS`]) await (await fetch(`${base}/mirror/fc/${file}`)).arrayBuffer();
await fetch(`${base}/api/v1/mirror/warm`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ paths: [`fc/${V}/version.txt`] }) });
await (await fetch(`${base}/mirror/fc/amd64-usr/4152.2.0/flatcar_production_pxe_update.gz`)).arrayBuffer();
// Progress is reported once a second: wait for two reports.
await new Promise((resolve) => setTimeout(resolve, 2500));

const browser = await chromium.launch({ executablePath, headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  await mkdir(OUT, { recursive: true });
  await page.goto(`${base}/ui/`);
  await page.screenshot({ path: path.join(OUT, 'login.png') });
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${base}/ui/`), page.click('button[type=submit]')]);
  const shoot = async (url: string, name: string) => {
    await page.goto(`${base}${url}`);
    await page.waitForLoadState('networkidle').catch(() => undefined);
    await page.screenshot({ path: path.join(OUT, name), fullPage: true });
  };
  await shoot('/ui/', 'fleet.png');
  await shoot('/ui/?stage=unmatched', 'unmatched.png');
  await shoot('/ui/devices/52:54:00:20:00:01', 'device.png');
  await shoot('/ui/mirror', 'mirror.png');
  await shoot('/ui/problems', 'problems.png');
} finally {
  await browser.close();
  release();
  await Promise.allSettled(pending);
  await app.close();
  await bootState.close();
  await store.close();
  await mirror.close();
  catalogue.close();
  upstream.close();
  await rm(root, { recursive: true, force: true });
}
process.stdout.write(`screenshots in ${OUT}\n`);
