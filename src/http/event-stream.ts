/**
 * Server-Sent Events streams (the API's event stream, the dashboard's live updates): the
 * response taken over from Fastify, a comment line first, keep-alive comments so proxies keep
 * an idle stream open, and every open stream ended as the server starts closing (preClose:
 * before it waits for open connections, which a stream would hold for ever), so clients
 * reconnect, to another replica.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

export interface EventStreamOptions {
  /** Headers beyond the event-stream ones (e.g. a Content-Security-Policy). */
  headers?: Record<string, string>;
  /** The first comment line, naming the stream. */
  greeting: string;
  heartbeatSeconds: number;
  /** Starts feeding the stream through `write`; returns what stops it. */
  subscribe(write: (text: string) => void): () => void;
}

/** Registers the close hook and returns the function that opens streams on this app. */
export function eventStreams(app: FastifyInstance): (reply: FastifyReply, options: EventStreamOptions) => void {
  const open = new Set<() => void>();
  app.addHook('preClose', (done) => {
    for (const end of open) end();
    done();
  });
  return (reply, options) => {
    reply.hijack();
    reply.quietRequestLog = true;
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no', ...options.headers });
    res.write(`: ${options.greeting}\n\n`);
    const unsubscribe = options.subscribe((text) => res.write(text));
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatSeconds * 1000);
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(end);
    };
    const end = () => {
      stop();
      res.end();
    };
    open.add(end);
    res.on('close', stop);
  };
}
