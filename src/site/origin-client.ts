/**
 * What a site asks of its origin, over HTTP with the site's token: the data document (with
 * If-None-Match), heartbeats and event batches. Every call is bounded in time and in the bytes
 * it reads back; every failure is one Error whose message says what to look at.
 */
import type * as Undici from 'undici';

let undiciModule: Promise<typeof Undici> | undefined;
// Loaded on first use: a server that is no site never pays for it.
const loadUndici = () => (undiciModule ??= import('undici'));

export interface OriginClientOptions {
  /** Base URL, no trailing slash. */
  origin: string;
  site: string;
  token: string;
  /** Milliseconds for connecting and for the answer's headers, and between body bytes. */
  timeoutMs?: number;
}

/** Bytes of an error answer read at most, for its message. */
const ERROR_BODY_BYTES = 4096;
/** Bytes of a JSON answer (heartbeat, events) read at most. */
const JSON_BODY_BYTES = 64 * 1024;

export class OriginError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OriginError';
    this.status = status;
  }
}

async function readCapped(body: AsyncIterable<Buffer>, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > max) throw new OriginError(`${what} is more than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The origin's own words from an error answer (its JSON `error`, else the text), one line, short. */
function errorText(body: Buffer): string {
  const text = body.toString('utf8');
  let message = text;
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string') message = parsed.error;
    else if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not JSON: the text as it is
  }
  return message.replace(/\s+/g, ' ').trim().slice(0, 200);
}

export class OriginClient {
  private readonly options: OriginClientOptions;

  constructor(options: OriginClientOptions) {
    this.options = options;
  }

  get origin(): string {
    return this.options.origin;
  }

  private url(suffix: string): string {
    return `${this.options.origin}/api/v1/sites/${this.options.site}${suffix}`;
  }

  private async call(method: 'GET' | 'POST', suffix: string, headers: Record<string, string>, body?: string) {
    const { request } = await loadUndici();
    const timeout = this.options.timeoutMs ?? 10_000;
    const url = this.url(suffix);
    try {
      return await request(url, {
        method,
        headers: { authorization: `Bearer ${this.options.token}`, 'user-agent': 'bootdepot-site', ...headers },
        ...(body !== undefined ? { body } : {}),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(Math.max(timeout * 6, 60_000)),
      });
    } catch (error) {
      const cause = error as NodeJS.ErrnoException;
      throw new OriginError(`cannot reach the origin ${this.options.origin}: ${cause.code ?? cause.name}${cause.message ? ` (${cause.message})` : ''}`, undefined, { cause: error });
    }
  }

  private async failure(response: Undici.Dispatcher.ResponseData, what: string): Promise<OriginError> {
    const body = await readCapped(response.body, ERROR_BODY_BYTES, 'the answer').catch(() => Buffer.alloc(0));
    const text = errorText(body);
    return new OriginError(`the origin ${this.options.origin} answered ${what} with ${response.statusCode}${text ? `: ${text}` : ''}`, response.statusCode);
  }

  /** The data document, or `unchanged` when the origin's ETag is one of those in `etag` (a list). */
  async fetchData(etag: string | undefined, maxBytes: number): Promise<{ unchanged: true; etag: string | undefined } | { unchanged: false; body: Buffer; etag: string }> {
    const response = await this.call('GET', '/data', { accept: 'application/json', ...(etag ? { 'if-none-match': etag } : {}) });
    if (response.statusCode === 304) {
      await response.body.dump();
      // Which of the ETags asked with is current (RFC 9110: a 304 carries the ETag a 200 would).
      return { unchanged: true, etag: typeof response.headers.etag === 'string' ? response.headers.etag : undefined };
    }
    if (response.statusCode !== 200) throw await this.failure(response, 'the data request');
    const given = response.headers.etag;
    if (typeof given !== 'string' || !/^"[\x21\x23-\x7e]{1,200}"$/.test(given)) {
      await response.body.dump();
      throw new OriginError(`the origin ${this.options.origin} sent the data without a strong ETag`);
    }
    const body = await readCapped(response.body, maxBytes, 'the data document');
    return { unchanged: false, body, etag: given };
  }

  /** POSTs JSON; resolves with the answer's JSON. */
  async post(suffix: string, payload: unknown): Promise<unknown> {
    const response = await this.call('POST', suffix, { 'content-type': 'application/json' }, JSON.stringify(payload));
    if (response.statusCode < 200 || response.statusCode >= 300) throw await this.failure(response, `POST ${suffix}`);
    const body = await readCapped(response.body, JSON_BODY_BYTES, 'the answer');
    if (body.length === 0) return undefined;
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw new OriginError(`the origin ${this.options.origin} answered POST ${suffix} with something other than JSON`);
    }
  }
}
