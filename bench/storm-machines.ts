/**
 * Simulated machines for the boot-storm benchmark (bench/storm.ts), run as a child process so
 * the clients' CPU is not the measuring process's. Each machine does what iPXE does on a
 * power-on: fetch the bootstrap script, expand its chain URL with the machine's values, fetch
 * its own script, then the kernel and the initrd the script names (one after the other, on one
 * keep-alive connection), the beacon, and finally a report from the booted OS.
 *
 * Input: one JSON argument ({@link Plan}). Output: one JSON line per machine on stdout.
 * Bounded: every request has a timeout; a machine gives up at its first error.
 */
import http from 'node:http';

export interface Plan {
  /** The bootstrap script's URL. */
  entry: string;
  /** Epoch ms at which machine 0 powers on; machine i at `start + arrivals[i]`. */
  start: number;
  machines: { index: number; arrivalMs: number }[];
  requestTimeoutMs: number;
  /** POST a report from the booted OS to /b/<boot>/report (bootdepot only). */
  report: boolean;
  /**
   * Instead of machines: ask for scripts at a steady pace from this otherwise idle process, so
   * the storm's script latency is measured without the load of the machines' own downloads on
   * the client side. One JSON line with every time to first byte.
   */
  probe?: { url: string; intervalMs: number; durationMs: number };
  /** This process's share of a link all machines sit behind (bytes/s; 0: loopback speed). */
  linkBytesPerSecond?: number;
}

export interface ProbeResult {
  scriptTtfbMs: number[];
  errors: string[];
}

export interface MachineResult {
  index: number;
  /** ms since the plan's start. */
  askedMs: number;
  doneMs: number;
  /** Time to first byte of the bootstrap and of the machine's own script. */
  scriptTtfbMs: number[];
  /** Time to first byte of the kernel and of the initrd. */
  imageTtfbMs: number[];
  imageBytes: number;
  error?: string;
}

interface Fetched {
  status: number;
  ttfbMs: number;
  bytes: number;
  body: string | undefined;
}

/** The link every machine of this process shares: when it is free again (ms), and its rate (0: unthrottled). */
const link = { freeAt: 0, bytesPerSecond: 0 };

/** Receives a chunk over the shared link: pauses the response while the link is behind. */
function overLink(response: http.IncomingMessage, bytes: number): void {
  if (link.bytesPerSecond <= 0) return;
  const now = performance.now();
  link.freeAt = Math.max(link.freeAt, now) + (bytes / link.bytesPerSecond) * 1000;
  const wait = link.freeAt - now;
  if (wait > 2) {
    response.pause();
    setTimeout(() => response.resume(), wait);
  }
}

