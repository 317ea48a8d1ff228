/**
 * What device-sent text can do to an operator's terminal, and who may read /metrics.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { escapeControlCharacters } from '../../src/http/log-hygiene.ts';
import { captureLogger, testApp, waitFor } from '../helpers.ts';

const DATA = { 'profiles/p.yaml': 'boot: {kernel: /assets/k}\n', 'groups/default.yaml': 'profile: p\n' };
// ESC [ 2 J clears the screen; U+009B is the one-character CSI of C1; BEL, DEL, a line break.
const HOSTILE_AGENT = 'iPXE\u001b[2J\u009b2J\u0007\u007f\u001b]0;owned\u0007';
const HOSTILE_MAC = '%1B%5B2J%C2%9B2J%0A%07';

describe('logs of device-sent text', () => {
  it('escape ESC, C1 and other control characters in a terminal (pino-pretty) log', async (t) => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    const logger = pino({ level: 'info' }, pretty({ colorize: true, sync: true, destination: stream }));
    const { app } = await testApp(t, { data: DATA, assets: { k: 'k' }, logger });
    const bad = await app.inject({ url: `/ipxe?mac=${HOSTILE_MAC}`, headers: { 'user-agent': HOSTILE_AGENT } });
    assert.equal(bad.statusCode, 400);
    await app.inject({ url: '/boot.ipxe', headers: { 'user-agent': HOSTILE_AGENT } });
    await app.inject({ url: '/assets/k', headers: { 'user-agent': HOSTILE_AGENT } });
    await waitFor(() => (text.match(/\\x1b\[2J/g) ?? []).length >= 2, 5000, `both request lines in ${JSON.stringify(text)}`);
    // Colour codes of pino-pretty itself are SGR (ESC [ ... m); nothing else may reach the terminal.
    const withoutColours = text.replace(/\u001b\[[0-9;]*m/g, '');
    assert.doesNotMatch(withoutColours, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, JSON.stringify(withoutColours));
    assert.match(text, /iPXE\\x1b\[2J\\x9b2J\\x07\\x7f\\x1b\]0;owned\\x07/);
  });

  it('escape the same characters in JSON logs, where pino leaves DEL and C1 as they are', async (t) => {
    const { logger, lines } = captureLogger();
    const { app } = await testApp(t, { data: DATA, assets: { k: 'k' }, logger });
    await app.inject({ url: `/ipxe?mac=${HOSTILE_MAC}`, headers: { 'user-agent': HOSTILE_AGENT } });
    const line = lines.find((l) => l.msg === 'request');
    assert.ok(line, JSON.stringify(lines));
    assert.equal(line.agent, escapeControlCharacters(HOSTILE_AGENT));
    assert.doesNotMatch(JSON.stringify(lines), /[\u007f-\u009f]/);
    assert.equal(escapeControlCharacters('a\u001bb\u009bc\nd'), 'a\\x1bb\\x9bc\\x0ad');
  });
});

describe('GET /metrics', () => {
  const token = 'metrics-token-0123456789';
  it('needs server.metricsToken when one is set: 401 without it', async (t) => {
    const { app } = await testApp(t, { data: DATA, yaml: `server:\n  metricsToken: ${token}\n` });
    const missing = await app.inject({ url: '/metrics' });
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="bootdepot metrics"');
    assert.doesNotMatch(missing.body, /bootdepot_/);
    assert.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode, 401);
    const allowed = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
    assert.equal(allowed.statusCode, 200);
    assert.match(allowed.body, /^bootdepot_open_connections /m);
    // The probes stay open.
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  });

  it('refuses a short metrics token at start', async (t) => {
    await assert.rejects(testApp(t, { data: DATA, yaml: 'server:\n  metricsToken: short\n' }), /server\.metricsToken.*at least 16/);
  });
});
