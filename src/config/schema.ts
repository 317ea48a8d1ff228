/**
 * The config file's schema. Every key is documented here, where it is declared; the same
 * schema validates the YAML file and, after flags and environment are merged in, the result.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../common/documents.ts';
import { MirrorConfigSchema, type MirrorSettings } from '../mirror/config.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PRESETS = ['packet', 'generic'] as const;
export const UNMATCHED_ACTIONS = ['poll', 'notFound', 'profile'] as const;
export const BROKEN_GROUP_ACTIONS = ['wait', 'ignore'] as const;

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        /** Address to listen on; `0.0.0.0` for all IPv4, `::` for all. */
        host: Type.String({ minLength: 1, default: '0.0.0.0' }),
        /** TCP port; 0 picks a free one (the URL is logged). */
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        /**
         * Public base URL that scripts use for every link (e.g. `http://10.0.0.5:8080`). Empty:
         * derived from each request's Host header, which is right unless a proxy rewrites it.
         */
        baseUrl: Type.String({ default: '' }),
        /** Trust X-Forwarded-* headers (set when bootdepot runs behind a reverse proxy). */
        trustProxy: Type.Boolean({ default: false }),
        /**
         * Seconds a client has, from opening the connection (or from its last answer on a kept
         * connection), to send a request's headers. iPXE sends them in one packet.
         */
        headersTimeout: Type.Integer({ minimum: 1, maximum: 3600, default: 20 }),
        /**
         * Seconds a client has to send a request body that is read whole (reports, API JSON),
         * from its headers on. Streamed uploads are not bounded by it (only by idleTimeout).
         */
        bodyTimeout: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
        /**
         * Seconds a connection may go without any byte moving either way before it is closed:
         * bounds stalled clients without cutting a long download that progresses. Longer than a
         * cold mirror fill's wait for its upstream (mirror.timeouts.connect + headers).
         */
        idleTimeout: Type.Integer({ minimum: 5, maximum: 3600, default: 60 }),
        /** Seconds an idle kept-alive connection waits for its next request (behind a proxy: longer than the proxy's). */
        keepAliveTimeout: Type.Integer({ minimum: 1, maximum: 3600, default: 15 }),
        /** Open connections at most; beyond it new connections are closed at once, for everyone. */
        maxConnections: Type.Integer({ minimum: 16, maximum: 1000000, default: 4096 }),
        /**
         * Of maxConnections, how many are kept for probes (/healthz, /readyz, /metrics) and the
         * admin API with its token: beyond maxConnections - reservedConnections open connections,
         * other requests get 503 with Retry-After.
         */
        reservedConnections: Type.Integer({ minimum: 0, maximum: 100000, default: 256 }),
        /** Seconds a shutdown waits for requests in flight (downloads, slow clients) before closing every connection. */
        shutdownDrain: Type.Integer({ minimum: 0, maximum: 3600, default: 10 }),
        /** Bearer token /metrics requires (at least 16 characters). Empty: /metrics is open. */
        metricsToken: Type.String({ default: '' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Per-client request limits on the public endpoints (docs/security.md). */
    limits: Type.Object(
      {
        /**
         * Script and report requests per client address and minute (/boot.ipxe, /ipxe,
         * /linuxkit/, /ignition, /metadata, beacons, reports, and admin requests without a valid
         * token). A rack of 300 machines booting behind one NAT address makes about 3000.
         */
        scriptsPerMinute: Type.Integer({ minimum: 1, maximum: 100000000, default: 6000 }),
        /**
         * Downloads (/assets/, /mirror/, /b/BOOT/assets|mirror/) per client address and minute;
         * 0: not counted, because a sanboot reads a disk image in many thousand Range requests.
         */
        downloadsPerMinute: Type.Integer({ minimum: 0, maximum: 100000000, default: 0 }),
        /** Addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`) never rate-limited, e.g. a NAT gateway. */
        allowList: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: StringEnum(LOG_LEVELS, { default: 'info' }),
      },
      { additionalProperties: false, default: {} },
    ),
    paths: Type.Object(
      {
        /** Data directory (profiles/, groups/, ignition/, templates/). Relative to this file. */
        data: Type.String({ minLength: 1, default: 'data' }),
        /** Assets directory served at /assets/. Relative to this file. */
        assets: Type.String({ minLength: 1, default: 'assets' }),
      },
      { additionalProperties: false, default: {} },
    ),
    assets: Type.Object(
      {
        /** Bytes read from disk per step when streaming a file (256 KiB to 4 MiB measured; see docs/benchmarks.md). */
        readSize: Type.Integer({ minimum: 16384, maximum: 16777216, default: 1048576 }),
        /**
         * Memory for read buffers across all downloads. Buffers of readSize are lent per chunk
         * (from the read until the socket took it), so the default's 16 serve hundreds of
         * downloads in turn; a download that waits 20 ms for one reads 64 KiB instead.
         */
        readBufferBudget: Type.Integer({ minimum: 65536, maximum: 1073741824, default: 16777216 }),
        /**
         * Large downloads (1 MiB or more) that send their bodies at once; the rest wait their turn
         * with their headers sent (docs/benchmarks.md, boot storm). For a link that cannot carry a
         * whole rack at once: each machine then finishes sooner. 0: no limit.
         */
        maxActiveDownloads: Type.Integer({ minimum: 0, maximum: 100000, default: 0 }),
        /** Seconds a download waits for its turn at most; then it starts anyway (below server.idleTimeout). */
        downloadQueueSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 20 }),
        /** Cache-Control sent with assets. The default lets caches keep files but revalidate (cheap: ETag/304). */
        cacheControl: Type.String({ pattern: '^[\\x20-\\x7e]*$', default: 'public, no-cache' }),
        /** Largest upload accepted by PUT /api/v1/assets/, in bytes. */
        maxUploadBytes: Type.Integer({ minimum: 1, default: 8589934592 }),
      },
      { additionalProperties: false, default: {} },
    ),
    admin: Type.Object(
      {
        /**
         * Bearer token for /api/v1 (uploads, devices, the mirror) and the dashboard's login
         * (/ui/). Empty: the admin API and the dashboard are off. Prefer BOOTDEPOT_ADMIN_TOKEN or
         * --admin-token over writing it here.
         */
        token: Type.String({ default: '' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * OpenPGP signatures of scripts and configs, as matchbox's `-key-ring-path`: with a key,
     * `GET <path>.sig` (binary) and `<path>.asc` (armored) answer a detached signature of what
     * `<path>` answers, for `/ipxe`, `/grub`, `/boot.ipxe`, `/ignition`, `/metadata`, `/generic`,
     * `/cloud` and their `/b/<boot>/` forms (docs/security.md). Without one those URLs answer 404.
     */
    signing: Type.Object(
      {
        /**
         * Armored OpenPGP private key (`gpg --armor --export-secret-keys KEYID > key.asc`),
         * relative to this file. Empty: signing is off. A key that cannot be read, unlocked or
         * used to sign stops the server at start, saying which.
         */
        keyFile: Type.String({ default: '' }),
        /**
         * File holding the key's passphrase (one line), relative to this file. Empty: the
         * passphrase is read from BOOTDEPOT_SIGNING_PASSPHRASE, if the key has one.
         */
        passphraseFile: Type.String({ default: '' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Pull-through mirror of release servers at /mirror/NAME/ (docs/mirror.md). */
    mirror: MirrorConfigSchema,
    /**
     * Site mode (docs/sites.md): this bootdepot serves a site or rack near its machines from an
     * origin bootdepot. Absent: a standalone server (or an origin), exactly as without it.
     */
    site: Type.Optional(
      Type.Object(
        {
          /** This site's name, as the origin lists it: lowercase letters, digits and `-`, 1-63. */
          name: Type.String({ pattern: '^[a-z0-9-]{1,63}$' }),
          /** The origin bootdepot's base URL (`http://origin.example:8080`). */
          origin: Type.String({ minLength: 1 }),
          /** File holding the bearer token the site presents to the origin (one line). Relative to this file. */
          tokenFile: Type.String({ minLength: 1 }),
          /** Seconds between syncs of the origin's data directory. */
          syncIntervalSeconds: Type.Integer({ minimum: 5, maximum: 86400, default: 30 }),
          /** Forward this site's boot events to the origin. */
          forwardEvents: Type.Boolean({ default: true }),
        },
        { additionalProperties: false },
      ),
    ),
    state: Type.Object(
      {
        /**
         * Record boots and decide with recorded state (next boot, installOnce). Off: scripts are
         * decided from the data directory alone and nothing is written.
         */
        enabled: Type.Boolean({ default: true }),
        /**
         * PostgreSQL URL (`postgres://user:pass@host/db`) for several replicas sharing state.
         * Empty: SQLite in the data directory. Prefer BOOTDEPOT_DATABASE_URL for credentials.
         */
        databaseUrl: Type.String({ default: '' }),
        /** SQLite file; default `bootdepot.db` in the data directory. Relative to this file. */
        sqlitePath: Type.String({ default: '' }),
        /** Days of events kept per device. */
        retentionDays: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
        /** Newest events kept per device, whatever their age. */
        maxEventsPerDevice: Type.Integer({ minimum: 10, maximum: 1000000, default: 1000 }),
        /**
         * Devices that never booted (no beacon, no report, no next boot set: any MAC that asked
         * for a script) kept at most; beyond, the least recently seen go, with their events. A
         * flood of made-up MACs costs this many rows, not one per request. Devices that booted
         * or have a next boot go only by `retentionDays`.
         */
        maxUnknownDevices: Type.Integer({ minimum: 100, maximum: 10000000, default: 10000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    boot: Type.Object(
      {
        /** Provider preset for built-in profile kinds when a profile names none. */
        preset: StringEnum(PRESETS, { default: 'generic' }),
        /**
         * What a machine that matches no group gets: `poll` (a script that waits and asks again,
         * so it boots as soon as a group is added), `notFound` (404, as matchbox: iPXE fails and
         * the firmware tries its next boot device) or `profile` (boot `unmatchedProfile`).
         */
        unmatched: StringEnum(UNMATCHED_ACTIONS, { default: 'poll' }),
        /**
         * A group file that does not load (and has no last good version) may have selected any
         * machine: `wait` (default) makes every machine it might select wait, with the file and
         * the error on its screen, until it is fixed; `ignore` matches as if the file were not
         * there, so those machines may fall to a less specific group. See docs/architecture.md.
         */
        brokenGroups: StringEnum(BROKEN_GROUP_ACTIONS, { default: 'wait' }),
        /**
         * Hours a boot's id opens its Ignition config and metadata (`/b/<boot>/ignition`, and
         * matchbox's plain URLs from the boot's address). Long enough for a slow install to
         * fetch its config; short enough that a leaked URL soon opens nothing (docs/security.md).
         */
        bootCredentialHours: Type.Integer({ minimum: 1, maximum: 8760, default: 24 }),
        /** Profile for `unmatched: profile`. */
        unmatchedProfile: Type.String({ default: '' }),
        /** Seconds a waiting machine sleeps before asking again (unmatched, missing images, template errors). */
        pollInterval: Type.Integer({ minimum: 5, maximum: 3600, default: 60 }),
        /** How a script boots the local disk (next boot `local`), per firmware. One iPXE command each. */
        localBoot: Type.Object(
          {
            pcbios: Type.String({ pattern: '^[^\\r\\n]+$', default: 'sanboot --no-describe --drive 0x80' }),
            efi: Type.String({ pattern: '^[^\\r\\n]+$', default: 'exit' }),
          },
          { additionalProperties: false, default: {} },
        ),
        retry: Type.Object(
          {
            /** Download attempts for kernel and initrd before a script gives up. */
            attempts: Type.Integer({ minimum: 1, maximum: 20, default: 3 }),
            /** Seconds between attempts. */
            delay: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
            /** Seconds to wait after giving up before asking bootdepot again. */
            giveUpDelay: Type.Integer({ minimum: 5, maximum: 3600, default: 60 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigSchema>;
export type SiteSettings = Required<NonNullable<ConfigFile['site']>>;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Preset = (typeof PRESETS)[number];

/** The effective configuration: the file's values, overrides applied, paths made absolute. */
export interface Config {
  server: Omit<ConfigFile['server'], 'baseUrl' | 'metricsToken'> & {
    baseUrl: string | undefined;
    /** Token /metrics requires; undefined when it is open. */
    metricsToken: string | undefined;
  };
  limits: ConfigFile['limits'];
  log: { level: LogLevel };
  paths: { data: string; assets: string };
  assets: ConfigFile['assets'];
  /** Admin API token; undefined when the admin API is off. */
  admin: { token: string | undefined };
  /** Signing of answers; paths absolute, undefined when not set. */
  signing: { keyFile: string | undefined; passphraseFile: string | undefined };
  mirror: MirrorSettings;
  /** Site mode; undefined for a standalone server or an origin. `origin` without a trailing slash, `tokenFile` absolute. */
  site: SiteSettings | undefined;
  state: { enabled: boolean; databaseUrl: string | undefined; sqlitePath: string; retentionDays: number; maxEventsPerDevice: number; maxUnknownDevices: number };
  boot: ConfigFile['boot'];
  /** Where the configuration came from, for logs and `check`. */
  source: string;
}
