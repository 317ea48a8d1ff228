/**
 * One log line per request, written when it completes, carrying the device's MAC on script
 * requests, instead of Fastify's two lines (incoming, completed). Error lines stay Fastify's.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

export class OneLineRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (reply.quietRequestLog) return;
    const fields = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      client: request.ip,
      // Which iPXE (or curl, or installer) asked: escaped with the rest by log-hygiene.ts.
      ...(request.headers['user-agent'] ? { agent: request.headers['user-agent'].slice(0, 200) } : {}),
      ...(request.deviceMac ? { mac: request.deviceMac } : {}),
      ...(error ? { err: error } : {}),
    };
    request.log.info(fields, 'request');
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The device's MAC on script requests, for the request log line. */
    deviceMac?: string;
  }
  interface FastifyReply {
    /** Set by handlers that log their own summary (large downloads) instead. */
    quietRequestLog?: boolean;
  }
}
