/**
 * The dashboard under /ui/: server-rendered pages (Liquid, escaped), htmx for live updates over
 * Server-Sent Events from the store's subscribe (every replica's events), vendored assets from
 * node_modules. app.ts imports this module only when the admin token is set.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clearNextBoot, setNextBoot } from '../api/next-boot.ts';
import type { AssetReader } from '../assets/asset-root.ts';
import type { Catalogue } from '../boot/catalogue.ts';
import type { MirrorView } from '../boot/render-context.ts';
import type { PullThroughMirror } from '../mirror/mirror.ts';
import { withoutCredentials } from '../mirror/upstream.ts';
import { renderDeviceScript } from '../boot/render.ts';
import { HttpError } from '../common/http-error.ts';
import { IDENTITY_FIELDS, normaliseMac, parseDevice, type QueryInput } from '../common/identity.ts';
import { formatProblem, isWarning } from '../common/problems.ts';
import type { Config } from '../config/schema.ts';
import { tokenMatches } from '../http/auth.ts';
import { requestBaseUrl } from '../http/base-url.ts';
import { eventStreams } from '../http/event-stream.ts';
import { RateLimitedError } from '../http/rate-limits.ts';
import { NEXT_BOOT_ACTIONS, type Device, type NextBootAction } from '../state/model.ts';
import type { DeviceStore } from '../state/store.ts';
import { checkAccess, clearedCookie, crossSiteRefusal, safeNext, sessionCookie, type Access } from './access.ts';
import { SessionTable } from './sessions.ts';
import { STYLE } from './style.ts';
import { createTemplates, type TemplateName } from './templates.ts';
import { barChart, CounterSampler, MinuteSeries } from './activity.ts';
import { fleetCounts, fleetRow, formatBytes, matchesFilter, mirrorView, problemsView, STAGE_FILTERS, timeline, type StageFilter } from './views.ts';

export type MirrorAdmin = Pick<PullThroughMirror, 'list' | 'filling' | 'failures' | 'stats' | 'mirrors'>;

export interface DashboardOptions {
  config: Config;
  /** The admin token: the only credential the dashboard knows. */
  token: string;
  store: DeviceStore;
  catalogue: () => Catalogue;
  assets: AssetReader;
  mirror?: MirrorView;
  /** What the Mirror view shows: the pull-through mirror's files, fills, failures and counters. */
  mirrorAdmin?: MirrorAdmin;
  /** Login session lifetime (default 12 h) and how many are kept (default 1000). */
  sessionTtlMs?: number;
  maxSessions?: number;
  /** Login attempts per client address and minute (default 10). */
  loginsPerMinute?: number;
  /** Seconds between SSE keep-alive comments. */
  heartbeatSeconds?: number;
  /** Why the server is not ready (as `/readyz` says), e.g. the device store has not opened. */
  readiness?: () => readonly string[];
  /** Events lost and store reads failed since the start (the boot state's counters). */
  storeStats?: () => { lost: number; readFailures: number };
  /** Milliseconds between samples of the mirror's byte counter for its chart (default 10 s). */
  sampleIntervalMs?: number;
}

/** Devices read for the fleet view at most; a larger fleet is cut (and the page says so). */
const FLEET_LIMIT = 5000;
const EVENTS_SHOWN = 300;
/** Live updates per page at most: one re-read per this many milliseconds, whatever the event rate. */
const COALESCE_MS = 250;

