/**
 * Talking to upstreams with undici: an Agent with connect and header timeouts, redirects
 * followed only where the mirror's policy allows, and a body reader with an inactivity
 * watchdog of its own, because undici's bodyTimeout does not fire while the consumer applies
 * backpressure (undici issue 5393). Every response body is either read to its end or destroyed.
 *
 * Redirects are followed here, hop by hop, rather than by undici's interceptor, so each target
 * can be checked: the upstream's own origin, or a host its definition lists; never a loopback
 * or link-local address unless the upstream itself is on one or the host is listed by name.
 * Hostnames are checked where they are resolved (a second Agent whose lookup refuses such
 * addresses), so a name cannot resolve to a public address for the check and to 127.0.0.1
 * for the connection.
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type * as Undici from 'undici';
import type { Agent, Dispatcher } from 'undici';
import { HttpError } from '../common/http-error.ts';

/** undici is loaded when an upstream is first contacted: ~25 MiB a server without mirror traffic never pays. */
let undiciModule: Promise<typeof Undici> | undefined;
const loadUndici = () => (undiciModule ??= import('undici'));

export type UpstreamBody = Dispatcher.ResponseData['body'];
export type UpstreamHeaders = Dispatcher.ResponseData['headers'];

export interface UpstreamResponse {
  statusCode: number;
  headers: UpstreamHeaders;
  body: UpstreamBody;
}

/** An upstream failure, with the status the mirror answers it with (502 or 504). */
export class UpstreamError extends HttpError {
  /** The failure in one short line without the URL, e.g. `HTTP 503`, `connect ECONNREFUSED 127.0.0.1:9`. */
  readonly brief: string;
  constructor(status: 502 | 504, message: string, brief?: string) {
    super(status, message);
    this.name = 'UpstreamError';
    this.brief = brief ?? message;
  }
}

/** The body sent nothing for longer than the inactivity limit. */
export class UpstreamStalledError extends UpstreamError {
  constructor(url: string, ms: number) {
    super(504, `upstream ${url} sent nothing for ${ms / 1000} s mid-body`, `stalled for ${ms / 1000} s`);
    this.name = 'UpstreamStalledError';
  }
}

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyInactivityMs: number;
  /** Name resolution for connections (tests map names to loopback); default dns.lookup. */
  lookup?: LookupFunction;
}

/** Where an upstream's redirects may go. */
export interface RedirectPolicy {
  /** The upstream's base URL: its origin is always allowed. */
  upstream: string;
  /** Other hosts: `host`, `host:port`, `*.example.com`, `*`. */
  hosts?: readonly string[];
}

/** Redirects followed for one request before it counts as failed. */
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

function ipv4Internal(address: string): boolean {
  const [a, b] = address.split('.').map(Number);
  // 127.0.0.0/8 loopback, 169.254.0.0/16 link-local, 0.0.0.0/8 (reaches this host on Linux).
  return a === 127 || a === 0 || (a === 169 && b === 254);
}

/** True for loopback and link-local addresses: 127.0.0.0/8, 0.0.0.0/8, 169.254.0.0/16, ::1, ::, fe80::/10, and IPv4-mapped forms. */
export function isInternalAddress(raw: string): boolean {
  const address = raw.replace(/^\[|\]$/g, '').toLowerCase();
  const family = isIP(address);
  if (family === 4) return ipv4Internal(address);
  if (family !== 6) return false;
  const mappedDotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address) ?? /^::(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mappedDotted?.[1]) return ipv4Internal(mappedDotted[1]);
  const mappedHex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (mappedHex?.[1] && mappedHex[2]) {
    const high = parseInt(mappedHex[1], 16);
    const low = parseInt(mappedHex[2], 16);
    return ipv4Internal(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  if (address === '::1' || address === '::' || /^(0{1,4}:){7}0{0,3}1$/.test(address)) return true;
  // fe80::/10: the first group is fe80 to febf.
  const first = parseInt(address.split(':')[0] || '0', 16);
  return first >= 0xfe80 && first <= 0xfebf;
}

/** A URL host that is such an address by its text: an IP literal, or `localhost`. */
export function isInternalHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host.endsWith('.localhost') || isInternalAddress(host);
}

class InternalAddressError extends Error {
  readonly code = 'EINTERNALADDRESS';
}

