/**
 * GRUB configs for `/grub`: machines that netboot GRUB (UEFI HTTP Boot, arm64 servers) ask
 * here instead of `/ipxe` and get the same decision, in GRUB's language. A booting answer has
 * matchbox's shape: an EFI entry (`linuxefi`/`initrdefi`), a BIOS entry (`linux`/`initrd`, which
 * upstream GRUB also uses under EFI and on arm64), and, as bootdepot's addition, a last entry
 * that waits and asks again when neither loads, so a machine never sits at a dead GRUB prompt.
 *
 * Every word that comes from a device (labels in URLs, the reason in an `echo`) is single-quoted
 * by `grubQuote`; kernel arguments, which operators write, are double-quoted by
 * `grubDoubleQuote` so GRUB variables in them still expand as they do under matchbox.
 */
import { grubDoubleQuote, grubQuote } from '../common/escape.ts';
import type { BootImage, RetryPolicy } from './script.ts';

const LABEL = 'bootdepot';

/** A comment line: nothing in it runs, but a line break in it would. */
function commentLine(text: string): string {
  return `# ${text.replace(/[\r\n\u2028\u2029\u0085]+/g, ' ')}`;
}

/**
 * A URL as GRUB names a file on an HTTP server: `http://host:port/path?q` is
 * `(http,host:port)/path?q`. A path (`/assets/...`) is on bootdepot itself, so it is made
 * absolute against `baseUrl` rather than left to GRUB's `$root`, which names the server GRUB
 * itself came from. Undefined for anything GRUB cannot fetch over HTTP.
 */
export function grubPath(reference: string, baseUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(reference, `${baseUrl}/`);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password) return undefined;
  return `(${url.protocol.slice(0, -1)},${url.host})${url.pathname}${url.search}`;
}

export interface GrubBoot {
  comments: string[];
  /** Menu entry title (e.g. the profile's id); quoted here. */
  title: string;
  image: BootImage;
  baseUrl: string;
  retry: RetryPolicy;
  /** Fetched (and printed) after the images are loaded, just before `boot`. */
  beaconUrl?: string | undefined;
  askAgainUrl: string;
}

/** The boot config, or the reference GRUB cannot fetch. */
export function renderGrubBoot(boot: GrubBoot): { config: string } | { unreachable: string } {
  const kernel = grubPath(boot.image.kernel, boot.baseUrl);
  if (!kernel) return { unreachable: boot.image.kernel };
  const initrds: string[] = [];
  for (const initrd of boot.image.initrds) {
    const path = grubPath(initrd, boot.baseUrl);
    if (!path) return { unreachable: initrd };
    initrds.push(path);
  }
  const again = grubPath(boot.askAgainUrl, boot.baseUrl);
  if (!again) return { unreachable: boot.askAgainUrl };
  const beacon = boot.beaconUrl ? grubPath(boot.beaconUrl, boot.baseUrl) : undefined;

  const args = boot.image.args.map(grubDoubleQuote);
  const entry = (title: string, linux: string, initrd: string) => [
    `menuentry ${grubQuote(`${LABEL}: ${title}`)} {`,
    `  echo ${grubQuote('Loading kernel')}`,
    [`  ${linux}`, grubQuote(kernel), ...args].join(' '),
    ...(initrds.length > 0 ? [`  echo ${grubQuote('Loading initrd')}`, [`  ${initrd}`, ...initrds.map(grubQuote)].join(' ')] : []),
    // The beacon says "images loaded, booting now"; if it fails, `boot` runs all the same.
    ...(beacon ? [`  cat ${grubQuote(beacon)}`] : []),
    '  boot',
    '}',
  ];
  const lines = [
    ...boot.comments.map(commentLine),
    'default=0',
    'fallback="1 2"',
    'timeout=1',
    ...entry(`${boot.title} (EFI)`, 'linuxefi', 'initrdefi'),
    ...entry(`${boot.title} (BIOS)`, 'linux', 'initrd'),
    `menuentry ${grubQuote(`${LABEL}: could not boot ${boot.title}; ask the server again`)} {`,
    `  echo ${grubQuote(`${LABEL}: could not load or boot the kernel and initrd`)}`,
    ...askAgain(boot.retry.giveUpDelay, again).map((line) => `  ${line}`),
    '}',
  ];
  return { config: `${lines.join('\n')}\n` };
}

/**
 * A config that waits and asks again: the reason is on the machine's screen, then GRUB sleeps
 * and loads this same URL as its config, picking up the fix without a power cycle.
 */
export function renderGrubWait(comments: string[], message: string, interval: number, askAgainUrl: string, baseUrl: string): string {
  const again = grubPath(askAgainUrl, baseUrl) ?? askAgainUrl;
  return [
    ...comments.map(commentLine),
    `echo ${grubQuote(`${LABEL}: ${message}`)}`,
    ...askAgain(interval, again),
    '',
  ].join('\n');
}

/** Attempts at loading the config again before the machine is rebooted (to netboot afresh). */
const ASK_AGAIN_ATTEMPTS = 10;

/**
 * Sleep, then load the config from `again`. `configfile` returns only when that fails (the
 * server is down, or refuses with 429): then the next attempt, and after the last a reboot, so
 * the machine never stays at a GRUB prompt. `for` is GRUB's own syntax and needs no module.
 */
function askAgain(interval: number, again: string): string[] {
  const attempts = Array.from({ length: ASK_AGAIN_ATTEMPTS }, (_, i) => String(i + 1)).join(' ');
  return [
    `for ${LABEL}_attempt in ${attempts}; do`,
    `  echo ${grubQuote(`${LABEL}: asking again in ${interval} seconds`)}`,
    `  sleep ${interval}`,
    `  configfile ${grubQuote(again)}`,
    'done',
    `echo ${grubQuote(`${LABEL}: the server did not answer ${ASK_AGAIN_ATTEMPTS} times; rebooting to netboot again`)}`,
    'reboot',
  ];
}

/**
 * Hands the machine back to its disk: under EFI `exit` returns to the firmware's boot order;
 * under BIOS the first disk's boot sector is chained, and `exit` if that fails.
 */
export function renderGrubLocal(comment: string, message: string): string {
  return [
    commentLine(comment),
    `echo ${grubQuote(`${LABEL}: booting from the local disk (${message})`)}`,
    'if [ "$grub_platform" = "efi" ]; then exit; fi',
    'set root=(hd0)',
    'chainloader +1',
    'boot',
    `echo ${grubQuote(`${LABEL}: the local disk did not boot; handing the machine back to its firmware`)}`,
    'exit',
    '',
  ].join('\n');
}