/** No inline script or style anywhere: a value that slipped through escaping still could not run. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STATIC_FILES: Record<string, { module?: string; text?: string; type: string }> = {
  'htmx.min.js': { module: 'htmx.org/dist/htmx.min.js', type: 'text/javascript; charset=utf-8' },
  'sse.js': { module: 'htmx-ext-sse/dist/sse.min.js', type: 'text/javascript; charset=utf-8' },
  'ui.css': { text: STYLE, type: 'text/css; charset=utf-8' },
};

type Body = Record<string, string | undefined>;

export default async function dashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { store, token, config } = options;
  const ttlMs = options.sessionTtlMs ?? 12 * 3600_000;
  const sessions = new SessionTable({ ttlMs, maxSessions: options.maxSessions ?? 1000 });
  const templates = createTemplates();
  const access = new WeakMap<FastifyRequest, Access>();
  const require = createRequire(import.meta.url);
  const statics = new Map<string, { body: string; type: string }>();
  for (const [name, file] of Object.entries(STATIC_FILES)) {
    statics.set(name, { body: file.text ?? (await readFile(require.resolve(file.module ?? ''), 'utf8')), type: file.type });
  }
  // The charts' counters: 60 numbers a series, kept whether or not anyone looks, so the page
  // shows the last hour when it opens. Boots come from the store's live events (every replica's,
  // with PostgreSQL); the mirror's bytes from its counter, sampled.
  const boots = new MinuteSeries(60);
  const upstreamBytes = new MinuteSeries(60);
  const unsubscribeBoots = store.subscribe((event) => {
    const { detail } = event;
    if (detail.type === 'script' && detail.action === 'boot' && detail.verified !== false) boots.add(1, event.at.getTime(), Date.now());
  });
  const mirrorAdmin = options.mirrorAdmin;
  const sampler = mirrorAdmin ? new CounterSampler(() => mirrorAdmin.stats().upstreamBytes, upstreamBytes) : undefined;
  sampler?.sample(Date.now());
  const sampling = sampler ? setInterval(() => sampler.sample(Date.now()), options.sampleIntervalMs ?? 10_000) : undefined;
  sampling?.unref();
  app.addHook('onClose', (_instance, done) => {
    clearInterval(sampling);
    unsubscribeBoots();
    done();
  });
  const bootsChart = () => {
    const now = Date.now();
    return barChart(boots.values(now), now, (value) => String(value));
  };
  const throughputChart = () => {
    const now = Date.now();
    sampler?.sample(now);
    return barChart(upstreamBytes.values(now), now, formatBytes);
  };

  const baseOrigin = config.server.baseUrl ? new URL(config.server.baseUrl).origin : undefined;
  const secure = (request: FastifyRequest) => request.protocol === 'https';
  const csrfOf = (request: FastifyRequest) => {
    const given = access.get(request);
    return given?.kind === 'session' ? given.session.csrf : '';
  };

  // Forms post url-encoded; parsed here with the platform's URLSearchParams (first value wins).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    const fields: Body = {};
    for (const [key, value] of new URLSearchParams(body as string)) fields[key] ??= value;
    done(null, fields);
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url ?? '';
    if (route === '/ui/login' || route === '/ui/static/:file') return;
    const result = checkAccess(request.headers, token, sessions);
    if (result.ok) {
      access.set(request, result.access);
      return;
    }
    const wantsPage = request.method === 'GET' && (request.headers.accept ?? '').includes('text/html') && request.headers['hx-request'] === undefined;
    if (wantsPage && request.headers.authorization === undefined) {
      await reply.redirect(`/ui/login?next=${encodeURIComponent(request.url)}`, 303);
      return;
    }
    reply.header('www-authenticate', 'Bearer realm="bootdepot"');
    // htmx follows HX-Redirect, so an expired session on a live page lands on the login form.
    reply.header('hx-redirect', '/ui/login');
    await reply.code(401).type('text/plain; charset=utf-8').send(`${result.reason}\n`);
  });

  app.addHook('preHandler', async (request, reply) => {
    const body = request.body as Body | undefined;
    const ownOrigins = [`${request.protocol}://${request.host}`, ...(baseOrigin ? [baseOrigin] : [])];
    const csrfHeader = request.headers['x-csrf-token'];
    const refusal = crossSiteRefusal({
      method: request.method,
      origin: request.headers.origin,
      secFetchSite: request.headers['sec-fetch-site'],
      ownOrigins,
      access: access.get(request),
      csrf: typeof body?._csrf === 'string' ? body._csrf : typeof csrfHeader === 'string' ? csrfHeader : undefined,
    });
    if (refusal) {
      request.log.warn({ url: request.url, origin: request.headers.origin }, refusal);
      await reply.code(403).type('text/plain; charset=utf-8').send(`${refusal}\n`);
    }
  });

  const page = async (reply: FastifyReply, name: TemplateName, title: string, data: Record<string, unknown>, request: FastifyRequest) =>
    reply.type('text/html; charset=utf-8').send(await templates.page(name, { title, signedIn: access.has(request), csrf: csrfOf(request), ...data }));

  app.get<{ Params: { file: string } }>('/ui/static/:file', async (request, reply) => {
    const file = statics.get(request.params.file);
    if (!file) throw new HttpError(404, `not found: ${request.url}`);
    return reply.header('cache-control', 'max-age=300').type(file.type).send(file.body);
  });

  app.get<{ Querystring: { next?: string } }>('/ui/login', async (request, reply) => {
    if (checkAccess(request.headers, token, sessions).ok) return reply.redirect(safeNext(request.query.next), 303);
    return page(reply, 'login', 'Log in', { next: safeNext(request.query.next) }, request);
  });

  // Its own budget per client address, on top of the global one: a token is guessed at one
  // login per request, and the scripts budget is sized for racks of machines.
  const loginsPerMinute = options.loginsPerMinute ?? 10;
  const loginCheck = app.createRateLimit({ max: loginsPerMinute, timeWindow: 60_000, keyGenerator: (request) => `ui-login ${request.ip}`, allowList: () => false });
  const loginLimit = async (request: FastifyRequest) => {
    const result = await loginCheck(request);
    if (!result.isAllowed && result.isExceeded) {
      app.metrics.limited.inc({ reason: 'logins-rate' });
      throw new RateLimitedError(Math.max(1, Math.ceil(result.ttl / 1000)), `${loginsPerMinute} dashboard logins per minute`, undefined);
    }
  };
  app.post<{ Body: Body }>('/ui/login', { onRequest: loginLimit }, async (request, reply) => {
    const given = typeof request.body?.token === 'string' ? request.body.token : '';
    const next = safeNext(request.body?.next);
    if (!given || !tokenMatches(token, given)) {
      request.log.warn({ client: request.ip }, 'dashboard login refused: wrong token');
      reply.code(401);
      return page(reply, 'login', 'Log in', { next, error: 'Wrong token.' }, request);
    }
    const session = sessions.create();
    request.log.info({ client: request.ip, sessions: sessions.size }, 'dashboard login');
    return reply.header('set-cookie', sessionCookie(session, ttlMs, secure(request))).redirect(next, 303);
  });

  app.post('/ui/logout', async (request, reply) => {
    const given = access.get(request);
    if (given?.kind === 'session') sessions.delete(given.session.id);
    return reply.header('set-cookie', clearedCookie(secure(request))).redirect('/ui/login', 303);
  });

  const problemsOf = () => {
    const data = options.catalogue().problems.map((problem) => ({ text: formatProblem(problem), warning: isWarning(problem) }));
    return problemsView({ data, readiness: options.readiness?.() ?? [], store: options.storeStats?.(), failures: options.mirrorAdmin?.failures() ?? [] }, Date.now());
  };

  const fleetData = async (request: FastifyRequest, query: { stage?: string; q?: string }) => {
    const stage = STAGE_FILTERS.includes(query.stage as StageFilter) ? (query.stage as StageFilter) : undefined;
    const q = typeof query.q === 'string' ? query.q.slice(0, 200) : '';
    const devices = await store.listDevices({ limit: FLEET_LIMIT });
    const now = Date.now();
    const rows = devices.filter((device) => matchesFilter(device, stage, q)).map((device) => fleetRow(device, now));
    // Machines that matched no group get an "assign to profile" form (it sets their next boot).
    const assign = stage === 'unmatched' ? { profiles: [...options.catalogue().profiles.keys()].sort(), csrf: csrfOf(request), back: `/ui/?stage=unmatched${q ? `&q=${encodeURIComponent(q)}` : ''}` } : undefined;
    return { stage: stage ?? '', q, stageChoices: STAGE_FILTERS, rows, counts: fleetCounts(devices, now), boots: bootsChart(), truncated: devices.length >= FLEET_LIMIT, limit: FLEET_LIMIT, filtered: stage !== undefined || q !== '', assign };
  };

  app.get<{ Querystring: { stage?: string; q?: string } }>('/ui/', async (request, reply) => {
    const data = await fleetData(request, request.query);
    // What `bootdepot check` says: the files' problems and what each group's machines would get
    // (the server's audit, re-run after every load and every 30 s).
    // The device store's and the upstreams' trouble too: the Problems page has the details.
    const view = problemsOf();
    return page(reply, 'fleet', 'Fleet', { ...data, problems: view.data, errors: view.errors, warnings: view.warnings, elsewhere: [...view.store, ...view.upstreams.map((up) => `upstream ${up.upstream}: ${up.files} file${up.files === 1 ? '' : 's'} failed, latest ${up.latest}`)], fragment: await templates.render('fleet-fragment', data) }, request);
  });
  app.get('/ui', (_request, reply) => reply.redirect('/ui/', 301));

  app.get<{ Querystring: { stage?: string; q?: string } }>('/ui/fleet', async (request, reply) => {
    return reply.type('text/html; charset=utf-8').send(await templates.render('fleet-fragment', await fleetData(request, request.query)));
  });

  /** What the device would be answered now: the same rendering as `bootdepot render`, recording nothing. */
  const decisionNow = async (request: FastifyRequest, device: Device) => {
    const plan = device.lastBootId ? await store.getBootPlan(device.lastBootId) : undefined;
    let query: QueryInput;
    let labelsFrom: string;
    if (plan?.labels) {
      query = { ...plan.labels };
      labelsFrom = `its last boot (${plan.id})`;
    } else {
      query = {};
      for (const field of IDENTITY_FIELDS) if (device.identity[field] !== undefined) query[field] = device.identity[field];
      labelsFrom = 'its recorded identity';
    }
    query.mac = device.id;
    const parsed = parseDevice(query);
    let result;
    try {
      result = await renderDeviceScript({
        baseUrl: requestBaseUrl(request, config.server.baseUrl),
        device: parsed,
        catalogue: options.catalogue(),
        assets: options.assets,
        boot: config.boot,
        nextBoot: device.nextBoot,
        ...(options.mirror ? { mirror: options.mirror } : {}),
      });
    } catch (error) {
      // The page still shows the device; the reason stands where the decision would.
      request.log.error({ err: error, device: device.id }, 'dashboard: rendering the decision failed');
      return { action: 'unknown', profile: '', reason: 'the decision could not be rendered (see the server log)', problem: '', body: '', labelsFrom };
    }
    const { decision } = result;
    return { action: decision.action, profile: decision.action === 'profile' ? decision.profile.id : '', reason: decision.reason, problem: result.problem ?? '', body: result.body, labelsFrom };
  };

  const deviceData = async (request: FastifyRequest, id: string) => {
    const device = await store.getDevice(id);
    if (!device) return undefined;
    const events = await store.listEvents(id, EVENTS_SHOWN);
    const data = { device, row: fleetRow(device, Date.now()), timeline: timeline(events), decision: await decisionNow(request, device) };
    return { data, fragment: await templates.render('device-fragment', data) };
  };

  const deviceId = (raw: string) => {
    const id = normaliseMac(raw);
    if (!id) throw new HttpError(400, 'invalid device id: expected a MAC address');
    return id;
  };

  const devicePage = async (request: FastifyRequest, reply: FastifyReply, id: string, error?: string) => {
    const shown = await deviceData(request, id);
    if (!shown) return page(reply.code(404), 'message', 'Unknown device', { heading: 'Unknown device', message: `No device ${id} is recorded.` }, request);
    const identity = Object.entries(shown.data.device.identity).filter(([, value]) => value !== undefined);
    const profiles = [...options.catalogue().profiles.keys()].sort();
    return page(reply, 'device', shown.data.device.id, { ...shown.data, identity, profiles, fragment: shown.fragment, ...(error ? { error } : {}) }, request);
  };

  app.get<{ Params: { mac: string } }>('/ui/devices/:mac', async (request, reply) => devicePage(request, reply, deviceId(request.params.mac)));

  app.get<{ Params: { mac: string } }>('/ui/devices/:mac/live', async (request, reply) => {
    const shown = await deviceData(request, deviceId(request.params.mac));
    if (!shown) throw new HttpError(404, 'unknown device');
    return reply.type('text/html; charset=utf-8').send(shown.fragment);
  });

  app.post<{ Params: { mac: string }; Body: Body }>('/ui/devices/:mac/next-boot', async (request, reply) => {
    const id = deviceId(request.params.mac);
    const body = request.body ?? {};
    const action = body.action ?? '';
    const profile = action === 'once' || action === 'profile' ? body.profile || undefined : undefined;
    const reason = (body.reason ?? '').slice(0, 500);
    try {
      if (action === 'clear') await clearNextBoot(store, id);
      else if ((NEXT_BOOT_ACTIONS as readonly string[]).includes(action)) {
        const { nextBoot } = await setNextBoot(store, options.catalogue(), id, { action: action as NextBootAction, profile, reason }, 'set from the dashboard');
        request.log.info({ device: id, nextBoot }, 'next boot set');
      } else throw new HttpError(400, `unknown action ${JSON.stringify(action.slice(0, 40))}`);
    } catch (error) {
      if (!(error instanceof HttpError) || error.statusCode !== 400) throw error;
      reply.code(400);
      return devicePage(request, reply, id, error.message);
    }
    return reply.redirect(body.back ? safeNext(body.back) : `/ui/devices/${encodeURIComponent(id)}`, 303);
  });

  app.get('/ui/problems', async (request, reply) => page(reply, 'problems', 'Problems', { view: problemsOf() }, request));

  // The mirror's state lives in this process's memory, not in the store: its view is polled
  // (every 2 s, only while the page is open) instead of following the event stream.
  const mirrorData = (query: { q?: string }) => {
    const q = typeof query.q === 'string' ? query.q.slice(0, 200) : '';
    const source = options.mirrorAdmin;
    if (!source) return { off: true, q };
    const mirrors = source.mirrors().map(({ name, url }) => ({ name, url: withoutCredentials(url) }));
    return { off: false, q, mirrors, throughput: throughputChart(), view: mirrorView({ files: source.list(), filling: source.filling(), failures: source.failures(), stats: source.stats() }, Date.now(), q) };
  };
  app.get<{ Querystring: { q?: string } }>('/ui/mirror', async (request, reply) => {
    const data = mirrorData(request.query);
    return page(reply, 'mirror', 'Mirror', { ...data, fragment: data.off ? '' : await templates.render('mirror-fragment', data) }, request);
  });
  app.get<{ Querystring: { q?: string } }>('/ui/mirror/live', async (request, reply) => {
    const data = mirrorData(request.query);
    return reply.type('text/html; charset=utf-8').send(data.off ? '' : await templates.render('mirror-fragment', data));
  });

  // Live updates: `changed` events (no data: the page re-reads its part); streams end as the
  // server starts closing, as the API's do.
  const openStream = eventStreams(app);
  app.get<{ Querystring: { device?: string } }>('/ui/events', (request, reply) => {
    const only = request.query.device ? normaliseMac(request.query.device) : undefined;
    if (request.query.device && !only) throw new HttpError(400, 'invalid device filter: expected a MAC address');
    openStream(reply, {
      headers: { 'content-security-policy': CONTENT_SECURITY_POLICY },
      greeting: 'bootdepot dashboard events',
      heartbeatSeconds: options.heartbeatSeconds ?? 15,
      subscribe: (write) => {
        // A burst of events (a rack booting) is one `changed` at most every COALESCE_MS, sent
        // after the burst's first event, so the page always re-reads after the last one.
        let pending: NodeJS.Timeout | undefined;
        const unsubscribe = store.subscribe((event) => {
          if (only && event.deviceId !== only) return;
          pending ??= setTimeout(() => {
            pending = undefined;
            write('event: changed\ndata: \n\n');
          }, COALESCE_MS);
        });
        return () => {
          clearTimeout(pending);
          unsubscribe();
        };
      },
    });
  });
}
