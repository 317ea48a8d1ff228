/** `bootdepot push` against a running server. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { gzipSync, zstdCompressSync } from 'node:zlib';
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

describe('bootdepot push linuxkit --decompress', () => {
  it('decompresses a gzip kernel and initrd as linuxkit push --decompress does, and needs no cmdline', async (t) => {
    const kernel = randomBytes(300 * 1024);
    const initrd = Buffer.concat([Buffer.from('070701'), randomBytes(100 * 1024)]);
    const dir = await makeTree(t, { 'arm-kernel': gzipSync(kernel), 'arm-initrd.img': gzipSync(initrd) });
    const { url, assetsDir } = await server(t);
    const result = await run(['push', 'linuxkit', 'arm', '--dir', dir, '--decompress', '--server', url, '--token', TOKEN]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /decompressed .*arm-kernel \(gzip\)/);
    assert.match(result.stderr, /uploaded .*arm-kernel -> \/assets\/linuxkit\/arm-kernel \(307200 bytes/);
    assert.deepEqual(await readFile(path.join(assetsDir, 'linuxkit/arm-kernel')), kernel);
    assert.deepEqual(await readFile(path.join(assetsDir, 'linuxkit/arm-initrd.img')), initrd);
    assert.match(result.stdout, new RegExp(`linuxkit run equinixmetal -base-url ${url}/assets/linuxkit arm$`, 'm'));
    // No cmdline: the set boots with linuxkit's own arguments only.
    const script = await (await request(`${url}/linuxkit/arm.ipxe?arch=arm64`)).body.text();
    assert.match(script, /^set kernel-params ip=dhcp nomodeset ro$/m);
  });

  it('uploads what is not compressed as it is, zstd decompressed', async (t) => {
    const bzImage = Buffer.concat([Buffer.from('MZ'), randomBytes(4096)]);
    const initrd = randomBytes(8192);
    const dir = await makeTree(t, { 'x-kernel': bzImage, 'x-initrd.img': zstdCompressSync(initrd), 'x-cmdline': 'console=ttyS0\n' });
    const { url, assetsDir } = await server(t);
    const result = await run(['push', 'linuxkit', 'x', '--dir', dir, '--decompress', '--server', url, '--token', TOKEN]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /x-kernel is not compressed: uploading it as it is/);
    assert.deepEqual(await readFile(path.join(assetsDir, 'linuxkit/x-kernel')), bzImage);
    assert.deepEqual(await readFile(path.join(assetsDir, 'linuxkit/x-initrd.img')), initrd);
    assert.equal(await readFile(path.join(assetsDir, 'linuxkit/x-cmdline'), 'utf8'), 'console=ttyS0\n');
  });

  it('refuses bzip2 and xz with the command that undoes them, uploading nothing', async (t) => {
    const { url, assetsDir } = await server(t);
    for (const [format, magic, undo] of [['bzip2', Buffer.from('BZh91AY&SY'), 'bunzip2 -k'], ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00]), 'unxz -k']] as const) {
      const dir = await makeTree(t, { 'c-kernel': Buffer.concat([magic, randomBytes(64)]), 'c-initrd.img': gzipSync(randomBytes(64)) });
      const result = await run(['push', 'linuxkit', 'c', '--dir', dir, '--decompress', '--server', url, '--token', TOKEN]);
      assert.equal(result.code, 1);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] ?? '', new RegExp(`c-kernel is ${format}-compressed; --decompress undoes gzip and zstd only: run \`${undo} .*c-kernel\``));
    }
    assert.equal(await stat(path.join(assetsDir, 'linuxkit/c-kernel')).catch(() => undefined), undefined);
  });

  it('removes a cmdline left from an earlier push when the new set has none', async (t) => {
    const { url, assetsDir } = await server(t);
    const first = await makeTree(t, { 's-kernel': 'k', 's-initrd.img': 'i', 's-cmdline': 'old=1\n' });
    assert.equal((await run(['push', 'linuxkit', 's', '--dir', first, '--server', url, '--token', TOKEN])).code, 0);
    assert.equal(await readFile(path.join(assetsDir, 'linuxkit/s-cmdline'), 'utf8'), 'old=1\n');
    const second = await makeTree(t, { 's-kernel': 'k2', 's-initrd.img': 'i2' });
    const result = await run(['push', 'linuxkit', 's', '--dir', second, '--server', url, '--token', TOKEN]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /removed \/assets\/linuxkit\/s-cmdline/);
    assert.equal(await stat(path.join(assetsDir, 'linuxkit/s-cmdline')).catch(() => undefined), undefined);
    assert.doesNotMatch(await (await request(`${url}/linuxkit/s.ipxe`)).body.text(), /old=1/);
  });
});
