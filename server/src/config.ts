/**
 * The environment, validated once. This module is the only reader of `process.env`: everything
 * else receives a `Config`. A bad or missing variable stops start-up with one message naming every
 * problem, and production refuses the conveniences that only make sense on a developer's machine.
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { keySetProblem } from './modules/auth/keys.js';

/**
 * The repository root (this file sits in server/src, or server/dist once built). `.env` and
 * relative paths in settings resolve from here, whatever the working directory: `pnpm dev` runs
 * in server/, `pnpm studio` at the root, and both must find the same embedded database.
 */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z.coerce
    .number({ message: `expected an integer from ${min} to ${max}` })
    .int({ message: `expected an integer from ${min} to ${max}` })
    .min(min, { message: `expected an integer from ${min} to ${max}` })
    .max(max, { message: `expected an integer from ${min} to ${max}` });

const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'none'),
);

/**
 * An address or a CIDR range (`10.0.0.0/8`, `fd00::/8`), or a name proxy-addr knows. Read with
 * ipaddr.js, the parser proxy-addr (Fastify's `trustProxy`) uses, in the canonical notations only:
 * what passes here, Fastify accepts at start.
 */
const isProxyAddress = (entry: string): boolean => {
  if (entry === 'loopback' || entry === 'linklocal' || entry === 'uniquelocal') return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0 || !ipaddr.isValid(address)) return false;
  if (bits === undefined) return true;
  try {
    return /^\d{1,3}$/.test(bits) && ipaddr.parseCIDR(entry)[1] <= (family === 4 ? 32 : 128);
  } catch {
    return false;
  }
};

/**
 * Which proxies' `X-Forwarded-For` to believe: `false` (none: the socket's address is the
 * client's), or the proxies' addresses and CIDR ranges (`loopback`, `10.0.0.0/8`). The client
 * address is then the nearest hop that is not a trusted proxy. `true` (every hop) is refused: the
 * client writes the leftmost entry, so it could choose its own address and walk around every
 * per-address limit; hop counts too (Fastify 5 ignores them, failing closed).
 */
const trustProxy = z.string().transform((value, ctx): false | string => {
  const v = value.trim();
  if (v === 'false' || v === '0' || v === 'no') return false;
  const entries = v.split(',').map((e) => e.trim());
  if (entries.every(isProxyAddress)) return entries.join(',');
  ctx.addIssue({
    code: 'custom',
    message: `${v === 'true' || v === 'yes' ? 'true would trust every hop, letting clients pick their own address: ' : ''}expected false, or the addresses/CIDR ranges of the proxies in front of Keel, comma-separated (e.g. loopback or 10.0.0.0/8)`,
  });
  return z.NEVER;
});

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\/\S+$/, { message: 'expected a postgresql:// connection URL' });

/** TWO_FACTOR_ENCRYPTION_KEYS: comma-separated base64 (or base64url) keys of exactly 32 bytes. */
const twoFactorKeys = z.string().transform((raw, ctx): Buffer[] => {
  const keys = raw
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => Buffer.from(k, /[-_]/.test(k) ? 'base64url' : 'base64'));
  if (keys.length === 0 || keys.some((k) => k.length !== 32)) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected comma-separated base64 keys of 32 bytes each; make one with `openssl rand -base64 32`',
    });
    return z.NEVER;
  }
  return keys;
});

const oidcProviderSchema = z.strictObject({
  /** Names the provider in `auth.oidc.start` (`google`, `corp-sso`). */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { message: 'lower-case letters, digits and dashes' }),
  name: z.string().min(1).max(100).optional(),
  /** The issuer URL: its /.well-known/openid-configuration is read at first use. */
  issuer: z.url({ message: 'expected the provider issuer URL' }),
  clientId: z.string().min(1).max(500),
  clientSecret: z.string().min(1).max(2000),
});
export type OidcProviderConfig = z.infer<typeof oidcProviderSchema>;