/** A lookup that fails for names resolving to loopback or link-local addresses. */
function refusingInternal(base: LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    base(hostname, options, (error, address, family) => {
      if (error) {
        callback(error, address, family);
        return;
      }
      const addresses = Array.isArray(address) ? address.map((entry) => entry.address) : [address];
      const internal = addresses.find((entry) => isInternalAddress(entry));
      if (internal !== undefined) callback(new InternalAddressError(`${hostname} resolves to ${internal}, a loopback or link-local address`), address, family);
      else callback(null, address, family);
    });
  };
}

/** The URL without credentials, for messages. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url;
  }
}

/** `host` of a URL as redirect entries name it: `host` on the default port, else `host:port`. */
function matchesHostEntry(entry: string, target: URL): boolean {
  const hostname = target.hostname.toLowerCase();
  if (entry === '*') return true;
  if (entry.startsWith('*.')) return hostname.endsWith(entry.slice(1));
  return entry === target.host.toLowerCase() || entry === hostname;
}

/**
 * Whether a redirect to `target` may be followed, and through which agent: `guarded` when the
 * name must be checked as it is resolved. A reason when it is refused.
 */
export function redirectVerdict(policy: RedirectPolicy, target: URL): { allowed: true; guarded: boolean } | { allowed: false; reason: string } {
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return { allowed: false, reason: `${target.protocol} is not http or https` };
  const upstream = new URL(policy.upstream);
  if (target.origin === upstream.origin) return { allowed: true, guarded: false };
  const hosts = policy.hosts ?? [];
  // A host listed by name is the operator's decision, wherever it points.
  if (hosts.some((entry) => entry !== '*' && !entry.startsWith('*.') && matchesHostEntry(entry, target))) return { allowed: true, guarded: false };
  if (!hosts.some((entry) => matchesHostEntry(entry, target))) return { allowed: false, reason: `${target.host} is neither the upstream's origin nor listed in redirectHosts` };
  if (isInternalHost(upstream.hostname)) return { allowed: true, guarded: false };
  if (isInternalHost(target.hostname)) return { allowed: false, reason: `${target.hostname} is a loopback or link-local address` };
  return { allowed: true, guarded: isIP(target.hostname.replace(/^\[|\]$/g, '')) === 0 };
}

export function headerValue(headers: UpstreamHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Text safe to repeat in a response header (undici passes through what the upstream sent). */
export function printableHeader(value: string | undefined): string | undefined {
  return value !== undefined && /^[\x20-\x7e]{1,1024}$/.test(value) ? value : undefined;
}

export class UpstreamClient {
  private connection: Promise<{ agent: Agent; guarded: Agent; request: typeof Undici.request }> | undefined;
  readonly options: UpstreamClientOptions;

  constructor(options: UpstreamClientOptions) {
    this.options = options;
  }

  private connect() {
    this.connection ??= loadUndici().then(({ Agent, request }) => {
      const lookup = this.options.lookup ?? dnsLookup;
      const agentFor = (connectLookup: LookupFunction) =>
        new Agent({
          connectTimeout: this.options.connectTimeoutMs,
          headersTimeout: this.options.headersTimeoutMs,
          // Off: the watchdog in readBody covers stalls, also under backpressure, with one message.
          bodyTimeout: 0,
          connect: { lookup: connectLookup },
        });
      return { agent: agentFor(lookup), guarded: agentFor(refusingInternal(lookup)), request };
    });
    return this.connection;
  }

  /**
   * Sends a GET (or HEAD), following redirects the policy allows (without one: only within the
   * URL's own origin). Rejects with an {@link UpstreamError} saying what went wrong; on success
   * the caller owns the body and must read it to its end or destroy it.
   */
  async send(url: string, headers: Record<string, string>, options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal; redirects?: RedirectPolicy } = {}): Promise<UpstreamResponse> {
    const policy = options.redirects ?? { upstream: url };
    let current = url;
    let useGuarded = false;
    for (let hops = 0; ; hops++) {
      let response: Dispatcher.ResponseData;
      try {
        const { agent, guarded, request } = await this.connect();
        response = await request(current, {
          method: options.method ?? 'GET',
          // The bytes are stored and served as they are: no compression negotiated on the way.
          headers: { 'accept-encoding': 'identity', 'user-agent': 'bootdepot-mirror', ...headers },
          dispatcher: useGuarded ? guarded : agent,
          signal: options.signal,
          highWaterMark: 1024 * 1024,
        });
      } catch (error) {
        throw describeUpstreamError(current === url ? url : `${url} (redirected to ${withoutCredentials(current)})`, error, this.options);
      }
      const location = headerValue(response.headers, 'location');
      if (!REDIRECT_STATUSES.has(response.statusCode) || location === undefined) return { statusCode: response.statusCode, headers: response.headers, body: response.body };
      await discardBody(response.body, this.options.headersTimeoutMs);
      if (hops >= MAX_REDIRECTS) throw new UpstreamError(502, `upstream ${url} redirects more than ${MAX_REDIRECTS} times`, `more than ${MAX_REDIRECTS} redirects`);
      let target: URL;
      try {
        target = new URL(location, current);
      } catch {
        throw new UpstreamError(502, `upstream ${url} redirected to an invalid URL`, 'redirect to an invalid URL');
      }
      const verdict = redirectVerdict(policy, target);
      const shown = withoutCredentials(target.href);
      if (!verdict.allowed) throw new UpstreamError(502, `upstream ${url} redirected to ${shown}; refused: ${verdict.reason}`, `redirect to ${shown} refused: ${verdict.reason}`);
      useGuarded = verdict.guarded;
      current = target.href;
    }
  }

  async close(): Promise<void> {
    if (!this.connection) return;
    const { agent, guarded } = await this.connection;
    await Promise.all([agent.close(), guarded.close()]);
  }

  async destroy(): Promise<void> {
    if (!this.connection) return;
    const { agent, guarded } = await this.connection;
    await Promise.all([agent.destroy(), guarded.destroy()]);
  }
}

