/**
 * The base URL scripts link to: the configured public URL, or else the one the machine used to
 * reach us (its Host header), which is what iPXE resolves against anyway.
 */
import type { FastifyRequest } from 'fastify';
import { HttpError } from '../common/http-error.ts';

const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

export class BadHostError extends HttpError {
  constructor(host: string) {
    super(400, `invalid Host header ${JSON.stringify(host.slice(0, 80))}; set server.baseUrl if a proxy rewrites it`);
  }
}

export interface BaseUrlOptions {
  /**
   * A Host header without a port means the port the request came in on. GRUB 2.06 sends
   * `Host: 10.0.2.2` for `(http,10.0.2.2:8080)/grub`: without this, every URL of its config
   * would point at port 80. Only where the client is known to drop the port (and not behind a
   * proxy, whose port the socket does not know).
   */
  portFromSocket?: boolean;
}

export function requestBaseUrl(request: FastifyRequest, configured: string | undefined, options: BaseUrlOptions = {}): string {
  if (configured) return configured;
  const host = request.host;
  // The Host header lands in every URL of the script: it must be a plain host[:port].
  if (!HOST_HEADER.test(host)) throw new BadHostError(host);
  const localPort = request.socket.localPort;
  const defaultPort = request.protocol === 'https' ? 443 : 80;
  if (options.portFromSocket && !/:[0-9]+$/.test(host) && localPort !== undefined && localPort !== defaultPort && request.host === request.headers.host) {
    return `${request.protocol}://${host}:${localPort}`;
  }
  return `${request.protocol}://${host}`;
}
