import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { testApp } from '../helpers.ts';

const TOKEN = 'dashboard-token-0123456789';
const MAC = '52:54:00:12:34:56';
const HOSTILE = '<script>alert(1)</script>';
const DATA = {
  'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n',
  'profiles/rescue.yaml': 'boot: {kernel: /assets/rescue/vmlinuz}\n',
  'groups/default.yaml': 'profile: main\n',
};
const HOST = 'boot.test';
const ORIGIN = `http://${HOST}`;

async function setup(t: TestContext, token: string | null = TOKEN) {
  const built = await testApp(t, { data: DATA, assets: { 'main/vmlinuz': 'main', 'rescue/vmlinuz': 'rescue' }, overrides: token ? [{ key: 'adminToken', value: token, source: 'test' }] : [] });
  await built.app.inject({ url: `/ipxe?mac=${MAC}&serial=${encodeURIComponent(HOSTILE)}`, remoteAddress: '10.0.0.7' });
  return built;
}

type App = Awaited<ReturnType<typeof setup>>['app'];

async function login(app: App): Promise<{ cookie: string; csrf: string }> {
  const res = await app.inject({ method: 'POST', url: '/ui/login', headers: { host: HOST, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TOKEN}&next=/ui/` });
  assert.equal(res.statusCode, 303);
  const setCookie = String(res.headers['set-cookie']);
  const cookie = setCookie.split(';')[0] ?? '';
  const page = await app.inject({ url: '/ui/', headers: { host: HOST, cookie } });
  assert.equal(page.statusCode, 200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  assert.ok(csrf.length > 20);
  return { cookie, csrf };
}

describe('dashboard access', () => {
  it('is off without the admin token', async (t) => {
    const { app } = await setup(t, null);
    const res = await app.inject({ url: '/ui/' });
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /dashboard is off/);
    assert.equal((await app.inject({ url: '/ui/login' })).statusCode, 403);
  });

  it('sends pages to the login form and answers 401 to everything else', async (t) => {
    const { app } = await setup(t);
    const page = await app.inject({ url: '/ui/devices/52-54-00-12-34-56', headers: { accept: 'text/html,*/*' } });
    assert.equal(page.statusCode, 303);
    assert.equal(page.headers.location, `/ui/login?next=${encodeURIComponent('/ui/devices/52-54-00-12-34-56')}`);
    for (const url of ['/ui/fleet', '/ui/events', `/ui/devices/${MAC}/live`]) assert.equal((await app.inject({ url })).statusCode, 401, url);
    const post = await app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=hold' });
    assert.equal(post.statusCode, 401);
    assert.equal((await app.inject({ url: '/ui/', headers: { accept: 'text/html', authorization: 'Bearer wrong' } })).statusCode, 401);
    const form = await app.inject({ url: '/ui/login' });
    assert.equal(form.statusCode, 200);
    assert.match(form.body, /name="token"/);
    assert.match(String(form.headers['content-security-policy']), /script-src 'self'/);
  });

  it('accepts the bearer token on every request, and a login session', async (t) => {
    const { app } = await setup(t);
    const res = await app.inject({ url: '/ui/', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes(MAC));
    const { cookie } = await login(app);
    assert.ok(!cookie.includes(TOKEN));
    assert.equal((await app.inject({ url: `/ui/devices/${MAC}`, headers: { cookie } })).statusCode, 200);
  });

  it('refuses a wrong token and rate-limits login attempts', async (t) => {
    const { app } = await setup(t);
    const attempt = () => app.inject({ method: 'POST', url: '/ui/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=wrong', remoteAddress: '10.9.9.9' });
    const first = await attempt();
    assert.equal(first.statusCode, 401);
    assert.equal(first.headers['set-cookie'], undefined);
    assert.match(first.body, /Wrong token/);
    const statuses = [];
    for (let i = 0; i < 10; i += 1) statuses.push((await attempt()).statusCode);
    assert.equal(statuses.at(-1), 429);
    assert.equal(statuses.filter((s) => s === 401).length, 9);
  });

  it('refuses cross-site and token-less changes, and logs out', async (t) => {
    const { app } = await setup(t);
    const { cookie, csrf } = await login(app);
    const post = (payload: string, headers: Record<string, string>) => app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: { host: HOST, cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload });
    assert.equal((await post(`action=hold&_csrf=${csrf}`, { origin: 'http://evil.test' })).statusCode, 403);
    assert.equal((await post('action=hold', { origin: ORIGIN })).statusCode, 403);
    assert.equal((await post('action=hold&_csrf=nope', { origin: ORIGIN })).statusCode, 403);
    const ok = await post(`action=hold&reason=disk+swap&_csrf=${csrf}`, { origin: ORIGIN });
    assert.equal(ok.statusCode, 303);
    const script = await app.inject({ url: `/ipxe?mac=${MAC}` });
    assert.match(script.body, /held by the operator/);

    const out = await app.inject({ method: 'POST', url: '/ui/logout', headers: { host: HOST, cookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}` });
    assert.equal(out.statusCode, 303);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    assert.equal((await app.inject({ url: '/ui/fleet', headers: { cookie } })).statusCode, 401, 'the session is gone');
  });
});