/** OIDC_PROVIDERS: a JSON array of `{ id, name?, issuer, clientId, clientSecret }`. */
const oidcProviders = z.string().transform((raw, ctx): OidcProviderConfig[] => {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a JSON array of { id, name?, issuer, clientId, clientSecret }' });
    return z.NEVER;
  }
  const parsed = z.array(oidcProviderSchema).safeParse(json);
  if (!parsed.success) {
    ctx.addIssue({ code: 'custom', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    return z.NEVER;
  }
  const ids = parsed.data.map((p) => p.id);
  if (new Set(ids).size !== ids.length) {
    ctx.addIssue({ code: 'custom', message: 'two providers share an id' });
    return z.NEVER;
  }
  return parsed.data;
});

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: bool.optional(),
  PUBLIC_URL: z.url({ message: 'expected an absolute URL such as https://api.example.com' }).optional(),

  DATABASE_URL: postgresUrl.optional(),
  DIRECT_DATABASE_URL: postgresUrl.optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 60_000).default(3_000),
  DATABASE_IDLE_TIMEOUT_MS: int(1_000, 3_600_000).default(30_000),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  DATABASE_TRANSACTION_MAX_WAIT_MS: int(100, 600_000).optional(),
  DATABASE_TRANSACTION_TIMEOUT_MS: int(100, 3_600_000).optional(),
  DATABASE_APPLICATION_NAME: z.string().min(1).max(63).default('keel'),
  DATABASE_STARTUP_RETRIES: int(0, 100).default(8),
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  EMBEDDED_PG_DIR: z.string().min(1).default('.data/postgres'),
  MIGRATE_ON_START: bool.default(true),
  STUDIO_PORT: int(1, 65535).default(5555),

  CORS_ORIGINS: list.optional(),
  TRUST_PROXY: trustProxy.default(false),
  BODY_LIMIT_BYTES: int(1_024, 100 * 1024 * 1024).default(1024 * 1024),
  TRPC_MAX_BATCH_SIZE: int(1, 1_000).default(50),
  TRPC_ADAPTER: z.enum(['keel', 'standard']).default('keel'),
  IDEMPOTENCY_TTL_SECONDS: int(60, 7 * 86_400).default(86_400),
  REQUEST_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  HEADERS_TIMEOUT_MS: int(1_000, 120_000).default(10_000),
  KEEP_ALIVE_TIMEOUT_MS: int(1_000, 120_000).default(5_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  SHUTDOWN_DRAIN_MS: int(0, 600_000).optional(),
  REFUSAL_DELAY_MS: int(0, 60_000).optional(),
  REFUSAL_DELAY_MAX_HELD: int(0, 1_000_000).default(4_096),

  ARGON2_MEMORY_KIB: int(19_456, 4_194_304).default(19_456),
  ARGON2_ITERATIONS: int(2, 20).default(2),
  ARGON2_PARALLELISM: int(1, 16).default(1),
  // One core stays free for the event loop and everything else: hashing on every core made a
  // login flood slow down every other request.
  PASSWORD_HASH_CONCURRENCY: int(1, 64).default(Math.max(1, availableParallelism() - 1)),
  // Unset: 8 per hashing slot (see `passwords.queue` below).
  PASSWORD_HASH_QUEUE: int(0, 10_000).optional(),
  PASSWORD_MIN_SCORE: int(0, 4).default(3),

  JWT_KEYS: z.string().optional(),
  JWT_KEYS_FILE: z.string().min(1).default('.data/jwt-keys.json'),
  JWT_ALGORITHM: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
  JWT_ISSUER: z.string().min(1).default('keel'),
  JWT_AUDIENCE: z.string().min(1).default('keel-api'),
  ACCESS_TOKEN_TTL_SECONDS: int(60, 3_600).default(900),
  REFRESH_REUSE_GRACE_SECONDS: int(0, 120).default(10),
  SESSION_IDLE_TIMEOUT_SECONDS: int(300, 90 * 86_400).default(7 * 86_400),
  SESSION_MAX_LIFETIME_SECONDS: int(3_600, 365 * 86_400).default(30 * 86_400),
  AUTH_STRICT_SESSIONS: bool.default(false),
  AUTH_SESSION_CACHE_SECONDS: int(0, 300).default(5),
  PASSWORD_RESET_TTL_SECONDS: int(300, 86_400).default(1_800),
  EMAIL_VERIFICATION_TTL_SECONDS: int(300, 7 * 86_400).default(86_400),
  APP_URL: z.url({ message: 'expected the absolute URL of the web app, used in mailed links' }).optional(),

  RATE_LIMIT_ENABLED: bool.default(true),
  RATE_LIMIT_LOGIN_PER_IP: int(1, 100_000).default(100),
  RATE_LIMIT_LOGIN_FREE_FAILURES: int(1, 100).default(5),
  RATE_LIMIT_REGISTER_PER_IP: int(1, 100_000).default(20),
  RATE_LIMIT_RESET_PER_IP: int(1, 100_000).default(10),
  RATE_LIMIT_RESET_PER_ACCOUNT: int(1, 1_000).default(5),
  RATE_LIMIT_LOGIN_FAILURES_PER_IP: int(1, 100_000).default(20),
  RATE_LIMIT_TOKEN_FAILURES_PER_IP: int(1, 100_000).default(10),
  RATE_LIMIT_API_PER_IP: int(1, 1_000_000).default(1_200),
  RATE_LIMIT_API_PER_USER: int(1, 1_000_000).default(600),
  RATE_LIMIT_API_SYNC_MS: int(100, 60_000).default(1_000),

  // Service accounts (server/src/modules/service-accounts, docs/decisions/0016-service-identities.md).
  SERVICE_SECRET_HASH_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43,}$/, {
      message: 'expected at least 32 bytes, base64url (openssl rand -base64 32 | tr "+/" "-_" | tr -d "=")',
    })
    .optional(),
  SERVICE_TOKEN_TTL_SECONDS: int(60, 3_600).default(300),
  SERVICE_SECRET_OVERLAP_SECONDS: int(0, 30 * 86_400).default(86_400),
  RATE_LIMIT_OAUTH_PER_IP: int(1, 100_000).default(300),
  RATE_LIMIT_OAUTH_PER_CLIENT: int(1, 100_000).default(120),

  MAIL_TRANSPORT: z.enum(['log', 'smtp']).default('log'),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\/\S+$/, { message: 'expected smtp://user:pass@host:port or smtps://...' })
    .optional(),
  MAIL_FROM: z.string().min(3).default('Keel <no-reply@keel.local>'),

  // Accounts (two-factor sign-in, providers, verified-email rule): docs/decisions/0021-accounts.md
  TWO_FACTOR_ENCRYPTION_KEYS: twoFactorKeys.optional(),
  TWO_FACTOR_KEY_FILE: z.string().min(1).default('.data/two-factor-keys'),
  TWO_FACTOR_ISSUER: z.string().trim().min(1).max(64).default('Keel'),
  REQUIRE_VERIFIED_EMAIL: bool.default(false),
  OIDC_PROVIDERS: oidcProviders.optional(),
  OIDC_REDIRECT_URI: z.url({ message: 'expected the absolute URL of the web app page that receives the provider redirect' }).optional(),

  ADMIN_EMAIL: z.email({ message: 'expected an email address' }).optional(),
  ADMIN_PASSWORD: z.string().min(12, { message: 'expected at least 12 characters' }).max(128).optional(),
  SEED_DEMO_DATA: bool.optional(),

  // Observability (README "Observability"). Tracing uses OpenTelemetry's own variable names; the
  // SDK and the OTLP exporter read the rest of theirs (OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
  // OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*...) themselves.
  OTEL_SDK_DISABLED: bool.optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none'], { message: 'expected otlp or none' }).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ message: 'expected the collector base URL, e.g. http://127.0.0.1:4318' }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ message: 'expected the full traces URL, e.g. http://127.0.0.1:4318/v1/traces' }).optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z
    .enum(['http/protobuf', 'http/json'], { message: 'expected http/protobuf or http/json (gRPC is not bundled)' })
    .optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z
    .enum(['http/protobuf', 'http/json'], { message: 'expected http/protobuf or http/json (gRPC is not bundled)' })
    .optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'], {
      message:
        'expected one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio',
    })
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number({ message: 'expected a ratio from 0 to 1' }).min(0).max(1).optional(),
  // The batch span processor's standard variables (the SDK no longer reads them itself).
  OTEL_BSP_SCHEDULE_DELAY: int(1, 600_000).default(5_000),
  OTEL_BSP_EXPORT_TIMEOUT: int(1, 600_000).default(30_000),
  OTEL_BSP_MAX_QUEUE_SIZE: int(1, 1_000_000).default(2_048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: int(1, 1_000_000).default(512),
  METRICS_TOKEN: z.string().min(16, { message: 'expected at least 16 characters (a random secret)' }).max(512).optional(),
  METRICS_PORT: int(1, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  SLOW_PROCEDURE_MS: int(0, 600_000).default(0),
  SLOW_QUERY_MS: int(0, 600_000).default(0),
  LIVE_MAX_STREAMS_PER_USER: int(1, 1_000).default(10),
  LIVE_MAX_STREAMS: int(1, 1_000_000).default(2_000),
  LIVE_HEARTBEAT_SECONDS: int(1, 300).default(15),
  LIVE_IDLE_TIMEOUT_SECONDS: int(1, 86_400).default(900),
  LIVE_REPLAY_EVENTS: int(0, 1_000_000).default(5_000),
  LIVE_REPLAY_SECONDS: int(1, 86_400).default(300),
});

