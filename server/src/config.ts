/**
 * The environment, validated once. This module is the only reader of `process.env`: everything
 * else receives a `Config`. A bad or missing variable stops start-up with one message naming every
 * problem, and production refuses the conveniences that only make sense on a developer's machine.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';

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

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\/\S+$/, { message: 'expected a postgresql:// connection URL' });

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: bool.optional(),
  PUBLIC_URL: z.url({ message: 'expected an absolute URL such as https://api.example.com' }).optional(),

  DATABASE_URL: postgresUrl.optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 60_000).default(3_000),
  DATABASE_IDLE_TIMEOUT_MS: int(1_000, 3_600_000).default(30_000),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  DATABASE_APPLICATION_NAME: z.string().min(1).max(63).default('keel'),
  DATABASE_STARTUP_RETRIES: int(0, 100).default(8),
  EMBEDDED_PG_DIR: z.string().min(1).default('.data/postgres'),
  MIGRATE_ON_START: bool.default(true),

  CORS_ORIGINS: list.optional(),
  TRUST_PROXY: bool.default(false),
  BODY_LIMIT_BYTES: int(1_024, 100 * 1024 * 1024).default(1024 * 1024),
  TRPC_MAX_BATCH_SIZE: int(1, 1_000).default(50),
  REQUEST_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  HEADERS_TIMEOUT_MS: int(1_000, 120_000).default(10_000),
  KEEP_ALIVE_TIMEOUT_MS: int(1_000, 120_000).default(5_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),

  ARGON2_MEMORY_KIB: int(19_456, 4_194_304).default(19_456),
  ARGON2_ITERATIONS: int(2, 20).default(2),
  ARGON2_PARALLELISM: int(1, 16).default(1),

  ADMIN_EMAIL: z.email({ message: 'expected an email address' }).optional(),
  ADMIN_PASSWORD: z.string().min(12, { message: 'expected at least 12 characters' }).max(128).optional(),
  SEED_DEMO_DATA: bool.optional(),
});

type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  host: string;
  port: number;
  publicUrl: string | undefined;
  log: { level: Env['LOG_LEVEL']; pretty: boolean };
  database: {
    /** Undefined means: start (or reuse) the embedded PostgreSQL under `embeddedDir`. */
    url: string | undefined;
    poolSize: number;
    connectTimeoutMs: number;
    idleTimeoutMs: number;
    statementTimeoutMs: number;
    applicationName: string;
    startupRetries: number;
    embeddedDir: string;
    migrateOnStart: boolean;
  };
  http: {
    corsOrigins: string[];
    trustProxy: boolean;
    bodyLimitBytes: number;
    maxBatchSize: number;
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    keepAliveTimeoutMs: number;
    shutdownTimeoutMs: number;
  };
  passwords: { memoryKib: number; iterations: number; parallelism: number };
  seed: { adminEmail: string | undefined; adminPassword: string | undefined; demoData: boolean };
}

const DEV_CORS_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173'];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration (fix these environment variables, see .env.example):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type RawEnv = Record<string, string | undefined>;

/** Parses an environment into a `Config`, throwing one `ConfigError` that lists every problem. */
export function parseConfig(raw: RawEnv): Config {
  // An empty variable (`PORT=`) means "not set", as in most dotenv tooling.
  const cleaned = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? '(environment)');
      const got = cleaned[key];
      problems.push(`${key}: ${issue.message}${got === undefined ? ' (missing)' : ` (got "${truncate(got)}")`}`);
    }
  }
  if (parsed.success && parsed.data.NODE_ENV === 'production') {
    // Development conveniences that would be unsafe or surprising in production.
    if (!parsed.data.DATABASE_URL) problems.push('DATABASE_URL: required in production (the embedded PostgreSQL is for development)');
    if (parsed.data.ADMIN_EMAIL && !parsed.data.ADMIN_PASSWORD)
      problems.push('ADMIN_PASSWORD: required in production when ADMIN_EMAIL is set (generated credentials are for development)');
    if (!parsed.data.CORS_ORIGINS)
      problems.push('CORS_ORIGINS: required in production (a comma-separated list of allowed browser origins, or `none`)');
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL,
    log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY ?? e.NODE_ENV === 'development' },
    database: {
      url: e.DATABASE_URL,
      poolSize: e.DATABASE_POOL_SIZE,
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: e.DATABASE_IDLE_TIMEOUT_MS,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      applicationName: e.DATABASE_APPLICATION_NAME,
      startupRetries: e.DATABASE_STARTUP_RETRIES,
      embeddedDir: e.EMBEDDED_PG_DIR,
      migrateOnStart: e.MIGRATE_ON_START,
    },
    http: {
      corsOrigins: e.CORS_ORIGINS ?? (e.NODE_ENV === 'production' ? [] : DEV_CORS_ORIGINS),
      trustProxy: e.TRUST_PROXY,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      maxBatchSize: e.TRPC_MAX_BATCH_SIZE,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    },
    passwords: { memoryKib: e.ARGON2_MEMORY_KIB, iterations: e.ARGON2_ITERATIONS, parallelism: e.ARGON2_PARALLELISM },
    seed: {
      adminEmail: e.ADMIN_EMAIL?.toLowerCase(),
      adminPassword: e.ADMIN_PASSWORD,
      demoData: e.SEED_DEMO_DATA ?? e.NODE_ENV === 'development',
    },
  };
}

function truncate(value: string): string {
  return value.length > 40 ? `${value.slice(0, 37)}...` : value;
}

/**
 * Reads `.env` (if present) into the process environment without overriding variables that are
 * already set, then parses it. Called once by each entry point.
 */
export function loadConfig(options: { envFile?: string; overrides?: RawEnv } = {}): Config {
  const envFile = options.envFile ?? '.env';
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  return parseConfig({ ...process.env, ...options.overrides });
}

/** The raw value of one variable, for entry points that run before a full config can exist. */
export function readEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === '' ? undefined : value;
}
