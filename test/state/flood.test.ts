/** What a flood of script requests with made-up MACs leaves in the SQLite store. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { floodScripts } from './flood.ts';

const MiB = 1024 * 1024;

describe('a flood of script requests with made-up MACs', () => {
  it('leaves the database and its WAL under 64 MiB and at most state.maxUnknownDevices devices, while others are answered', async (t) => {
    const result = await floodScripts(t, { requests: 20_000 });
    t.diagnostic(JSON.stringify(result));
    assert.equal(result.statuses[200], 20_000, 'every script answered');
    assert.ok(result.databaseBytes + result.maxWalBytes < 64 * MiB, `database ${result.databaseBytes} + WAL at most ${result.maxWalBytes} bytes`);
    // The default limit, and what came after the last count (a hundredth of it) at most.
    assert.ok(result.devices <= 10_000 + 100 + 1, `${result.devices} devices kept`);
    assert.ok(result.events <= result.devices * 2, `${result.events} events kept`);
    assert.equal(result.probe.ok, result.probe.asked, 'the other client got every answer');
  });
});