function fetchOnce(agent: http.Agent, url: string, options: { method?: string; keepBody: boolean; body?: string; timeoutMs: number }): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.request(url, { agent, method: options.method ?? 'GET', headers: options.body ? { 'content-type': 'application/json' } : {} }, (response) => {
      const ttfbMs = performance.now() - started;
      let bytes = 0;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (options.keepBody) chunks.push(chunk);
        overLink(response, chunk.length);
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ttfbMs, bytes, body: options.keepBody ? Buffer.concat(chunks).toString('utf8') : undefined }));
      response.on('error', reject);
    });
    request.setTimeout(options.timeoutMs, () => request.destroy(new Error(`timed out after ${options.timeoutMs} ms: ${url}`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

function macOf(index: number): string {
  return `52-54-00-${((index >> 16) & 255).toString(16).padStart(2, '0')}-${((index >> 8) & 255).toString(16).padStart(2, '0')}-${(index & 255).toString(16).padStart(2, '0')}`;
}

/** The chain URL of a bootstrap script with this machine's iPXE settings filled in. */
function expandChain(script: string, index: number): string {
  const line = script.split('\n').find((l) => l.startsWith('chain '));
  if (!line) throw new Error('the bootstrap script has no chain line');
  const url = line.split(/\s+/).find((word) => word.startsWith('http'));
  if (!url) throw new Error('the chain line has no URL');
  const values: Record<string, string> = { 'mac:hexhyp': macOf(index), buildarch: 'x86_64', 'buildarch:uristring': 'x86_64', 'platform:uristring': 'pcbios', ip: `10.0.${(index >> 8) & 255}.${index & 255}` };
  return url.replace(/\$\{([^}]+)\}/g, (_, name: string) => values[name] ?? '');
}

/** The kernel and initrd URLs of a machine's script (`set base-url` expanded), and its beacon. */
function imagesOf(script: string): { images: string[]; beacon: string | undefined } {
  let base = '';
  const images: string[] = [];
  let beacon: string | undefined;
  for (const line of script.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'set' && words[1] === 'base-url') base = words[2] ?? '';
    const expand = (word: string | undefined) => (word ?? '').replace('${base-url}', base);
    if (words[0] === 'kernel' || words[0] === 'initrd') images.push(expand(words.find((w, i) => i > 0 && !w.startsWith('--'))));
    if (words[0] === 'imgfetch') beacon = words.find((w) => w.startsWith('http'));
  }
  if (images.length < 2) throw new Error(`the script names ${images.length} images: ${script.slice(0, 200)}`);
  return { images, beacon };
}

async function boot(plan: Plan, index: number, arrivalMs: number): Promise<MachineResult> {
  const wait = plan.start + arrivalMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const askedMs = Date.now() - plan.start;
  const result: MachineResult = { index, askedMs, doneMs: askedMs, scriptTtfbMs: [], imageTtfbMs: [], imageBytes: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const timeoutMs = plan.requestTimeoutMs;
  try {
    const bootstrap = await fetchOnce(agent, plan.entry, { keepBody: true, timeoutMs });
    if (bootstrap.status !== 200) throw new Error(`bootstrap answered ${bootstrap.status}`);
    result.scriptTtfbMs.push(bootstrap.ttfbMs);
    const own = await fetchOnce(agent, expandChain(bootstrap.body ?? '', index), { keepBody: true, timeoutMs });
    if (own.status !== 200) throw new Error(`script answered ${own.status}`);
    result.scriptTtfbMs.push(own.ttfbMs);
    const { images, beacon } = imagesOf(own.body ?? '');
    for (const image of images) {
      const fetched = await fetchOnce(agent, image, { keepBody: false, timeoutMs });
      if (fetched.status !== 200) throw new Error(`${image} answered ${fetched.status}`);
      result.imageTtfbMs.push(fetched.ttfbMs);
      result.imageBytes += fetched.bytes;
    }
    if (beacon) {
      const fetched = await fetchOnce(agent, beacon, { keepBody: false, timeoutMs });
      if (fetched.status >= 400) throw new Error(`beacon answered ${fetched.status}`);
    }
    const bootUrl = /\/b\/[0-9a-f]+\//.exec(images[0] ?? '')?.[0];
    if (plan.report && bootUrl) {
      const reportUrl = new URL(`${bootUrl}report`, images[0]).href;
      const fetched = await fetchOnce(agent, reportUrl, { method: 'POST', keepBody: false, body: JSON.stringify({ state: 'running' }), timeoutMs });
      if (fetched.status >= 300) throw new Error(`report answered ${fetched.status}`);
    }
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    agent.destroy();
  }
  result.doneMs = Date.now() - plan.start;
  return result;
}

/** Scripts at a steady pace, each for another probe MAC, each on a new connection as a powered-on machine's first request. */
async function probe(plan: Plan, settings: NonNullable<Plan['probe']>): Promise<ProbeResult> {
  const result: ProbeResult = { scriptTtfbMs: [], errors: [] };
  const wait = plan.start - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const asked: Promise<void>[] = [];
  const count = Math.floor(settings.durationMs / settings.intervalMs);
  for (let i = 0; i < count; i++) {
    const agent = new http.Agent({ keepAlive: false });
    const url = settings.url.replace('MAC', macOf(0xff0000 + (i % 64)));
    asked.push(
      fetchOnce(agent, url, { keepBody: false, timeoutMs: plan.requestTimeoutMs })
        .then((fetched) => {
          if (fetched.status !== 200) result.errors.push(`probe answered ${fetched.status}`);
          else result.scriptTtfbMs.push(fetched.ttfbMs);
        })
        .catch((error: unknown) => void result.errors.push((error as Error).message))
        .finally(() => agent.destroy()),
    );
    await new Promise((resolve) => setTimeout(resolve, settings.intervalMs));
  }
  await Promise.all(asked);
  return result;
}

const argument = process.argv[2];
if (argument) {
  const plan = JSON.parse(argument) as Plan;
  link.bytesPerSecond = plan.linkBytesPerSecond ?? 0;
  if (plan.probe) process.stdout.write(`${JSON.stringify(await probe(plan, plan.probe))}\n`);
  else await Promise.all(
    plan.machines.map(async ({ index, arrivalMs }) => {
      const result = await boot(plan, index, arrivalMs);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }),
  );
}
