/**
 * LinuxKit sets where LinuxKit users keep them: pushed under assets/linuxkit/ or copied by hand
 * to the assets root, and the provider scripts `linuxkit run equinixmetal -base-url URL` checks
 * beside them (URL/NAME-equinixmetal.ipxe, or NAME-packet.ipxe from older releases).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { testApp } from '../helpers.ts';

const MAC = '52:54:00:12:34:56';
const IPXE = { 'user-agent': 'iPXE/1.21.1+ (g4e456d99)' };

async function server(t: TestContext, assets: Record<string, string>, data: Record<string, string> = {}) {
  const built = await testApp(t, { data, assets });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  return { ...built, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

const PROFILE = { 'profiles/lk.yaml': 'linuxkit: {name: sshd}\npreset: packet\n', 'groups/all.yaml': 'profile: lk\n' };

describe('where LinuxKit sets are found', () => {
  it('boots a set copied by hand to the assets root', async (t) => {
    const { url } = await server(t, { 'sshd-kernel': 'root kernel', 'sshd-initrd.img': 'root initrd', 'sshd-cmdline': 'console=ttyS1 root-cmdline\n' }, PROFILE);
    const script = await (await fetch(`${url}/ipxe?mac=${MAC}`)).text();
    const base = /^set base-url (\S+)$/m.exec(script)?.[1];
    assert.match(base ?? '', /^http:\/\/127\.0\.0\.1:\d+\/b\/[0-9a-f]{32}\/assets$/, script);
    assert.match(script, /^set kernel-params ip=dhcp nomodeset ro serial console=ttyS1 root-cmdline$/m);
    assert.equal(await (await fetch(`${base}/sshd-kernel`)).text(), 'root kernel');
    assert.equal(await (await fetch(`${base}/sshd-initrd.img`)).text(), 'root initrd');
  });

  it('prefers assets/linuxkit/, and never mixes the files of two directories', async (t) => {
    const both = await server(t, { 'linuxkit/sshd-kernel': 'k', 'linuxkit/sshd-initrd.img': 'i', 'sshd-kernel': 'k', 'sshd-initrd.img': 'i' }, PROFILE);
    assert.match(await (await fetch(`${both.url}/ipxe?mac=${MAC}`)).text(), /^set base-url \S+\/assets\/linuxkit$/m);
    // A half set under linuxkit/ does not shadow a whole one at the root.
    const half = await server(t, { 'linuxkit/sshd-kernel': 'k', 'sshd-kernel': 'k', 'sshd-initrd.img': 'i' }, PROFILE);
    assert.match(await (await fetch(`${half.url}/ipxe?mac=${MAC}`)).text(), /^set base-url \S+\/assets$/m);
    const none = await server(t, { 'linuxkit/sshd-kernel': 'k', 'sshd-initrd.img': 'i' }, PROFILE);
    const waiting = await (await fetch(`${none.url}/ipxe?mac=${MAC}`)).text();
    assert.match(waiting, /linuxkit\/sshd-initrd\.img missing from the assets directory \(nor at its root\)/);
    assert.doesNotMatch(waiting, /^kernel /m);
  });

  it('looks only in a dir the profile names', async (t) => {
    const { url } = await server(t, { 'sshd-kernel': 'k', 'sshd-initrd.img': 'i' }, { 'profiles/lk.yaml': 'linuxkit: {name: sshd, dir: lk/custom}\n', 'groups/all.yaml': 'profile: lk\n' });
    const script = await (await fetch(`${url}/ipxe?mac=${MAC}`)).text();
    assert.match(script, /lk\/custom\/sshd-kernel and lk\/custom\/sshd-initrd\.img missing from the assets directory \(/);
    assert.doesNotMatch(script, /nor at its root/);
  });
});

/** What `linuxkit run equinixmetal -base-url BASE NAME` checks before it creates a machine. */
async function linuxkitRunChecks(base: string, name: string, script: string): Promise<{ url: string; status: number }[]> {
  const urls = [`${base}/${name}-${script}.ipxe`, `${base}/${name}-kernel`, `${base}/${name}-initrd.img`];
  const results = [];
  // Go's http.Head: follows redirects; anything below 400 passes.
  for (const url of urls) results.push({ url, status: (await fetch(url, { method: 'HEAD', redirect: 'follow' })).status });
  return results;
}

