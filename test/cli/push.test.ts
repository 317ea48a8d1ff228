/** `bootdepot push` against a running server. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { makeTree, runBootdepot, testApp } from '../helpers.ts';

const TOKEN = 'push-test-token-0123456789';

const run = runBootdepot;

async function server(t: TestContext) {
  const built = await testApp(t, { data: {}, overrides: [{ key: 'adminToken', value: TOKEN, source: 'test' }] });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const address = built.app.server.address();
  return { ...built, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

describe('bootdepot push', () => {
  it('uploads a LinuxKit set, verifies it and prints the iPXE URL', async (t) => {
    const kernel = randomBytes(2 * 1024 * 1024);
    const dir = await makeTree(t, { 'sshd-kernel': kernel, 'sshd-initrd.img': randomBytes(1024 * 1024), 'sshd-cmdline': 'console=ttyS0\n' });
    const { url, assetsDir } = await server(t);
    const result = await run(['push', 'linuxkit', 'sshd', '--dir', dir, '--server', `${url}/`], { BOOTDEPOT_ADMIN_TOKEN: TOKEN });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^iPXE URL for sshd: ${url}/linuxkit/sshd\\.ipxe$`, 'm'));
    assert.match(result.stderr, /uploaded .*sshd-kernel -> \/assets\/linuxkit\/sshd-kernel \(2097152 bytes, sha256 [0-9a-f]{64}\)/);
    assert.deepEqual(await readFile(path.join(assetsDir, 'linuxkit/sshd-kernel')), kernel);
    const script = await request(`${url}/linuxkit/sshd.ipxe`);
    assert.equal(script.statusCode, 200);
    assert.match(await script.body.text(), /console=ttyS0/);
  });

  it('uploads any files to a path', async (t) => {
    const dir = await makeTree(t, { 'a.iso': 'iso', 'b.img': 'img' });
    const { url, assetsDir } = await server(t);
    const many = await run(['push', path.join(dir, 'a.iso'), path.join(dir, 'b.img'), '--to', 'isos', '--server', url, '--token', TOKEN]);
    assert.equal(many.code, 0, many.stderr);
    assert.equal(await readFile(path.join(assetsDir, 'isos/a.iso'), 'utf8'), 'iso');
    assert.equal(await readFile(path.join(assetsDir, 'isos/b.img'), 'utf8'), 'img');
    const one = await run(['push', path.join(dir, 'a.iso'), '--to', 'renamed/disk.iso', '--server', url, '--token', TOKEN]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(await readFile(path.join(assetsDir, 'renamed/disk.iso'), 'utf8'), 'iso');
  });

  it('says clearly what went wrong', async (t) => {
    const dir = await makeTree(t, { 'x-kernel': 'k' });
    const { url } = await server(t);
    const badToken = await run(['push', path.join(dir, 'x-kernel'), '--to', 'x', '--server', url, '--token', 'wrong-token-wrong-token']);
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /rejected the token \(401\)/);
    const missing = await run(['push', 'linuxkit', 'x', '--dir', dir, '--server', url, '--token', TOKEN]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /missing .*x-initrd\.img \(run linuxkit build first/);
    const noServer = await run(['push', 'linuxkit', 'x', '--dir', dir, '--token', TOKEN], { BOOTDEPOT_SERVER: '' });
    assert.equal(noServer.code, 1);
  });
});
