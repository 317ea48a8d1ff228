/**
 * What the dashboard's pages show, as plain data: the fleet's rows and counts, a device's boots
 * as a timeline, the mirror's files and fills. Framework-free and pure (devices and events in, view models out); the templates
 * only lay them out, escaping every value.
 */
import type { CachedFileInfo, FillFailureInfo, FillingFileInfo, MirrorStats } from '../mirror/mirror.ts';
import type { Device, DownloadState, Stage, StoredEvent } from '../state/model.ts';

/** The stage filter's choices: one per stage a person tells apart, plus machines that matched no group. */
export const STAGE_FILTERS = ['booting', 'waiting', 'held', 'local', 'running', 'succeeded', 'failed', 'unmatched'] as const;
export type StageFilter = (typeof STAGE_FILTERS)[number];

const BOOTING: readonly (Stage | null)[] = ['script', 'kernel', 'initrd', 'booting'];

/** The word a person reads for a stage: the four steps of a boot in progress are `booting`. */
export function stageGroup(stage: Stage | null): string {
  if (stage === null) return 'new';
  return BOOTING.includes(stage) ? 'booting' : stage;
}

/** The step of a boot in progress, e.g. `kernel` while the kernel downloads. */
const STEP: Partial<Record<Stage, string>> = { script: 'script sent', kernel: 'downloading the kernel', initrd: 'downloading the initrd', booting: 'kernel started (beacon)' };

/**
 * A device whose last script matched no group: it waits, was told 404, or booted the
 * `boot.unmatched` fallback profile; and no operator has set its next boot since.
 */
export function isUnmatched(device: Device): boolean {
  if (device.nextBoot !== null || device.lastGroup !== null) return false;
  if (device.lastUnmatched === true) return true;
  return (device.lastAction === 'wait' || device.lastAction === 'notFound') && device.lastProfile === null;
}

export function matchesFilter(device: Device, filter: StageFilter | undefined, search: string): boolean {
  if (filter === 'unmatched' ? !isUnmatched(device) : filter !== undefined && stageGroup(device.stage) !== filter) return false;
  const needle = search.trim().toLowerCase();
  if (!needle) return true;
  const haystack = [device.id, device.id.replace(/:/g, '-'), device.identity.hostname, device.identity.serial, device.lastProfile, device.lastGroup, device.identity.uuid, device.lastIp];
  return haystack.some((value) => value?.toLowerCase().includes(needle));
}

export interface FleetRow {
  id: string;
  hostname: string;
  serial: string;
  stage: string;
  /** What the stage means now: the step of a boot, why it waits, the OS's report. */
  detail: string;
  profile: string;
  group: string;
  nextBoot: string;
  lastSeen: string;
  lastSeenAgo: string;
  boots: number;
  /** The current boot's downloads while it boots: one progress bar each. */
  downloads: DownloadBar[];
  /** What the machine sent besides its MAC and hostname, as `field value` pairs (for unknown machines). */
  sent: { field: string; value: string }[];
}

const SENT_FIELDS = ['uuid', 'serial', 'manufacturer', 'product', 'asset', 'arch', 'platform', 'domain', 'ip'] as const;

/** One download as a progress bar: `<progress value max>` (max 0: length unknown). */
export interface DownloadBar {
  name: string;
  phase: string;
  value: number;
  max: number;
  /** e.g. `3.2 MiB of 10.0 MiB (32 %)`, or `failed, HTTP 502`. */
  text: string;
  /** e.g. `1.5 MiB/s`; empty when not known yet. */
  speed: string;
  tone: '' | 'bad';
}

export interface FleetCounts {
  booting: number;
  waiting: number;
  held: number;
  /** Failed, and succeeded, among the devices seen in the last hour. */
  failedLastHour: number;
  doneLastHour: number;
  total: number;
}

export function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

export function nextBootText(device: Device): string {
  const next = device.nextBoot;
  return next ? `${next.action}${next.profile ? ` ${next.profile}` : ''}` : '';
}