/**
 * How much longer than the statement timeout the client waits for a reply before it gives the
 * connection up (a server that vanished sends nothing), and the default transaction timeout's margin.
 */
export const STATEMENT_REPLY_MARGIN_MS = 2_000;

/** Marks the transform's issues that span variables: they name no single value to repeat. */
const ACROSS_VARIABLES = 'acrossVariables';

const DEV_CORS_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173'];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration (fix these environment variables, see .env.example):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The typed configuration: the environment's schema, then one transform that checks what spans
 * several variables and maps the variables to the nested settings. `Config` is its output type,
 * never written a second time.
 */
export const configSchema = envSchema.transform((e, ctx) => {
  let problems = 0;
  /** A problem spanning variables, reported under `variable` without repeating its value. */
  const problem = (variable: keyof typeof e, message: string) => {
    problems += 1;
    ctx.addIssue({ code: 'custom', path: [variable], message, params: { [ACROSS_VARIABLES]: true } });
  };
  if (e.NODE_ENV === 'production') {
    // Development conveniences that would be unsafe or surprising in production.
    if (!e.DATABASE_URL) problem('DATABASE_URL', 'required in production (the embedded PostgreSQL is for development)');
    if (e.ADMIN_EMAIL && !e.ADMIN_PASSWORD)
      problem('ADMIN_PASSWORD', 'required in production when ADMIN_EMAIL is set (generated credentials are for development)');
    if (!e.JWT_KEYS)
      problem('JWT_KEYS', 'required in production (a JWK set of private signing keys; generate one with `pnpm keys:generate`)');
    if (e.MAIL_TRANSPORT !== 'smtp') problem('MAIL_TRANSPORT', 'must be smtp in production (the log transport prints reset links)');
    if (!e.SERVICE_SECRET_HASH_KEY)
      problem('SERVICE_SECRET_HASH_KEY', 'required in production (32 random bytes, base64url: the key client secrets are hashed under)');
    if (!e.APP_URL) problem('APP_URL', 'required in production (mailed links point there)');
    if (!e.CORS_ORIGINS) problem('CORS_ORIGINS', 'required in production (a comma-separated list of allowed browser origins, or `none`)');
    if (!e.TWO_FACTOR_ENCRYPTION_KEYS)
      problem(
        'TWO_FACTOR_ENCRYPTION_KEYS',
        'required in production (comma-separated base64 keys of 32 bytes; make one with `openssl rand -base64 32`)',
      );
  }
  if (e.JWT_KEYS) {
    // Parsed here, not at first use: a bad key set must stop the start before migrations run.
    const keys = keySetProblem(e.JWT_KEYS);
    if (keys) problem('JWT_KEYS', `${keys.replace(/^JWT_KEYS:? ?/, '')} (generate a set with \`pnpm keys:generate\`)`);
  }
  if (e.DIRECT_DATABASE_URL && !e.DATABASE_URL)
    problem(
      'DIRECT_DATABASE_URL',
      'set it only with DATABASE_URL (the direct route to the database DATABASE_URL reaches through a pooler)',
    );
  if (e.MAIL_TRANSPORT === 'smtp' && !e.SMTP_URL) problem('SMTP_URL', 'required when MAIL_TRANSPORT=smtp (smtp://user:pass@host:587)');
  if (e.SESSION_IDLE_TIMEOUT_SECONDS > e.SESSION_MAX_LIFETIME_SECONDS)
    problem('SESSION_IDLE_TIMEOUT_SECONDS', 'must not exceed SESSION_MAX_LIFETIME_SECONDS');
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT)
    problem('METRICS_PORT', 'must differ from PORT (set METRICS_TOKEN instead to serve /metrics on the main port)');
  if (problems > 0) return z.NEVER;
  return {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    host: e.HOST,
    port: e.PORT,
    /** Where `pnpm studio` serves Prisma Studio. */
    studioPort: e.STUDIO_PORT,
    publicUrl: e.PUBLIC_URL,
    log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY ?? e.NODE_ENV === 'development' },
    database: {
      /** Undefined means: start (or reuse) the embedded PostgreSQL under `embeddedDir`. */
      url: e.DATABASE_URL,
      /**
       * A connection that reaches PostgreSQL itself, bypassing any transaction-mode pooler in
       * `url`: for what needs a session (migrations under their session advisory lock, LISTEN).
       * Undefined: `url` is direct already. Read it through `directDatabaseUrl()`.
       */
      directUrl: e.DIRECT_DATABASE_URL,
      poolSize: e.DATABASE_POOL_SIZE,
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: e.DATABASE_IDLE_TIMEOUT_MS,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      /** How long an interactive transaction waits for a connection (Prisma's `maxWait`). */
      // As long as the pool would wait for a connection: Prisma's 2 s default gave up first.
      transactionMaxWaitMs: e.DATABASE_TRANSACTION_MAX_WAIT_MS ?? e.DATABASE_CONNECT_TIMEOUT_MS,
      /** How long an interactive transaction may run, all its statements together (Prisma's `timeout`). */
      // Longer than one statement may run, so a slow statement ends as a statement timeout (504)
      // rather than expiring its transaction under it; the margin is the client-side read timeout's.
      transactionTimeoutMs: e.DATABASE_TRANSACTION_TIMEOUT_MS ?? e.DATABASE_STATEMENT_TIMEOUT_MS + STATEMENT_REPLY_MARGIN_MS,
      applicationName: e.DATABASE_APPLICATION_NAME,
      startupRetries: e.DATABASE_STARTUP_RETRIES,
      /** Hot reads as named prepared statements (off behind a transaction-mode pooler older than PgBouncer 1.21). */
      preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
      embeddedDir: resolve(PROJECT_ROOT, e.EMBEDDED_PG_DIR),
      migrateOnStart: e.MIGRATE_ON_START,
    },
    http: {
      corsOrigins: e.CORS_ORIGINS ?? (e.NODE_ENV === 'production' ? [] : DEV_CORS_ORIGINS),
      /** For Fastify's `trustProxy`: false, or the trusted proxies' addresses (see TRUST_PROXY). */
      trustProxy: e.TRUST_PROXY,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      maxBatchSize: e.TRPC_MAX_BATCH_SIZE,
      /** `keel`: tRPC's protocol served directly (http/trpc-route.ts); `standard`: tRPC's own Fastify adapter. */
      trpcAdapter: e.TRPC_ADAPTER,
      /** How long the answer to a mutation sent with an Idempotency-Key is replayed to its retries. */
      idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      /** After SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes. */
      // A balancer needs a few probe periods to see /readyz fail; nothing balances a developer's server.
      shutdownDrainMs: e.SHUTDOWN_DRAIN_MS ?? (e.NODE_ENV === 'production' ? 5_000 : 0),
      /**
       * How long a 429 answer is held before it is sent, at most (never past its Retry-After):
       * a client that never waits costs about one request per hold (http/refusal-pacing.ts).
       * Off in tests, whose limits are counted in loops; tests of the pacing turn it on.
       */
      refusalDelayMs: e.REFUSAL_DELAY_MS ?? (e.NODE_ENV === 'test' ? 0 : 1_000),
      /** 429 answers held at once, at most; past that they are sent at once. */
      refusalMaxHeld: e.REFUSAL_DELAY_MAX_HELD,
    },
    auth: {
      /** A JWK set (JSON) of private keys; undefined in development/test means: generate and keep in `keysFile`. */
      keys: e.JWT_KEYS,
      keysFile: resolve(PROJECT_ROOT, e.JWT_KEYS_FILE),
      algorithm: e.JWT_ALGORITHM,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      reuseGraceSeconds: e.REFRESH_REUSE_GRACE_SECONDS,
      sessionIdleSeconds: e.SESSION_IDLE_TIMEOUT_SECONDS,
      sessionMaxSeconds: e.SESSION_MAX_LIFETIME_SECONDS,
      strictSessions: e.AUTH_STRICT_SESSIONS,
      sessionCacheSeconds: e.AUTH_SESSION_CACHE_SECONDS,
      resetTokenTtlSeconds: e.PASSWORD_RESET_TTL_SECONDS,
      verificationTokenTtlSeconds: e.EMAIL_VERIFICATION_TTL_SECONDS,
      /** Cookies get the Secure flag everywhere but development and test (plain-http localhost). */
      secureCookies: e.NODE_ENV === 'production',
      appUrl: (e.APP_URL ?? 'http://localhost:5173').replace(/\/$/, ''),
    },
    rateLimit: {
      enabled: e.RATE_LIMIT_ENABLED,
      loginPerIp: e.RATE_LIMIT_LOGIN_PER_IP,
      loginFreeFailures: e.RATE_LIMIT_LOGIN_FREE_FAILURES,
      registerPerIp: e.RATE_LIMIT_REGISTER_PER_IP,
      resetPerIp: e.RATE_LIMIT_RESET_PER_IP,
      resetPerAccount: e.RATE_LIMIT_RESET_PER_ACCOUNT,
      /** Failed logins per address per 15 minutes, whatever the accounts (credential stuffing). */
      loginFailuresPerIp: e.RATE_LIMIT_LOGIN_FAILURES_PER_IP,
      /** Wrong reset or verification tokens per address per hour. */
      tokenFailuresPerIp: e.RATE_LIMIT_TOKEN_FAILURES_PER_IP,
      /** Calls of any procedure per address per minute. */
      apiPerIp: e.RATE_LIMIT_API_PER_IP,
      /** Calls of any procedure per authenticated user per minute. */
      apiPerUser: e.RATE_LIMIT_API_PER_USER,
      /** How often each instance adds its counts of the general limit to the shared ones. */
      apiSyncMs: e.RATE_LIMIT_API_SYNC_MS,
    },
    serviceAccounts: {
      // Outside production a fixed key: secrets made in development are not worth protecting.
      secretHashKey: Buffer.from(e.SERVICE_SECRET_HASH_KEY ?? 'keel-development-service-secret-hash-key-000', 'base64url'),
      tokenTtlSeconds: e.SERVICE_TOKEN_TTL_SECONDS,
      secretOverlapSeconds: e.SERVICE_SECRET_OVERLAP_SECONDS,
      tokenPerIp: e.RATE_LIMIT_OAUTH_PER_IP,
      tokenPerClient: e.RATE_LIMIT_OAUTH_PER_CLIENT,
    },
    mail: { transport: e.MAIL_TRANSPORT, smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    accounts: {
      /**
       * Keys sealing TOTP secrets (32 bytes each): the first seals, every one opens (rotation).
       * Undefined in development/test means: generate one and keep it in `twoFactorKeyFile`.
       */
      twoFactorKeys: e.TWO_FACTOR_ENCRYPTION_KEYS,
      twoFactorKeyFile: resolve(PROJECT_ROOT, e.TWO_FACTOR_KEY_FILE),
      /** The account issuer shown by authenticator apps. */
      twoFactorIssuer: e.TWO_FACTOR_ISSUER,
      /** Procedures other than `auth.*` answer FORBIDDEN (reason EMAIL_NOT_VERIFIED) until the email is verified. */
      requireVerifiedEmail: e.REQUIRE_VERIFIED_EMAIL,
      /** OpenID Connect providers one may sign in with (OIDC_PROVIDERS). */
      oidcProviders: e.OIDC_PROVIDERS ?? [],
      /** Where providers send the browser back (the web app's page, which passes `code` and `state` to `auth.oidc.finish`). */
      oidcRedirectUri: e.OIDC_REDIRECT_URI ?? `${(e.APP_URL ?? 'http://localhost:5173').replace(/\/$/, '')}/auth/oidc/callback`,
    },
    passwords: {
      /** argon2id cost. */
      memoryKib: e.ARGON2_MEMORY_KIB,
      iterations: e.ARGON2_ITERATIONS,
      parallelism: e.ARGON2_PARALLELISM,
      /** Hashes running at once in this process. */
      concurrency: e.PASSWORD_HASH_CONCURRENCY,
      /** Password operations (login, register, change, reset) allowed to wait for a slot; more are refused at once. */
      // Eight waiting per slot: at ~40 ms a hash, a login admitted last waits about a third of a second.
      queue: e.PASSWORD_HASH_QUEUE ?? 8 * e.PASSWORD_HASH_CONCURRENCY,
      /** The least zxcvbn score (0..4) a new password must reach. */
      minScore: e.PASSWORD_MIN_SCORE,
    },
    seed: {
      adminEmail: e.ADMIN_EMAIL?.toLowerCase(),
      adminPassword: e.ADMIN_PASSWORD,
      demoData: e.SEED_DEMO_DATA ?? e.NODE_ENV === 'development',
    },
    observability: {
      tracing:
        e.OTEL_SDK_DISABLED !== true &&
        e.OTEL_TRACES_EXPORTER !== 'none' &&
        (e.OTEL_EXPORTER_OTLP_ENDPOINT || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
          ? {
              /** Where spans are posted: the traces endpoint as given, or the base endpoint's /v1/traces (OTLP's rule). */
              url: e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${(e.OTEL_EXPORTER_OTLP_ENDPOINT as string).replace(/\/+$/, '')}/v1/traces`,
              protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
              sampler: e.OTEL_TRACES_SAMPLER,
              samplerArg: e.OTEL_TRACES_SAMPLER_ARG ?? 1,
              batch: {
                scheduledDelayMillis: e.OTEL_BSP_SCHEDULE_DELAY,
                exportTimeoutMillis: e.OTEL_BSP_EXPORT_TIMEOUT,
                maxQueueSize: e.OTEL_BSP_MAX_QUEUE_SIZE,
                maxExportBatchSize: Math.min(e.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, e.OTEL_BSP_MAX_QUEUE_SIZE),
              },
            }
          : undefined,
      metrics:
        e.METRICS_TOKEN !== undefined || e.METRICS_PORT !== undefined
          ? { token: e.METRICS_TOKEN, port: e.METRICS_PORT, host: e.METRICS_HOST }
          : undefined,
      slowProcedureMs: e.SLOW_PROCEDURE_MS,
      slowQueryMs: e.SLOW_QUERY_MS,
    },
    /** Subscriptions over SSE (server/src/live, docs/decisions/0022-live-updates.md). */
    live: {
      /** Open streams per user on one instance; more are refused with TOO_MANY_REQUESTS. */
      maxStreamsPerUser: e.LIVE_MAX_STREAMS_PER_USER,
      /** Open streams on one instance, all users together. */
      maxStreams: e.LIVE_MAX_STREAMS,
      /** A ping on every stream this often, so proxies keep it and clients notice a dead one. */
      heartbeatMs: e.LIVE_HEARTBEAT_SECONDS * 1000,
      /** A stream that delivered no event for this long is ended; the client reconnects (and re-authenticates). */
      idleTimeoutMs: e.LIVE_IDLE_TIMEOUT_SECONDS * 1000,
      /** How many past events an instance keeps for clients that reconnect with `lastEventId`. */
      replayEvents: e.LIVE_REPLAY_EVENTS,
      /** And for how long: an older `lastEventId` gets a `resync` event. */
      replayMs: e.LIVE_REPLAY_SECONDS * 1000,
    },
  };
});

export type Config = z.output<typeof configSchema>;

type RawEnv = Record<string, string | undefined>;

/** Variables whose value is never repeated in an error message (start-up errors go to logs). */
const SECRET_VARIABLE = /URL|PASSWORD|SECRET|KEY|TOKEN|OIDC_PROVIDERS/;

/** Parses an environment into a `Config`, throwing one `ConfigError` that lists every problem. */
export function parseConfig(raw: RawEnv): Config {
  // An empty variable (`PORT=`) means "not set", as in most dotenv tooling.
  const cleaned = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const problems: string[] = [];
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? '(environment)');
    if (issue.code === 'custom' && issue.params?.[ACROSS_VARIABLES] === true) {
      problems.push(`${key}: ${issue.message}`);
      continue;
    }
    const got = cleaned[key];
    const shown =
      got === undefined
        ? ' (missing)'
        : SECRET_VARIABLE.test(key)
          ? ' (value not shown: it may hold a secret)'
          : ` (got "${truncate(got)}")`;
    problems.push(`${key}: ${issue.message}${shown}`);
  }
  throw new ConfigError(problems);
}

/**
 * Where session-bound work connects: DIRECT_DATABASE_URL when set, else `databaseUrl` (the
 * configured DATABASE_URL or the embedded server's). Transaction-mode poolers (PgBouncer) hand
 * each transaction a different server connection, so a session advisory lock, a session `SET` or
 * a `LISTEN` sent through one is lost or, worse, left behind on a connection another client gets.
 */
export function directDatabaseUrl(database: Config['database'], databaseUrl: string): string {
  return database.directUrl ?? databaseUrl;
}

function truncate(value: string): string {
  return value.length > 40 ? `${value.slice(0, 37)}...` : value;
}

/**
 * Reads `.env` (if present) into the process environment without overriding variables that are
 * already set, then parses it. Called once by each entry point.
 */
export function loadConfig(options: { envFile?: string; overrides?: RawEnv } = {}): Config {
  loadDotEnv(options.envFile);
  return parseConfig({ ...process.env, ...options.overrides });
}

/** What a process entry (the server, `pnpm dev`) does first: the config, or its problems on stderr and exit 1. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`[keel] ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** Reads the project's `.env` (if present) without overriding variables that are already set. */
export function loadDotEnv(envFile = resolve(PROJECT_ROOT, '.env')): void {
  if (existsSync(envFile)) process.loadEnvFile(envFile);
}

/**
 * The raw value of one variable, for tools that need a single setting and must not demand a
 * full production config (e.g. `pnpm db:migrate` in a deploy step needs only DATABASE_URL).
 */
export function readEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === '' ? undefined : value;
}

/** The head sampler named by OTEL_TRACES_SAMPLER. */
export type TracesSampler = z.infer<typeof envSchema>['OTEL_TRACES_SAMPLER'];