describe('LinuxKit provider scripts beside a set', () => {
  const SET = { 'sshd-kernel': 'k', 'sshd-initrd.img': 'i', 'sshd-cmdline': 'console=tty0 dm=x\n', 'linuxkit/web-kernel': 'k', 'linuxkit/web-initrd.img': 'i' };

  for (const script of ['equinixmetal', 'packet']) {
    it(`passes linuxkit run's HEAD checks for NAME-${script}.ipxe under /assets/ and /assets/linuxkit/`, async (t) => {
      const { url } = await server(t, SET);
      for (const [base, name] of [[`${url}/assets`, 'sshd'], [`${url}/assets/linuxkit`, 'web']] as const) {
        for (const check of await linuxkitRunChecks(base, name, script)) assert.ok(check.status < 400, `${check.url}: ${check.status}`);
      }
      const head = await fetch(`${url}/assets/sshd-${script}.ipxe`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.ok(Number(head.headers.get('content-length')) > 0);
    });
  }

  it('answers GET with a script that boots the set beside it with its cmdline', async (t) => {
    const { url } = await server(t, SET);
    const res = await fetch(`${url}/assets/sshd-equinixmetal.ipxe`, { headers: IPXE });
    assert.equal(res.status, 200);
    const script = await res.text();
    const lines = script.split('\n');
    assert.equal(lines[0], '#!ipxe');
    // A machine that is not BIOS says what it is and gets its own form.
    assert.equal(lines.find((line) => !line.startsWith('#')), `iseq \${platform} pcbios || chain --autofree ${url}/assets/sshd-equinixmetal.ipxe?arch=\${buildarch:uristring}&platform=\${platform:uristring} ||`);
    assert.ok(lines.includes(`set base-url ${url}/assets`), script);
    assert.ok(lines.includes('set kernel-params ip=dhcp nomodeset ro serial console=ttyS1,115200 console=tty0 dm=x'), script);
    assert.ok(lines.includes('kernel ${base-url}/sshd-kernel ${kernel-params} || goto bootdepot-failed-1'), script);
    assert.ok(lines.includes('initrd ${base-url}/sshd-initrd.img || goto bootdepot-failed-2'), script);
    const arm = await (await fetch(`${url}/assets/linuxkit/web-packet.ipxe?arch=arm64&platform=efi`, { headers: IPXE })).text();
    assert.ok(arm.split('\n').includes('kernel ${base-url}/web-kernel initrd=initrd root=/dev/ram0 ${kernel-params} || goto bootdepot-failed-2'), arm);
    assert.doesNotMatch(arm, /iseq \$\{platform\}/);
  });

  it('fails linuxkit run\'s check for a set that is not there, and makes iPXE wait naming it', async (t) => {
    const { url } = await server(t, { 'linuxkit/web-kernel': 'k' });
    const checks = await linuxkitRunChecks(`${url}/assets/linuxkit`, 'web', 'equinixmetal');
    assert.equal(checks[0]?.status, 404);
    const waiting = await (await fetch(`${url}/assets/linuxkit/web-equinixmetal.ipxe`, { headers: IPXE })).text();
    assert.match(waiting, /^echo bootdepot: profile linuxkit-web: linuxkit\/web-initrd\.img missing/m);
    assert.match(waiting, new RegExp(`^chain --autofree ${url}/assets/linuxkit/web-equinixmetal\\.ipxe \\|\\| goto bootdepot-wait$`, 'm'));
  });

  it('serves a script kept as a file as it is', async (t) => {
    const own = '#!ipxe\ndhcp\nchain http://elsewhere/boot\n';
    const { url } = await server(t, { ...SET, 'sshd-packet.ipxe': own });
    assert.equal(await (await fetch(`${url}/assets/sshd-packet.ipxe`)).text(), own);
    assert.equal((await fetch(`${url}/assets/other-thing.ipxe`)).status, 404);
  });
});