function detailOf(device: Device): string {
  if (device.problem) return device.problem;
  if (device.stage && STEP[device.stage]) return STEP[device.stage] ?? '';
  const report = device.lastReport;
  if (report && (device.stage === 'running' || device.stage === 'succeeded' || device.stage === 'failed')) {
    return [report.code !== undefined ? `code ${report.code}` : '', report.message ?? ''].filter(Boolean).join(': ');
  }
  return '';
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

function downloadName(role: string, path: string): string {
  return `${role === 'other' ? 'file' : role} ${path}`;
}

/** A download's progress as a bar: bytes of total, the percentage, the speed. */
export function downloadBar(download: Pick<DownloadState, 'path' | 'role' | 'phase' | 'status' | 'bytes' | 'total' | 'rate'>): DownloadBar {
  const { bytes, total, phase } = download;
  const known = total !== undefined && total > 0;
  const percent = known ? Math.min(100, Math.floor((bytes * 100) / total)) : undefined;
  const amount = known ? `${formatBytes(bytes)} of ${formatBytes(total)} (${percent} %)` : formatBytes(bytes);
  const text =
    phase === 'failed' ? `failed, HTTP ${download.status}` : phase === 'aborted' ? `aborted by the client after ${amount}` : phase === 'completed' ? `${formatBytes(bytes)}, done` : phase === 'started' && bytes === 0 ? `started${known ? `, ${formatBytes(total)}` : ''}` : amount;
  return {
    name: downloadName(download.role, download.path),
    phase,
    // A finished download's bar is full, whatever its length was known to be.
    value: phase === 'completed' ? 1 : known ? bytes : 0,
    max: phase === 'completed' ? 1 : known ? total : 0,
    text,
    speed: download.rate !== undefined && phase !== 'failed' ? formatRate(download.rate) : '',
    tone: phase === 'failed' || phase === 'aborted' ? 'bad' : '',
  };
}

export function fleetRow(device: Device, now: number): FleetRow {
  return {
    id: device.id,
    hostname: device.identity.hostname ?? '',
    serial: device.identity.serial ?? '',
    stage: stageGroup(device.stage),
    detail: detailOf(device),
    profile: device.lastProfile ?? '',
    group: device.lastGroup ?? '',
    nextBoot: nextBootText(device),
    lastSeen: device.lastSeen,
    lastSeenAgo: ago(device.lastSeen, now),
    boots: device.bootCount,
    downloads: stageGroup(device.stage) === 'booting' ? (device.downloads ?? []).map(downloadBar) : [],
    sent: SENT_FIELDS.flatMap((field) => (device.identity[field] !== undefined ? [{ field, value: String(device.identity[field]) }] : [])),
  };
}

export function fleetCounts(devices: readonly Device[], now: number): FleetCounts {
  const hourAgo = new Date(now - 3600_000).toISOString();
  const counts: FleetCounts = { booting: 0, waiting: 0, held: 0, failedLastHour: 0, doneLastHour: 0, total: devices.length };
  for (const device of devices) {
    const group = stageGroup(device.stage);
    if (group === 'booting') counts.booting += 1;
    else if (group === 'waiting') counts.waiting += 1;
    else if (group === 'held') counts.held += 1;
    else if (device.lastSeen >= hourAgo && group === 'failed') counts.failedLastHour += 1;
    else if (device.lastSeen >= hourAgo && group === 'succeeded') counts.doneLastHour += 1;
  }
  return counts;
}

export interface TimelineLine {
  at: string;
  kind: string;
  text: string;
  /** `bad` for failures and refusals, `unverified` for events that changed nothing. */
  tone: '' | 'bad' | 'unverified';
  /** A download still running (its latest progress). */
  bar?: DownloadBar;
}

export interface TimelineEntry {
  /** The boot's id, or empty for events outside a boot (wait scripts, next-boot changes). */
  bootId: string;
  at: string;
  title: string;
  lines: TimelineLine[];
}


function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One event as a line; downloads are paired (started with how it ended) by {@link timeline}. */
function lineOf(event: StoredEvent): TimelineLine | undefined {
  const at = event.at.toISOString();
  const { detail } = event;
  switch (detail.type) {
    case 'script': {
      const what = detail.action === 'boot' ? `boot ${detail.profile ?? ''}` : detail.action;
      const via = detail.group ? ` (group ${detail.group})` : '';
      return { at, kind: 'script', text: `${what}${via}: ${detail.reason} — from ${detail.ip}`, tone: detail.verified === false ? 'unverified' : detail.action === 'boot' || detail.action === 'local' ? '' : 'bad' };
    }
    case 'beacon':
      return { at, kind: 'beacon', text: `the kernel is starting — from ${detail.ip}`, tone: '' };
    case 'config':
      return { at, kind: 'config', text: `${detail.what}: HTTP ${detail.status}${detail.reason ? ` (${detail.reason})` : ''}`, tone: detail.status === 200 ? '' : 'bad' };
    case 'report':
      return {
        at,
        kind: 'report',
        text: `${detail.state}${detail.code !== undefined ? ` (code ${detail.code})` : ''}${detail.message ? `: ${detail.message}` : ''}${detail.verified === false ? ' — unverified, changed nothing' : ''}`,
        tone: detail.verified === false ? 'unverified' : detail.state === 'failed' ? 'bad' : '',
      };
    case 'next-boot': {
      const next = detail.nextBoot;
      return { at, kind: 'next boot', text: next ? `set to ${next.action}${next.profile ? ` ${next.profile}` : ''}: ${next.reason} (by ${detail.by})` : `cleared (by ${detail.by})`, tone: '' };
    }
    case 'download':
      return undefined;
  }
}

/** A device's events (any order) as boots and loose events, newest first. */
export function timeline(events: readonly StoredEvent[]): TimelineEntry[] {
  const ordered = [...events].sort((a, b) => a.at.getTime() - b.at.getTime() || a.id - b.id);
  const entries: TimelineEntry[] = [];
  const boots = new Map<string, TimelineEntry>();
  // Downloads that started and have not ended yet, by boot and path.
  const open = new Map<string, { at: Date; line: TimelineLine; total: number | undefined }>();
  for (const event of ordered) {
    let entry: TimelineEntry | undefined = event.bootId ? boots.get(event.bootId) : undefined;
    if (!entry) {
      const title = event.detail.type === 'script' && event.bootId ? `boot ${event.bootId}${event.detail.profile ? ` — ${event.detail.profile}` : ''}` : '';
      entry = { bootId: event.bootId ?? '', at: event.at.toISOString(), title, lines: [] };
      entries.push(entry);
      if (event.bootId) boots.set(event.bootId, entry);
    }
    const { detail } = event;
    if (detail.type === 'download') {
      const key = `${event.bootId ?? ''} ${detail.path}`;
      const name = downloadName(detail.role, detail.path);
      if (detail.phase === 'started') {
        // While it runs, its bar says how far it got.
        const line: TimelineLine = { at: event.at.toISOString(), kind: 'download', text: name, tone: '' };
        line.bar = downloadBar({ ...detail, bytes: 0 });
        open.set(key, { at: event.at, line, total: detail.total });
        entry.lines.push(line);
        continue;
      }
      const started = open.get(key);
      if (detail.phase === 'progress') {
        // The store keeps a download's latest progress only: it updates the started line.
        const total = detail.total ?? started?.total;
        const bar = downloadBar({ ...detail, ...(total !== undefined ? { total } : {}) });
        if (started) Object.assign(started.line, { bar });
        else entry.lines.push({ at: event.at.toISOString(), kind: 'download', text: name, tone: '', bar });
        continue;
      }
      open.delete(key);
      const ms = detail.ms ?? (started ? event.at.getTime() - started.at.getTime() : undefined);
      const took = ms !== undefined ? ` in ${seconds(ms)}${detail.bytes > 0 ? ` (${formatRate((detail.bytes * 1000) / Math.max(1, ms))})` : ''}` : '';
      const text =
        detail.phase === 'completed'
          ? `${name}: ${formatBytes(detail.bytes)}${took}`
          : detail.phase === 'aborted'
            ? `${name}: aborted by the client after ${formatBytes(detail.bytes)}${took}`
            : `${name}: failed, HTTP ${detail.status}${detail.reason ? ` (${detail.reason})` : ''}`;
      const tone = detail.phase === 'completed' ? '' : 'bad';
      if (started) {
        Object.assign(started.line, { text, tone });
        delete started.line.bar;
      } else entry.lines.push({ at: event.at.toISOString(), kind: 'download', text, tone });
      continue;
    }
    const line = lineOf(event);
    if (line) entry.lines.push(line);
  }
  return entries.reverse();
}

/** What the Mirror view reads of the pull-through mirror (its admin views). */
export interface MirrorInput {
  files: readonly CachedFileInfo[];
  filling: readonly FillingFileInfo[];
  failures: readonly FillFailureInfo[];
  stats: MirrorStats;
}

export interface MirrorViewModel {
  budget: { used: string; max: string; value: number; limit: number; percent: number; files: number };
  fills: { name: string; bar: DownloadBar; started: string; startedAgo: string }[];
  queued: number;
  files: { mirror: string; path: string; size: string; age: string; uses: number; pinned: boolean; verified: boolean; readers: number; lastUsed: string }[];
  /** Files matching the search, of which `files` holds the first `filesShown`. */
  filesMatching: number;
  failures: { name: string; upstream: string; error: string; at: string; ago: string }[];
  counters: { label: string; value: string }[];
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

/** The Mirror view: the disk budget, fills with their progress and average speed, cached files, failures. */
export function mirrorView(input: MirrorInput, now: number, search = '', filesShown = 300): MirrorViewModel {
  const { stats } = input;
  const needle = search.trim().toLowerCase();
  const matching = needle ? input.files.filter((file) => `${file.mirror}/${file.path}`.toLowerCase().includes(needle)) : input.files;
  return {
    budget: {
      used: formatBytes(stats.cachedBytes),
      max: formatBytes(stats.maxBytes),
      value: stats.cachedBytes,
      limit: Math.max(1, stats.maxBytes),
      percent: stats.maxBytes > 0 ? Math.min(100, Math.floor((stats.cachedBytes * 100) / stats.maxBytes)) : 0,
      files: stats.cachedFiles,
    },
    fills: input.filling.map((fill) => {
      const ms = Math.max(1, now - Date.parse(fill.startedAt));
      return {
        name: `${fill.mirror}/${fill.path}`,
        bar: downloadBar({ path: fill.path, role: 'other', phase: 'progress', status: 200, bytes: fill.bytes, ...(fill.total !== null ? { total: fill.total } : {}), rate: (fill.bytes * 1000) / ms }),
        started: fill.startedAt,
        startedAgo: ago(fill.startedAt, now),
      };
    }),
    queued: stats.queuedFills,
    files: matching.slice(0, filesShown).map((file) => ({
      mirror: file.mirror,
      path: file.path,
      size: formatBytes(file.size),
      age: duration(file.age),
      uses: file.hits,
      pinned: file.pinned,
      verified: file.digestVerified,
      readers: file.readers,
      lastUsed: file.lastUsedAt,
    })),
    filesMatching: matching.length,
    failures: input.failures.map((failure) => ({ name: `${failure.mirror}/${failure.path}`, upstream: failure.upstream, error: failure.error, at: failure.at, ago: ago(failure.at, now) })),
    counters: [
      { label: 'hits', value: String(stats.hits) },
      { label: 'misses', value: String(stats.misses) },
      { label: 'joined a fill', value: String(stats.coalesced) },
      { label: 'from upstreams', value: formatBytes(stats.upstreamBytes) },
      { label: 'failed fills', value: String(stats.failedFills) },
      { label: 'evictions', value: String(stats.evictions) },
      { label: 'stale served', value: String(stats.staleServed) },
      { label: 'refused (queue full)', value: String(stats.rejectedFills) },
    ],
  };
}

export interface ProblemLine {
  text: string;
  warning: boolean;
}

export interface ProblemsInput {
  /** What `bootdepot check` says: the data files and what each group's machines would get. */
  data: readonly ProblemLine[];
  /** Why the server is not ready (`/readyz`), e.g. the device store not open. */
  readiness: readonly string[];
  /** Events the recorder lost and store reads that failed since the start. */
  store?: { lost: number; readFailures: number } | undefined;
  /** The mirror's remembered failed fills. */
  failures: readonly FillFailureInfo[];
}

export interface ProblemsViewModel {
  data: ProblemLine[];
  errors: number;
  warnings: number;
  store: string[];
  upstreams: { upstream: string; files: number; latest: string; at: string; ago: string }[];
  /** Errors of every kind: the page's headline. */
  total: number;
}

/** Every kind of trouble in one place: data, the device store, upstreams. */
export function problemsView(input: ProblemsInput, now: number): ProblemsViewModel {
  const store = [...input.readiness];
  if (input.store && input.store.lost > 0) store.push(`${input.store.lost} events could not be recorded since the start (machines kept booting)`);
  if (input.store && input.store.readFailures > 0) store.push(`${input.store.readFailures} reads from the device store failed since the start`);
  // Failures newest first: the first seen of an upstream is its latest.
  const byUpstream = new Map<string, { upstream: string; files: number; latest: string; at: string; ago: string }>();
  for (const failure of input.failures) {
    let upstream: string;
    try {
      upstream = new URL(failure.upstream).origin;
    } catch {
      upstream = failure.upstream;
    }
    const known = byUpstream.get(upstream);
    if (known) known.files += 1;
    else byUpstream.set(upstream, { upstream, files: 1, latest: `${failure.mirror}/${failure.path}: ${failure.error}`, at: failure.at, ago: ago(failure.at, now) });
  }
  const errors = input.data.filter((p) => !p.warning).length;
  const upstreams = [...byUpstream.values()];
  return { data: [...input.data], errors, warnings: input.data.length - errors, store, upstreams, total: errors + store.length + upstreams.length };
}
