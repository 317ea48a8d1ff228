/**
 * QEMU virtual machines that network-boot with real iPXE firmware, for the end-to-end suite.
 *
 * BIOS: SeaBIOS runs the iPXE option ROM of the virtio NIC (Debian's ipxe-qemu pxe-virtio.rom).
 * UEFI: OVMF with the EFI iPXE driver (efi-virtio.rom). Either way QEMU's user-mode network
 * hands out the boot URL by DHCP and maps 10.0.2.2 to the host's loopback, so the guest talks
 * to a bootdepot on 127.0.0.1 and to nothing else.
 *
 * The serial console goes to a file and to memory; a test waits for a marker on it. Every VM is
 * bounded: killed at its limit (3 minutes at most), on kill(), and when this process exits. It
 * runs under `timeout --signal=KILL` in its own process group too, so even a test process that
 * dies hard leaves no VM behind for long.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, createWriteStream, type WriteStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';

export type Firmware = 'bios' | 'uefi';

export const QEMU = 'qemu-system-x86_64';
export const ROMS: Record<Firmware, string> = {
  bios: '/usr/lib/ipxe/qemu/pxe-virtio.rom',
  uefi: '/usr/lib/ipxe/qemu/efi-virtio.rom',
};
export const OVMF = '/usr/share/ovmf/OVMF.fd';
/** QEMU's user-mode network: the host's loopback as the guest sees it. */
export const HOST_FROM_GUEST = '10.0.2.2';
export const DEFAULT_MAC = '52:54:00:12:34:56';
export const DEFAULT_UUID = 'b00dde90-0e2e-4000-8000-525400123456';
/** No VM lives longer than this, whatever a test asks for. */
export const VM_HARD_LIMIT_MS = 3 * 60_000;

export interface VmOptions {
  /** Used in file names and messages. */
  name: string;
  /** Directory for the serial log, the QEMU stderr log, the monitor socket and screendumps. */
  workDir: string;
  firmware: Firmware;
  /** DHCP boot file: the URL iPXE chains first, e.g. `http://10.0.2.2:PORT/boot.ipxe`. */
  bootfile: string;
  mac?: string;
  /** SMBIOS system UUID (iPXE's `${uuid}`); DEFAULT_UUID unless given. */
  uuid?: string;
  /** SMBIOS system serial number (iPXE's `${serial}`); QEMU sets none unless given. */
  serial?: string;
  memoryMiB?: number;
  /** Kill the VM after this long; at most VM_HARD_LIMIT_MS (the default). */
  limitMs?: number;
  extraArgs?: string[];
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed because it reached its time limit. */
  timedOut: boolean;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Serial output that means the wait can never succeed (a panic, a failure marker). */
  failOn?: (string | RegExp)[];
}

export interface Vm {
  readonly name: string;
  readonly args: readonly string[];
  readonly serialLogPath: string;
  readonly stderrLogPath: string;
  readonly monitorPath: string;
  /** The firmware's debug port output (SeaBIOS's log; little or nothing from a release OVMF). */
  readonly firmwareLogPath: string;
  /** What the firmware wrote to its debug port so far. */
  firmwareLog(): Promise<string>;
  /** Serial console output so far. */
  serial(): string;
  /** The last lines of the serial console, for failure messages. */
  serialTail(lines?: number): string;
  /** QEMU's own messages (stderr). */
  stderr(): string;
  running(): boolean;
  /** Resolves with the (complete) serial line holding the marker; rejects on timeout, a failOn match or the VM's exit. */
  waitFor(marker: string | RegExp, options: WaitOptions): Promise<string>;
  readonly exited: Promise<VmExit>;
  /** Saves the VM's screen (where iPXE draws under BIOS) as a PNG; returns its path. */
  screendump(file?: string): Promise<string>;
  /** Sends one command to the QEMU monitor and returns its output. */
  monitor(command: string): Promise<string>;
  /** Kills the VM (idempotent) and waits for it to be gone. */
  kill(): Promise<VmExit>;
}

async function usable(file: string, mode: number): Promise<boolean> {
  try {
    await access(file, mode);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', command);
    if (await usable(candidate, fsConstants.X_OK)) return candidate;
  }
  return undefined;
}

