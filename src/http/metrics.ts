/**
 * Prometheus metrics at `GET /metrics`: what an operator watches during a boot storm. Counters
 * are incremented where things happen (scripts, downloads); figures kept elsewhere (recorder,
 * catalogue, mirror) are read when Prometheus scrapes, so the hot paths pay nothing extra.
 * With `server.metricsToken` set, /metrics answers only requests that carry it.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { carriesToken } from './request-classes.ts';

export interface MetricsSources {
  /** Events recorded and lost, and failed store reads. */
  state?: () => { recorded: number; lost: number; readFailures: number };
  /** Problems in the data directory as last loaded. */
  dataProblems?: () => number;
  /** Extra gauges read at scrape time (name -> help and value), e.g. the mirror's counters. */
  extra?: () => Record<string, { help: string; value: number }>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly scripts: Counter<'outcome'>;
  readonly downloads: Counter<'outcome'>;
  readonly downloadBytes: Counter;
  /** Requests and connections refused or closed by a limit, by reason (scripts-rate, body-timeout...). */
  readonly limited: Counter<'reason'>;
  /** Open connections, read at scrape time; set by the connection limits. */
  openConnections: () => number | undefined = () => undefined;

  constructor(sources: MetricsSources = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: 'bootdepot_' });
    this.scripts = new Counter({ name: 'bootdepot_scripts_total', help: 'Device scripts answered, by outcome (boot, wait, local, hold, notFound)', labelNames: ['outcome'], registers: [this.registry] });
    this.downloads = new Counter({ name: 'bootdepot_downloads_total', help: 'Asset downloads with a body, by outcome (complete, aborted)', labelNames: ['outcome'], registers: [this.registry] });
    this.downloadBytes = new Counter({ name: 'bootdepot_download_bytes_total', help: 'Asset body bytes sent', registers: [this.registry] });
    this.limited = new Counter({ name: 'bootdepot_limited_total', help: 'Requests and connections refused or closed by a limit, by reason (scripts-rate, downloads-rate, reserved-connections, max-connections, body-timeout)', labelNames: ['reason'], registers: [this.registry] });
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const value = read();
          if (value !== undefined) this.set(value);
        },
      });
    gauge('bootdepot_events_recorded', 'Boot events committed to the device store', () => sources.state?.().recorded);
    gauge('bootdepot_events_lost', 'Boot events lost because the device store failed (machines kept booting)', () => sources.state?.().lost);
    gauge('bootdepot_store_read_failures', 'Device store reads that failed or timed out (decided without state)', () => sources.state?.().readFailures);
    gauge('bootdepot_data_problems', 'Problems in the data directory as last loaded (see bootdepot check)', () => sources.dataProblems?.());
    gauge('bootdepot_open_connections', 'Open client connections', () => this.openConnections());
    if (sources.extra) {
      for (const [name, { help }] of Object.entries(sources.extra())) gauge(name, help, () => sources.extra?.()[name]?.value);
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(
  (app: FastifyInstance, options: { metrics: Metrics; token?: string | undefined }) => {
    app.decorate('metrics', options.metrics);
    app.get('/metrics', async (request, reply) => {
      // Counters say how many machines boot and what fails: with a token set, only its holder reads them.
      if (options.token !== undefined && !carriesToken(request, options.token)) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="bootdepot metrics"').type('text/plain; charset=utf-8').send('/metrics needs the token in server.metricsToken (Authorization: Bearer <token>)\n');
      }
      const text = await options.metrics.registry.metrics();
      return reply.header('content-type', options.metrics.registry.contentType).header('cache-control', 'no-store').send(text);
    });
  },
  { name: 'bootdepot-metrics' },
);
