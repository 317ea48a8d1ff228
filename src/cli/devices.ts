/**
 * `bootdepot devices`: what the admin API knows about machines, from a terminal.
 *   list [--stage S] [--profile P] [--json]      one line per device
 *   show ID [--events N] [--json]                 a device and its recent events
 *   next ID ACTION [PROFILE] [--reason TEXT]      set the next boot (profile|local|hold|once|clear)
 *   delete ID                                     forget a device
 *   watch [--device ID]                           live events until interrupted
 */
import { Command } from 'commander';
import { request } from 'undici';
import { STAGES, type Device, type StoredEvent } from '../state/model.ts';
import { addConnectionOptions, apiJson, CliError, connection, runCli, serverMessage } from './api-client.ts';

type EventJson = Omit<StoredEvent, 'at'> & { at: string };

/**
 * What a terminal would act on rather than show: C0 controls (ESC starts the sequences that
 * clear a screen or set its title), DEL, C1 controls (U+009B is a CSI by itself), and the
 * line separators and bidirectional overrides that make text appear other than it is.
 */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Device-sent text made safe to print: every control character shown as an escape (`\x1b`,
 * `\u009b`), so an operator sees what the machine sent and the terminal does nothing with it.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON for a terminal or a pipe: JSON.stringify escapes C0 controls but leaves DEL, C1 and the
 * rest raw; escaped here too (`\u009b`), which any JSON reader decodes to the same value.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * At most `max` characters (code points) of `text`, escaped for the terminal. A longer text
 * loses its middle (`…`): a problem names what first and why last (`group g matched (...);
 * profile p: assets/k missing from the assets directory`), and both are worth a column.
 */
function cell(text: string, max = Infinity): string {
  const chars = [...text];
  if (chars.length <= max) return terminalSafe(text);
  const head = Math.floor((max - 1) / 3);
  return terminalSafe(`${chars.slice(0, head).join('')}…${chars.slice(chars.length - (max - 1 - head)).join('')}`);
}

/** Widest PROBLEM shown in `devices list`; `devices show` and `--json` have all of it. */
const PROBLEM_WIDTH = 72;

/** Columns of already-escaped cells. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length))) ?? [];
  return rows.map((row) => row.map((c, i) => c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - [...c].length))).join('  ').trimEnd()).join('\n');
}

function describeNextBoot(device: Device): string {
  const next = device.nextBoot;
  return next ? `${next.action}${next.profile ? ` ${next.profile}` : ''}` : '-';
}

/** One human line per event, escaped for the terminal (paths, reasons and messages come from devices). */
export function describeEvent(event: EventJson): string {
  const d = event.detail;
  const what = (() => {
    switch (d.type) {
      case 'script':
        return `script ${d.action}${d.profile ? ` ${d.profile}` : ''}: ${d.reason}`;
      case 'download':
        if (d.phase === 'started') return `${d.role} started ${d.path}${d.total !== undefined ? ` (${d.total} bytes)` : ''}`;
        return `${d.role} ${d.phase} ${d.path} (${d.bytes}${d.total !== undefined && d.phase !== 'completed' ? ` of ${d.total}` : ''} bytes${d.rate !== undefined ? `, ${d.rate} bytes/s` : ''})`;
      case 'beacon':
        return 'booting (beacon)';
      case 'report':
        return `reported ${d.state}${d.code !== undefined ? ` ${d.code}` : ''}${d.message ? `: ${d.message}` : ''}`;
      case 'next-boot':
        return `next boot ${d.nextBoot ? `${d.nextBoot.action}${d.nextBoot.profile ? ` ${d.nextBoot.profile}` : ''} (${d.nextBoot.reason})` : 'cleared'} by ${d.by}`;
      case 'config':
        return `${d.what} ${d.status}${d.reason ? `: ${d.reason}` : ''}`;
      default:
        // A kind of event newer than this command: still one line.
        return (d as { type: string }).type;
    }
  })();
  return terminalSafe(`${event.at}  ${event.deviceId}  ${what}`);
}