describe('dashboard pages', () => {
  it('escape device text and set the next boot through the API rules', async (t) => {
    const { app } = await setup(t);
    const headers = { authorization: `Bearer ${TOKEN}` };
    const device = await app.inject({ url: `/ui/devices/${MAC}`, headers });
    assert.equal(device.statusCode, 200);
    assert.ok(!device.body.includes(HOSTILE));
    assert.ok(device.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.match(device.body, /Decision now<\/dt><dd class="decision"><b>profile<\/b> main/);
    assert.doesNotMatch(device.body, /would wait/);
    const form = { ...headers, 'content-type': 'application/x-www-form-urlencoded' };
    const once = await app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: form, payload: 'action=once' });
    assert.equal(once.statusCode, 400);
    assert.match(once.body, /action once needs a profile/);
    const rescue = await app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: form, payload: 'action=once&profile=rescue&reason=<b>x</b>' });
    assert.equal(rescue.statusCode, 303);
    const after = await app.inject({ url: `/ui/devices/${MAC}/live`, headers });
    assert.match(after.body, /Decision now<\/dt><dd class="decision"><b>profile<\/b> rescue/);
    assert.ok(after.body.includes('&lt;b&gt;x&lt;/b&gt;'));
    const fleet = await app.inject({ url: '/ui/fleet?stage=booting&q=52-54-00-12', headers });
    assert.ok(fleet.body.includes(`data-device="${MAC}"`));
    const none = await app.inject({ url: '/ui/fleet?stage=failed', headers });
    assert.ok(!none.body.includes(`data-device="${MAC}"`));
    assert.equal((await app.inject({ url: '/ui/devices/52:54:00:99:99:99', headers })).statusCode, 404);
  });

  it('serve the vendored scripts, with no inline script on any page', async (t) => {
    const { app } = await setup(t);
    const headers = { authorization: `Bearer ${TOKEN}` };
    const htmx = await app.inject({ url: '/ui/static/htmx.min.js' });
    assert.equal(htmx.statusCode, 200);
    assert.match(htmx.body, /htmx/);
    assert.equal((await app.inject({ url: '/ui/static/sse.js' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/ui/static/../app.ts' })).statusCode, 404);
    for (const url of ['/ui/', `/ui/devices/${MAC}`]) {
      const res = await app.inject({ url, headers });
      const scripts = [...res.body.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
      assert.ok(scripts.length >= 2);
      for (const [, attributes, content] of scripts) {
        assert.match(attributes ?? '', /src="\/ui\/static\//);
        assert.equal(content, '');
      }
    }
  });
});

describe('a waiting machine', () => {
  it('shows why it waits once, and that it would wait now', async (t) => {
    const built = await testApp(t, { data: { 'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n', 'groups/efi.yaml': 'profile: main\nselector: {platform: efi}\n' }, assets: { 'main/vmlinuz': 'main' }, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
    await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios` });
    const headers = { authorization: `Bearer ${TOKEN}` };
    const fleet = await built.app.inject({ url: '/ui/fleet?stage=unmatched', headers });
    assert.ok(fleet.body.includes(`data-device="${MAC}"`));
    assert.equal(fleet.body.split('no group matches this machine').length - 1, 1, fleet.body);
    const device = await built.app.inject({ url: `/ui/devices/${MAC}/live`, headers });
    assert.match(device.body, /the machine would wait: no group matches this machine/);
  });
});

describe('unknown machines and data problems', () => {
  it('assigns a machine that matched no group to a profile, and lists what check would say', async (t) => {
    const built = await testApp(t, {
      data: { 'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n', 'groups/efi.yaml': 'profile: main\nselector: {platform: efi}\n', 'groups/gone.yaml': 'profile: missing\nselector: {rack: "9"}\n' },
      assets: { 'main/vmlinuz': 'main' },
      overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }],
    });
    await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios` });
    const headers = { authorization: `Bearer ${TOKEN}` };
    const page = await built.app.inject({ url: '/ui/?stage=unmatched', headers });
    assert.match(page.body, /<summary>1 data problem/);
    assert.match(page.body, /gone\.yaml[^<]*missing/);
    assert.match(page.body, new RegExp(`action="/ui/devices/${encodeURIComponent(MAC)}/next-boot" class="assign"`));
    assert.doesNotMatch((await built.app.inject({ url: '/ui/fleet', headers })).body, /class="assign"/, 'only in the unmatched view');
    const assign = await built.app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=profile&profile=main&back=/ui/?stage=unmatched&reason=assigned' });
    assert.equal(assign.statusCode, 303);
    assert.equal(assign.headers.location, '/ui/?stage=unmatched');
    const script = await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios` });
    assert.match(script.body, /\/assets\/main\/vmlinuz/);
    const evil = await built.app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=hold&back=//evil.example/' });
    assert.equal(evil.headers.location, '/ui/');
  });

  it('lists machines that got the unmatched fallback profile too, with what they sent, until one is assigned', async (t) => {
    const built = await testApp(t, {
      data: { 'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n', 'profiles/discover.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n', 'groups/efi.yaml': 'profile: main\nselector: {platform: efi}\n' },
      assets: { 'main/vmlinuz': 'main' },
      yaml: 'boot:\n  unmatched: profile\n  unmatchedProfile: discover\n',
      overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }],
    });
    const other = '52:54:00:12:34:57';
    await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios&serial=${encodeURIComponent(HOSTILE)}&manufacturer=Acme` });
    await built.app.inject({ url: `/ipxe?mac=${other}&platform=efi` });
    const headers = { authorization: `Bearer ${TOKEN}` };
    const fleet = (await built.app.inject({ url: '/ui/fleet?stage=unmatched', headers })).body;
    assert.match(fleet, new RegExp(`data-device="${MAC}"`));
    assert.doesNotMatch(fleet, new RegExp(`data-device="${other}"`), 'a machine its group matched is not unknown');
    assert.match(fleet, /<td class="sent"><span><small>serial<\/small> &lt;script&gt;alert\(1\)&lt;\/script&gt;<\/span><span><small>manufacturer<\/small> Acme<\/span><span><small>platform<\/small> pcbios<\/span>/);
    assert.doesNotMatch(fleet, /<script>alert/);
    const assign = await built.app.inject({ method: 'POST', url: `/ui/devices/${MAC}/next-boot`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=profile&profile=main&reason=assigned' });
    assert.equal(assign.statusCode, 303);
    assert.doesNotMatch((await built.app.inject({ url: '/ui/fleet?stage=unmatched', headers })).body, new RegExp(`data-device="${MAC}"`));
    assert.match((await built.app.inject({ url: `/ipxe?mac=${MAC}&platform=pcbios` })).body, /profile main/);
  });

  it('lists the data problems, the device store\'s trouble and failing upstreams on the Problems page', async (t) => {
    const built = await testApp(t, {
      data: { 'profiles/main.yaml': 'boot: {kernel: /assets/main/vmlinuz}\n', 'groups/gone.yaml': 'profile: missing\nselector: {rack: "9"}\n' },
      assets: { 'main/vmlinuz': 'main' },
      overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }],
    });
    const page = await built.app.inject({ url: '/ui/problems', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<li class="error">[^<]*gone\.yaml[^<]*missing/);
    assert.match(page.body, /<section class="problems-store"><h2>Device store<\/h2>\n<p class="empty">It answers\.<\/p>/);
    assert.equal((await built.app.inject({ url: '/ui/problems' })).statusCode, 401);
  });
});
