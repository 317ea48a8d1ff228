/**
 * Talking to upstreams with undici: one Agent with connect and header timeouts, redirects
 * followed, and a body reader with an inactivity watchdog of its own, because undici's
 * bodyTimeout does not fire while the consumer applies backpressure (undici issue 5393).
 * Every response body is either read to its end or destroyed.
 */
import type * as Undici from 'undici';
import type { Agent, Dispatcher } from 'undici';

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
export class UpstreamError extends Error {
  readonly status: 502 | 504;
  constructor(status: 502 | 504, message: string) {
    super(message);
    this.name = 'UpstreamError';
    this.status = status;
  }
}

/** The body sent nothing for longer than the inactivity limit. */
export class UpstreamStalledError extends UpstreamError {
  constructor(url: string, ms: number) {
    super(504, `upstream ${url} sent nothing for ${ms / 1000} s mid-body`);
    this.name = 'UpstreamStalledError';
  }
}

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyInactivityMs: number;
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
  private connection: Promise<{ agent: Agent; dispatcher: Dispatcher; request: typeof Undici.request }> | undefined;
  readonly options: UpstreamClientOptions;

  constructor(options: UpstreamClientOptions) {
    this.options = options;
  }

  private connect() {
    this.connection ??= loadUndici().then(({ Agent, interceptors, request }) => {
      const agent = new Agent({
        connectTimeout: this.options.connectTimeoutMs,
        headersTimeout: this.options.headersTimeoutMs,
        // Off: the watchdog in readBody covers stalls, also under backpressure, with one message.
        bodyTimeout: 0,
      });
      return { agent, dispatcher: agent.compose(interceptors.redirect({ maxRedirections: 5 })), request };
    });
    return this.connection;
  }

  /**
   * Sends a GET (or HEAD). Rejects with an {@link UpstreamError} saying what went wrong; on
   * success the caller owns the body and must read it to its end or destroy it.
   */
  async send(url: string, headers: Record<string, string>, options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal } = {}): Promise<UpstreamResponse> {
    try {
      const { dispatcher, request } = await this.connect();
      const response = await request(url, {
        method: options.method ?? 'GET',
        // The bytes are stored and served as they are: no compression negotiated on the way.
        headers: { 'accept-encoding': 'identity', 'user-agent': 'bootdepot-mirror', ...headers },
        dispatcher,
        signal: options.signal,
        highWaterMark: 1024 * 1024,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw describeUpstreamError(url, error, this.options);
    }
  }

  async close(): Promise<void> {
    if (this.connection) await (await this.connection).agent.close();
  }

  async destroy(): Promise<void> {
    if (this.connection) await (await this.connection).agent.destroy();
  }
}

/** Turns an undici or socket error into a 502/504 with a message an operator can act on. */
export function describeUpstreamError(url: string, error: unknown, options: UpstreamClientOptions): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamError(504, `cannot connect to upstream ${url} within ${options.connectTimeoutMs / 1000} s`);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamError(504, `upstream ${url} did not answer within ${options.headersTimeoutMs / 1000} s`);
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new UpstreamError(502, `cannot connect to upstream ${url}: ${code}`);
    case 'UND_ERR_REDIRECT_MAX':
      return new UpstreamError(502, `upstream ${url} redirects too often`);
    default:
      return new UpstreamError(502, `upstream ${url} failed: ${code ? `${code} ` : ''}${message}`);
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
