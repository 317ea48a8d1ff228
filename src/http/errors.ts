/**
 * One error handler for the whole app: 4xx answers say what was wrong; 5xx answers are logged
 * with the request and hide their message, which may hold paths or internals.
 */
import type { FastifyInstance, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { RateLimitedError } from './rate-limits.ts';

/** An error answer in the request's language: JSON under /api/, plain text elsewhere. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply {
  if (request.url.startsWith('/api/')) return reply.code(status).send({ error: message, statusCode: status });
  return reply.code(status).type('text/plain; charset=utf-8').send(`${message}\n`);
}

export default fp(
  (app: FastifyInstance) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (error instanceof RateLimitedError) {
        // Logged once per client and minute where the limit is applied, not once per request.
        reply.quietRequestLog = true;
        reply.header('retry-after', String(error.retryAfterSeconds));
        // iPXE itself re-sends a request answered with Retry-After (any status) after that many
        // seconds and drops the body of an error; the script is for clients that run what they get.
        if (error.ipxeScript !== undefined) return reply.code(429).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(error.ipxeScript);
        return sendProblem(request, reply, 429, error.message);
      }
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
      // 503 (store down, retry) and 507 (disk full) say what to do; other 5xx stay vague.
      const message = status >= 500 && status !== 503 && status !== 507 ? 'internal server error' : error.message;
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      // The admin API speaks JSON; machines and curl get plain text.
      if (request.url.startsWith('/api/')) return reply.code(status).send({ error: message, statusCode: status });
      return reply.code(status).type('text/plain; charset=utf-8').send(`${message}\n`);
    });
    app.setNotFoundHandler((request, reply) => {
      const message = `not found: ${request.method} ${request.url.split('?')[0] ?? ''}`;
      if (request.url.startsWith('/api/')) return reply.code(404).send({ error: message, statusCode: 404 });
      return reply.code(404).type('text/plain; charset=utf-8').send(`${message}\n`);
    });
  },
  { name: 'bootdepot-errors' },
);
