/**
 * One error handler for the whole app: 4xx answers say what was wrong; 5xx answers are logged
 * with the request and hide their message, which may hold paths or internals.
 */
import type { FastifyInstance, FastifyError } from 'fastify';
import fp from 'fastify-plugin';

export default fp(
  (app: FastifyInstance) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed');
        return reply.code(status).type('text/plain; charset=utf-8').send('internal server error\n');
      }
      return reply.code(status).type('text/plain; charset=utf-8').send(`${error.message}\n`);
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).type('text/plain; charset=utf-8').send(`not found: ${request.method} ${request.url.split('?')[0] ?? ''}\n`),
    );
  },
  { name: 'bootdepot-errors' },
);