export function devicesCommand(): Command {
  const devices = addConnectionOptions(new Command('devices').description('inspect and steer machines through a running bootdepot'));

  devices
    .command('list')
    .description('list devices')
    .option('--stage <stage>', `only devices at this stage: ${STAGES.join(', ')}`)
    .option('--profile <profile>', 'only devices last booted with this profile')
    .option('--json', 'print JSON')
    .action((opts: { stage?: string; profile?: string; json?: boolean }, command: Command) =>
      runCli(async () => {
        // Checked here too, so a typo lists the choices without a round trip (and without a token).
        if (opts.stage !== undefined && !(STAGES as readonly string[]).includes(opts.stage)) {
          throw new CliError(`--stage ${JSON.stringify(opts.stage)}: expected one of ${STAGES.join(', ')}`);
        }
        const query = new URLSearchParams({ ...(opts.stage ? { stage: opts.stage } : {}), ...(opts.profile ? { profile: opts.profile } : {}) }).toString();
        const { devices: list } = await apiJson<{ devices: Device[] }>(connection(command), 'GET', `/devices${query ? `?${query}` : ''}`);
        if (opts.json) {
          process.stdout.write(`${safeJson(list)}\n`);
          return;
        }
        const rows = [['DEVICE', 'STAGE', 'PROFILE', 'BOOTS', 'LAST SEEN', 'IP', 'NEXT BOOT', 'PROBLEM']];
        for (const d of list) {
          rows.push(
            [d.id, d.stage ?? '-', d.lastProfile ?? '-', String(d.bootCount), d.lastSeen, d.lastIp ?? '-', describeNextBoot(d)].map((text) => cell(text)).concat(cell(d.problem ?? '-', PROBLEM_WIDTH)),
          );
        }
        process.stdout.write(`${table(rows)}\n`);
      }),
    );

  devices
    .command('show')
    .description('show a device and its recent events')
    .argument('<id>', 'MAC address')
    .option('--events <n>', 'how many events', '30')
    .option('--json', 'print JSON')
    .action((id: string, opts: { events: string; json?: boolean }, command: Command) =>
      runCli(async () => {
        const { device, events } = await apiJson<{ device: Device; events: EventJson[] }>(connection(command), 'GET', `/devices/${encodeURIComponent(id)}?events=${Number(opts.events) || 30}`);
        if (opts.json) {
          process.stdout.write(`${safeJson({ device, events })}\n`);
          return;
        }
        const summary = [
          `device     ${device.id}`,
          `stage      ${device.stage ?? '-'}${device.lastReport ? ` (reported ${device.lastReport.state}${device.lastReport.message ? `: ${device.lastReport.message}` : ''})` : ''}`,
          `profile    ${device.lastProfile ?? '-'}${device.lastGroup ? ` (group ${device.lastGroup})` : ''}`,
          `boots      ${device.bootCount}, first seen ${device.firstSeen}, last seen ${device.lastSeen} from ${device.lastIp ?? '-'}`,
          `problem    ${device.problem ?? '-'}`,
          `next boot  ${describeNextBoot(device)}${device.nextBoot ? `: ${device.nextBoot.reason}` : ''}`,
          `identity   ${Object.entries(device.identity).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`,
        ];
        const lines = [...summary.map(terminalSafe), '', ...[...events].reverse().map(describeEvent)];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  devices
    .command('next')
    .description('set the next boot: profile [PROFILE] | local | hold | once PROFILE | clear')
    .argument('<id>', 'MAC address')
    .argument('<action>', 'profile, local, hold, once or clear')
    .argument('[profile]', 'profile for once (or to pin with profile)')
    .option('--reason <text>', 'why (recorded with the change)')
    .action((id: string, action: string, profile: string | undefined, opts: { reason?: string }, command: Command) =>
      runCli(async () => {
        const conn = connection(command);
        const path = `/devices/${encodeURIComponent(id)}/next-boot`;
        const { device } =
          action === 'clear'
            ? await apiJson<{ device: Device }>(conn, 'DELETE', path)
            : await apiJson<{ device: Device }>(conn, 'PUT', path, { action, ...(profile ? { profile } : {}), ...(opts.reason ? { reason: opts.reason } : {}) });
        process.stdout.write(`${terminalSafe(`${device.id}: next boot ${describeNextBoot(device)}`)}\n`);
      }),
    );

  devices
    .command('delete')
    .description('forget a device and its history')
    .argument('<id>', 'MAC address')
    .action((id: string, _opts: unknown, command: Command) =>
      runCli(async () => {
        await apiJson(connection(command), 'DELETE', `/devices/${encodeURIComponent(id)}`);
        process.stdout.write(`${terminalSafe(id)}: deleted\n`);
      }),
    );

  devices
    .command('watch')
    .description('print boot events as they happen (Ctrl-C to stop)')
    .option('--device <id>', 'only this device')
    .action((opts: { device?: string }, command: Command) =>
      runCli(async () => {
        const conn = connection(command);
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort());
        const res = await request(`${conn.server}/api/v1/events/stream${opts.device ? `?device=${encodeURIComponent(opts.device)}` : ''}`, {
          headers: { authorization: `Bearer ${conn.token}`, accept: 'text/event-stream' },
          signal: controller.signal,
          bodyTimeout: 0,
        }).catch((error: unknown) => {
          throw new CliError(`cannot reach ${conn.server}: ${(error as Error).message}`);
        });
        if (res.statusCode !== 200) throw new CliError(serverMessage(res.statusCode, await res.body.text()));
        let buffer = '';
        // The stream ends only when we stop it: the server going away (shut down, restarted,
        // network) ends it too, and the operator must not mistake that for a clean exit.
        let cause = 'the server ended the event stream';
        try {
          for await (const chunk of res.body) {
            buffer += (chunk as Buffer).toString();
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const message = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const data = message.split('\n').find((line) => line.startsWith('data: '));
              if (data) process.stdout.write(`${describeEvent(JSON.parse(data.slice(6)) as EventJson)}\n`);
            }
          }
        } catch (error) {
          cause = (error as Error).message;
        }
        if (!controller.signal.aborted) throw new CliError(`connection to ${conn.server} closed: ${cause}`);
      }),
    );
  return devices;
}
