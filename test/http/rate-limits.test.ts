/**
 * Per-client rate limits: a flood from one address is refused with 429 and Retry-After (an iPXE
 * script that waits and asks again where iPXE expects a script), a rack booting behind one NAT
 * address never is, downloads are not counted by default, and other addresses are unaffected.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { testApp } from '../helpers.ts';

const DATA = { 'profiles/p.yaml': 'boot: {kernel: /assets/k, initrd: [/assets/i]}\n', 'groups/default.yaml': 'profile: p\nmetadata: {rack: r1}\n' };
const ASSETS = { k: 'kernel', i: 'initrd', 'disk.img': Buffer.alloc(64 * 1024, 1) };
const NAT = '10.1.2.3';
const HOST = { host: 'h:1' };

function macOf(n: number): string {
  const hex = n.toString(16).padStart(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

async function app(t: TestContext, yaml = '') {
  return (await testApp(t, { data: DATA, assets: ASSETS, yaml })).app;
}

describe('rate limits', () => {
  it('a burst of script requests from one address gets 429 with Retry-After and an iPXE script that waits and chains the same URL', async (t) => {
    const server = await app(t, 'limits:\n  scriptsPerMinute: 50\n');
    const url = `/ipxe?mac=${macOf(1)}&serial_hex=41`;
    for (let i = 0; i < 50; i++) assert.equal((await server.inject({ url, remoteAddress: NAT, headers: HOST })).statusCode, 200, `request ${i + 1}`);
    const refused = await server.inject({ url, remoteAddress: NAT, headers: HOST });
    assert.equal(refused.statusCode, 429);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${String(refused.headers['retry-after'])}`);
    assert.equal(refused.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(
      refused.body,
      [
        '#!ipxe',
        ':bootdepot-rate-limited',
        `echo bootdepot: too many requests from this address; asking again in ${retryAfter} s`,
        `sleep ${retryAfter}`,
        `chain --autofree http://h:1${url} || goto bootdepot-rate-limited`,
        '',
      ].join('\n'),
    );
    // The bootstrap and LinuxKit scripts answer the same way; another address is unaffected.
    assert.match((await server.inject({ url: '/boot.ipxe', remoteAddress: NAT, headers: HOST })).body, /\nchain --autofree http:\/\/h:1\/boot\.ipxe \|\| goto bootdepot-rate-limited\n/);
    assert.equal((await server.inject({ url, remoteAddress: '10.1.2.4', headers: HOST })).statusCode, 200);
    // Reports and configs are refused too, in plain text with the reason.
    const report = await server.inject({ method: 'POST', url: `/events?mac=${macOf(1)}`, payload: { state: 'running' }, remoteAddress: NAT });
    assert.equal(report.statusCode, 429);
    assert.ok(report.headers['retry-after']);
    assert.match(report.body, /^too many requests from this address \(50 scripts per minute\); retry in \d+ s\n$/);
    // Probes are never limited.
    assert.equal((await server.inject({ url: '/healthz', remoteAddress: NAT })).statusCode, 200);
    assert.equal((await server.inject({ url: '/metrics', remoteAddress: NAT })).statusCode, 200);
  });

  it('a refused request whose URL could not stand in a script chains /boot.ipxe instead', async (t) => {
    const server = await app(t, 'limits:\n  scriptsPerMinute: 1\n');
    await server.inject({ url: '/boot.ipxe', remoteAddress: NAT, headers: HOST });
    for (const url of ['/ipxe?mac=52:54:00:00:00:01&x=${evil}', '/ipxe?mac=52:54:00:00:00:01&x=a%20b||shell', '/ipxe?mac=52:54:00:00:00:01&x=%zz', '/ipxe?mac=52:54:00:00:00:01&x=a|b']) {
      const refused = await server.inject({ url, remoteAddress: NAT, headers: HOST });
      assert.equal(refused.statusCode, 429, url);
      assert.match(refused.body, /\nchain --autofree http:\/\/h:1\/boot\.ipxe \|\| goto bootdepot-rate-limited\n$/, url);
      assert.doesNotMatch(refused.body, /evil|shell|zz|\|b/, url);
    }
  });

  it('with the defaults, a rack of 300 machines booting behind one address is never limited', async (t) => {
    const server = await app(t);
    const statuses = new Map<number, number>();
    const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
    for (let n = 0; n < 300; n++) {
      const mac = macOf(n);
      const inject = async (options: { url: string; method?: 'GET' | 'POST'; payload?: object }) => {
        const res = await server.inject({ remoteAddress: NAT, ...options, headers: { ...HOST, 'user-agent': 'iPXE/1.21.1' } });
        count(res.statusCode);
        return res;
      };
      await inject({ url: '/boot.ipxe' });
      // A few polls while the operator adds the group (wait scripts), then the booting script.
      for (let poll = 0; poll < 3; poll++) await inject({ url: `/ipxe?mac=${mac}` });
      const script = await inject({ url: `/ipxe?mac=${mac}` });
      for (const match of script.body.matchAll(/http:\/\/h:1(\/b\/[0-9a-f]+\/(?:assets\/\S+|beacon))/g)) await inject({ url: match[1] ?? '' });
      await inject({ url: `/metadata?mac=${mac}` });
      await inject({ method: 'POST', url: `/events?mac=${mac}`, payload: { state: 'succeeded' } });
    }
    assert.equal(statuses.get(429), undefined, `statuses: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) >= 300 * 9, `statuses: ${JSON.stringify([...statuses])}`);
  });

  it('with the defaults, a flood of script requests from one address is cut at 6000 a minute', async (t) => {
    const server = await app(t);
    let ok = 0;
    let limited = 0;
    for (let i = 0; i < 6100; i++) {
      const res = await server.inject({ url: '/boot.ipxe', remoteAddress: NAT, headers: HOST });
      if (res.statusCode === 200) ok++;
      else if (res.statusCode === 429) limited++;
    }
    assert.equal(ok, 6000);
    assert.equal(limited, 100);
    assert.equal((await server.inject({ url: '/boot.ipxe', remoteAddress: '10.9.9.9', headers: HOST })).statusCode, 200);
    assert.match((await server.inject({ url: '/metrics' })).body, /^bootdepot_limited_total\{reason="scripts-rate"\} 100$/m);
  });

  it('downloads are not counted by default: a sanboot-like run of Range requests is never refused', async (t) => {
    const server = await app(t, 'limits:\n  scriptsPerMinute: 10\n');
    for (let block = 0; block < 7000; block++) {
      const start = (block * 512) % (64 * 1024);
      const res = await server.inject({ url: '/assets/disk.img', remoteAddress: NAT, headers: { range: `bytes=${start}-${start + 511}` } });
      assert.equal(res.statusCode, 206, `block ${block}`);
    }
  });

  it('limits.downloadsPerMinute counts downloads apart from scripts, and limits.allowList exempts addresses', async (t) => {
    const server = await app(t, 'limits:\n  scriptsPerMinute: 5\n  downloadsPerMinute: 20\n  allowList: [192.168.0.0/16, "fd00::1"]\n');
    for (let i = 0; i < 20; i++) assert.equal((await server.inject({ url: '/assets/k', remoteAddress: NAT })).statusCode, 200);
    const refused = await server.inject({ url: '/assets/k', remoteAddress: NAT });
    assert.equal(refused.statusCode, 429);
    assert.match(refused.body, /20 downloads per minute/);
    // Scripts have their own budget.
    assert.equal((await server.inject({ url: '/boot.ipxe', remoteAddress: NAT, headers: HOST })).statusCode, 200);
    for (const address of ['192.168.7.7', '::ffff:192.168.7.8', 'fd00::1']) {
      for (let i = 0; i < 30; i++) assert.equal((await server.inject({ url: '/boot.ipxe', remoteAddress: address, headers: HOST })).statusCode, 200, `${address} ${i}`);
    }
  });

  it('an admin request without a valid token counts as a script request; with the token it is never limited', async (t) => {
    const token = 'admin-token-0123456789abcdef';
    const { app: server } = await testApp(t, { data: DATA, assets: ASSETS, yaml: 'limits:\n  scriptsPerMinute: 3\n', overrides: [{ key: 'adminToken', value: token, source: 'test' }] });
    for (let i = 0; i < 3; i++) assert.equal((await server.inject({ url: '/api/v1/devices', remoteAddress: NAT })).statusCode, 401);
    assert.equal((await server.inject({ url: '/api/v1/devices', remoteAddress: NAT })).statusCode, 429);
    for (let i = 0; i < 10; i++) assert.equal((await server.inject({ url: '/api/v1/devices', remoteAddress: NAT, headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
  });
});