/** What is missing for running a VM with this firmware here, as sentences; empty when all is there. */
export async function missingVmPrerequisites(firmware: Firmware): Promise<string[]> {
  const missing: string[] = [];
  if (!(await findOnPath(QEMU))) missing.push(`${QEMU} is not on PATH: apt-get install qemu-system-x86`);
  if (!(await findOnPath('timeout'))) missing.push('timeout (coreutils) is not on PATH');
  if (!(await usable(ROMS[firmware], fsConstants.R_OK))) missing.push(`${ROMS[firmware]} is missing: apt-get install ipxe-qemu`);
  if (firmware === 'uefi' && !(await usable(OVMF, fsConstants.R_OK))) missing.push(`${OVMF} is missing: apt-get install ovmf`);
  return missing;
}

/**
 * How the VM shows its screen: BOOTDEPOT_E2E_DISPLAY unset or empty runs headless; `1` uses
 * QEMU's default display (a window when there is a desktop); any other value is passed as
 * `-display VALUE`, e.g. `vnc=127.0.0.1:5` (then watch it with a VNC viewer on port 5905).
 */
function displayArgs(): string[] {
  const value = process.env.BOOTDEPOT_E2E_DISPLAY ?? '';
  if (value === '' || value === '0') return ['-display', 'none'];
  if (value === '1') return [];
  return ['-display', value];
}

export function qemuArgs(options: VmOptions, files: { monitorPath: string; firmwareLogPath?: string }): string[] {
  const mac = options.mac ?? DEFAULT_MAC;
  const args = [
    '-name', options.name,
    '-accel', 'tcg',
    '-m', String(options.memoryMiB ?? 512),
    '-smp', '1',
    '-no-reboot',
    ...displayArgs(),
    '-serial', 'stdio',
    '-monitor', `unix:${files.monitorPath},server=on,wait=off`,
    '-netdev', `user,id=n0,bootfile=${options.bootfile}`,
    // disable-legacy=on: Debian's virtio ROMs carry the modern device id 1af4:1041. QEMU patches
    // the ids only into the ROM it picks itself; given romfile=, a transitional device (1af4:1000)
    // keeps a ROM with the wrong id, which SeaBIOS silently refuses to run.
    '-device', `virtio-net-pci,netdev=n0,disable-legacy=on,romfile=${ROMS[options.firmware]},mac=${mac},bootindex=1`,
    '-boot', 'order=n',
  ];
  args.push('-uuid', options.uuid ?? DEFAULT_UUID);
  // QEMU's option syntax escapes a comma by doubling it.
  if (options.serial !== undefined) args.push('-smbios', `type=1,serial=${options.serial.replace(/,/g, ',,')}`);
  if (options.firmware === 'uefi') args.push('-bios', OVMF);
  // The firmware's debug port: SeaBIOS logs there what it runs and boots ("Booting from ROM...").
  if (files.firmwareLogPath) args.push('-debugcon', `file:${files.firmwareLogPath}`, '-global', 'isa-debugcon.iobase=0x402');
  args.push(...(options.extraArgs ?? []));
  return args;
}

const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const child of live) killGroup(child);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of live) killGroup(child);
      // Our listener is gone now: the signal does what it would have done without us.
      process.kill(process.pid, signal);
    });
  }
}

function matches(text: string, pattern: string | RegExp): { index: number; length: number } | undefined {
  if (typeof pattern === 'string') {
    const index = text.indexOf(pattern);
    return index < 0 ? undefined : { index, length: pattern.length };
  }
  const found = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(text);
  return found ? { index: found.index, length: found[0].length } : undefined;
}

function lineAround(text: string, at: { index: number; length: number }): string {
  const start = text.lastIndexOf('\n', at.index) + 1;
  const end = text.indexOf('\n', at.index + at.length);
  return text.slice(start, end < 0 ? undefined : end).replace(/\r/g, '');
}