/** Turns an undici or socket error into a 502/504 with a message an operator can act on. */
export function describeUpstreamError(url: string, error: unknown, options: UpstreamClientOptions): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamError(504, `cannot connect to upstream ${url} within ${options.connectTimeoutMs / 1000} s`, `no connection within ${options.connectTimeoutMs / 1000} s`);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamError(504, `upstream ${url} did not answer within ${options.headersTimeoutMs / 1000} s`, `no answer within ${options.headersTimeoutMs / 1000} s`);
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      // undici passes the socket's own message on, e.g. `connect ECONNREFUSED 127.0.0.1:9`.
      return new UpstreamError(502, `cannot connect to upstream ${url}: ${code}`, message.includes(code) ? message : `connect ${code}`);
    case 'EINTERNALADDRESS':
      return new UpstreamError(502, `upstream ${url}: redirect refused: ${message}`, `redirect refused: ${message}`);
    default:
      return new UpstreamError(502, `upstream ${url} failed: ${code ? `${code} ` : ''}${message}`, `${code ? `${code} ` : ''}${message}`);
  }
}

/**
 * Reads a body chunk by chunk, handing each to `onChunk` and waiting for it (which is the
 * backpressure). The watchdog runs only while waiting for the upstream, never while `onChunk`
 * works, so a slow disk is not taken for a stalled upstream. Resolves when the body ended
 * cleanly; otherwise the body is destroyed and the error rethrown.
 */
export async function readBody(body: UpstreamBody, url: string, inactivityMs: number, onChunk: (chunk: Buffer) => Promise<void> | void): Promise<void> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    const watchdog = setTimeout(() => body.destroy(new UpstreamStalledError(url, inactivityMs)), inactivityMs);
    let step: IteratorResult<Buffer>;
    try {
      step = await iterator.next();
    } catch (error) {
      body.destroy();
      throw error instanceof UpstreamError ? error : new UpstreamError(502, `upstream ${url} broke off mid-body: ${(error as Error).message}`);
    } finally {
      clearTimeout(watchdog);
    }
    if (step.done) return;
    try {
      await onChunk(step.value);
    } catch (error) {
      body.destroy();
      throw error;
    }
  }
}

/** Throws away a body that is not wanted (an error page, a 304), bounded in size and time. */
export async function discardBody(body: UpstreamBody, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => body.destroy(), timeoutMs);
  try {
    await body.dump({ limit: 256 * 1024 });
  } catch {
    body.destroy();
  } finally {
    clearTimeout(timer);
  }
}
