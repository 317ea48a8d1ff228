/**
 * Building iPXE scripts: the shared shapes (download with retries, wait and ask again) that
 * every profile kind uses. Kinds describe their steps; this module turns them into text.
 */
import { encodeQueryValue } from '../common/escape.ts';

export interface RetryPolicy {
  /** Attempts before giving up. */
  attempts: number;
  /** Seconds between attempts. */
  delay: number;
  /** Seconds to wait after giving up, before asking bootdepot again. */
  giveUpDelay: number;
}

/** One step of a boot: a plain line, or a download that is retried when it fails. */
export type BootStep = { line: string } | { download: string; what: string; role?: 'kernel' | 'initrd' };

/**
 * What a boot loads, as plain URLs and arguments: the form GRUB configs are written from
 * (iPXE scripts are written from the steps, which also carry iPXE's own options).
 */
export interface BootImage {
  /** The kernel's URL, or a path on bootdepot (`/assets/...`). */
  kernel: string;
  /** Kernel arguments, one per word, without iPXE's `initrd=NAME` (GRUB hands initrds over itself). */
  args: string[];
  /** The initrds' URLs, in order. */
  initrds: string[];
}

export interface ScriptPlan {
  /** Comment lines after `#!ipxe`, without the leading `# `. */
  comments: string[];
  /** Lines before the retry loop (e.g. `dhcp`, `set base-url ...`). */
  preamble: string[];
  steps: BootStep[];
  /** The same boot for GRUB; a plan without one cannot answer `/grub`. */
  image?: BootImage;
}

/**
 * Reduces a message to characters that iPXE prints as they are: `echo` still expands `${...}`,
 * and a line break would end the command.
 */
export function echoText(message: string): string {
  return message
    .replace(/[\r\n\u2028\u2029\u0085]+/g, ' ')
    .replace(/[^A-Za-z0-9 .,:;()/_=+@<>?!%-]/g, '_')
    .slice(0, 200);
}

/** A comment line: nothing in it runs, but a line break in it would. */
function commentLine(text: string): string {
  return `# ${text.replace(/[\r\n\u2028\u2029\u0085]+/g, ' ')}`;
}

/** Label values that survive iPXE's URI handling unchanged when written as they are. */
const ROUND_TRIP_SAFE = /^[A-Za-z0-9._~:-]*$/;

/**
 * Query string carrying a device's labels, for URLs that must reach the same group again
 * (wait scripts, retries, chains). iPXE decodes a URL's percent escapes and re-encodes only some
 * characters before sending it: `%2B` leaves as `+` (read back as a space) and `%26` as `&`
 * (which splits the value). So any value that would need an escape is sent as `NAME_hex=HEX`,
 * which no URI handling alters and {@link parseDevice} decodes back to exactly the value sent.
 */
export function labelQuery(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([key, value]) => (ROUND_TRIP_SAFE.test(value) ? `${encodeQueryValue(key)}=${value}` : `${encodeQueryValue(key)}_hex=${Buffer.from(value, 'latin1').toString('hex')}`))
    .join('&');
}

const LABEL = 'bootdepot';

/**
 * The boot script: preamble, then the steps inside a retry loop. A failed download says what
 * failed, waits and starts over (images loaded so far are freed); after the last attempt the
 * machine waits longer and asks bootdepot again, so it never sits at a dead prompt.
 */
export function renderScriptPlan(plan: ScriptPlan, retry: RetryPolicy, askAgainUrl: string, beaconUrl?: string): string {
  const lines = ['#!ipxe', ...plan.comments.map(commentLine), ...plan.preamble];
  lines.push(`set ${LABEL}-attempt:int32 0`, `:${LABEL}-start`);
  const failures: string[] = [];
  plan.steps.forEach((step, index) => {
    if ('line' in step) {
      lines.push(step.line);
      return;
    }
    const label = `${LABEL}-failed-${index}`;
    lines.push(`${step.download} || goto ${label}`);
    failures.push(`:${label}`, `echo ${LABEL}: could not load ${echoText(step.what)}`, `goto ${LABEL}-retry`);
  });
  // The beacon says "images loaded, booting now"; its failure must never stop the boot.
  if (beaconUrl) lines.push(`imgfetch --name ${LABEL}-beacon ${beaconUrl} && imgfree ${LABEL}-beacon ||`);
  lines.push(`boot || goto ${LABEL}-boot-failed`);
  lines.push(...failures);
  lines.push(`:${LABEL}-boot-failed`, `echo ${LABEL}: boot failed`);
  lines.push(
    `:${LABEL}-retry`,
    `inc ${LABEL}-attempt`,
    `iseq \${${LABEL}-attempt} ${retry.attempts} && goto ${LABEL}-give-up ||`,
    `echo ${LABEL}: attempt \${${LABEL}-attempt} of ${retry.attempts} failed; trying again in ${retry.delay} seconds`,
    `sleep ${retry.delay}`,
    'imgfree',
    `goto ${LABEL}-start`,
    `:${LABEL}-give-up`,
    `echo ${LABEL}: giving up after ${retry.attempts} attempts; asking the server again in ${retry.giveUpDelay} seconds`,
    `sleep ${retry.giveUpDelay}`,
    `chain --autofree ${askAgainUrl} || goto ${LABEL}-give-up`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * A script that waits and asks again: for machines bootdepot cannot boot right now (no group,
 * missing images, a broken template). The reason is on the machine's screen and in the log,
 * and the machine picks up the fix on its next poll without a power cycle.
 */
export function renderWaitScript(comments: string[], message: string, interval: number, askAgainUrl: string): string {
  return [
    '#!ipxe',
    ...comments.map(commentLine),
    `:${LABEL}-wait`,
    `echo ${LABEL}: ${echoText(message)}`,
    `echo ${LABEL}: asking again in ${interval} seconds`,
    `sleep ${interval}`,
    `chain --autofree ${askAgainUrl} || goto ${LABEL}-wait`,
    '',
  ].join('\n');
}