export function startVm(options: VmOptions): Vm {
  const limitMs = Math.min(options.limitMs ?? VM_HARD_LIMIT_MS, VM_HARD_LIMIT_MS);
  const serialLogPath = path.join(options.workDir, `${options.name}.serial.log`);
  const stderrLogPath = path.join(options.workDir, `${options.name}.qemu.log`);
  const monitorPath = path.join(options.workDir, `${options.name}.monitor.sock`);
  const firmwareLogPath = path.join(options.workDir, `${options.name}.firmware.log`);
  const args = qemuArgs(options, { monitorPath, firmwareLogPath });

  installExitHooks();
  // timeout is the backstop if this process dies without killing the VM; the timer below is the rule.
  const backstopSeconds = Math.ceil(limitMs / 1000) + 15;
  const child = spawn('timeout', ['--signal=KILL', String(backstopSeconds), QEMU, ...args], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);

  let serialText = '';
  let stderrText = '';
  const serialFile: WriteStream = createWriteStream(serialLogPath);
  const stderrFile: WriteStream = createWriteStream(stderrLogPath);
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    serialText += chunk.toString('utf8');
    serialFile.write(chunk);
    notify();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString('utf8');
    stderrFile.write(chunk);
  });

  let timedOut = false;
  const limitTimer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, limitMs);
  limitTimer.unref();

  let hasExited = false;
  const exited = new Promise<VmExit>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (hasExited) return;
      hasExited = true;
      clearTimeout(limitTimer);
      live.delete(child);
      // The group may still hold QEMU if only timeout went away.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // nothing left
        }
      }
      const closed = [serialFile, stderrFile].map((f) => new Promise<void>((done) => f.end(done)));
      void Promise.all(closed).then(() => {
        notify();
        resolve({ code, signal, timedOut });
      });
    };
    child.once('exit', finish);
    child.once('error', (error) => {
      stderrText += `spawn failed: ${error.message}\n`;
      finish(null, null);
    });
  });

  const serialTail = (lines = 60) =>
    serialText
      .replace(/\r/g, '')
      .split('\n')
      .slice(-lines)
      .join('\n');

  async function monitor(command: string, timeoutMs = 10_000): Promise<string> {
    if (hasExited) throw new Error(`VM ${options.name} has exited; no monitor`);
    return new Promise<string>((resolve, reject) => {
      const socket = connect(monitorPath);
      let buffer = '';
      let sent = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`QEMU monitor: no answer to ${JSON.stringify(command)} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const prompts = buffer.split('(qemu)').length - 1;
        if (!sent && prompts >= 1) {
          sent = true;
          socket.write(`${command}\n`);
        } else if (sent && prompts >= 2) {
          clearTimeout(timer);
          socket.end();
          const output = buffer.slice(buffer.indexOf('(qemu)') + '(qemu)'.length, buffer.lastIndexOf('(qemu)'));
          // Strip the echoed command and terminal escapes.
          resolve(output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '').split('\n').slice(1).join('\n').trim());
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  let shots = 0;
  const vm: Vm = {
    name: options.name,
    args,
    serialLogPath,
    stderrLogPath,
    monitorPath,
    firmwareLogPath,
    firmwareLog: () => readFile(firmwareLogPath, 'latin1').catch(() => ''),
    serial: () => serialText,
    serialTail,
    stderr: () => stderrText,
    running: () => !hasExited,
    exited,
    monitor: (command) => monitor(command),
    async screendump(file) {
      shots += 1;
      const target = file ?? path.join(options.workDir, `${options.name}.screen-${shots}.png`);
      const output = await monitor(`screendump ${target} -f png`);
      if (output !== '') throw new Error(`screendump failed: ${output}`);
      return target;
    },
    waitFor(marker, wait) {
      return new Promise<string>((resolve, reject) => {
        const describe = (why: string) =>
          new Error(`${options.name}: ${why} while waiting for ${String(marker)}\n--- serial (${serialLogPath}), last lines ---\n${serialTail()}` +
            (stderrText ? `\n--- qemu stderr ---\n${stderrText.trim()}` : ''));
        const stop = () => {
          listeners.delete(check);
          clearTimeout(timer);
        };
        const check = () => {
          const found = matches(serialText, marker);
          // Resolve with the whole line: wait for its end unless the VM is gone.
          if (found && (serialText.indexOf('\n', found.index + found.length) >= 0 || hasExited)) {
            stop();
            resolve(lineAround(serialText, found));
            return;
          }
          for (const bad of wait.failOn ?? []) {
            const hit = matches(serialText, bad);
            if (hit) {
              stop();
              reject(describe(`saw ${JSON.stringify(lineAround(serialText, hit))}`));
              return;
            }
          }
          if (hasExited) {
            stop();
            reject(describe(timedOut ? `the VM reached its ${limitMs / 1000} s limit and was killed` : 'the VM exited'));
          }
        };
        const timer = setTimeout(() => {
          stop();
          reject(describe(`no marker after ${wait.timeoutMs / 1000} s`));
        }, wait.timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async kill() {
      killGroup(child);
      return exited;
    },
  };
  return vm;
}
