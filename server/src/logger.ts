import { type Logger, type LoggerOptions, pino } from 'pino';
import type { Config } from './config.js';
import { traceLogFields } from './observability/log-fields.js';

export type { Logger };

/**
 * Anything that could let a reader of the logs act as a user. pino's redaction matches exact
 * paths, so sensitive names are listed at the depths where Keel logs objects.
 */
const SENSITIVE_KEYS = [
  'password',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'clientSecret',
  'apiKey',
  'authorization',
  'cookie',
];

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SENSITIVE_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
];

export function loggerOptions(config: Pick<Config, 'log' | 'env'> & Partial<Pick<Config, 'observability'>>): LoggerOptions {
  return {
    level: config.log.level,
    base: { service: 'keel', env: config.env },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // trace_id and span_id on the lines of a traced request (README "Observability"); none when tracing is off.
    ...(config.observability?.tracing ? { mixin: traceLogFields } : {}),
    ...(config.log.pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service,env' } } }
      : {}),
  };
}

/**
 * The process's logger: JSON to stdout, written asynchronously (sonic-boom batches the writes that
 * pile up while one is in flight, instead of one write syscall per line; pino flushes what is left
 * when the process exits), pretty in development. Tests pass their own destination.
 */
export function createLogger(
  config: Pick<Config, 'log' | 'env'> & Partial<Pick<Config, 'observability'>>,
  destination?: pino.DestinationStream,
): Logger {
  if (destination) return pino(loggerOptions({ ...config, log: { ...config.log, pretty: false } }), destination);
  const options = loggerOptions(config);
  return config.log.pretty ? pino(options) : pino(options, pino.destination({ dest: 1, sync: false }));
}

/**
 * Ends the process with `code` once the last lines are written. The destination writes
 * asynchronously, and `process.exit()` does not wait for a write in flight (sonic-boom's exit
 * hook writes only what is queued behind it): exiting at once lost the last lines now and then
 * ("stopped", the reason of a fatal error), most often when the reader of stdout was slow. The
 * process therefore ends by itself once nothing is left to do (a write in flight keeps it alive),
 * and `graceMs` later at most if something else still holds it.
 */
export function exitWhenLogged(code: number, graceMs = 2_000): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), graceMs).unref();
}

/**
 * A child of `logger` without redaction, for a line whose fields are fixed and never secret (the
 * request line: method, path without query, status, duration, user id). Redaction's wildcard paths
 * cost ~10x the line itself, on every request.
 */
export const unredacted = (logger: Logger): Logger => logger.child({}, { redact: { paths: [] } });

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];
type LogArgs = Parameters<Logger['info']>;
type Bindings = Record<string, unknown>;

/** What request-scoped code logs through: the level methods of a pino logger. */
export type Log = Pick<Logger, Level>;

/**
 * A child logger that exists only once something is logged through it at an enabled level. Every
 * request gets one (Fastify's `req.log`, a procedure's `ctx.log`), and most requests log nothing
 * but their one line (written by the HTTP host with the root logger): building a pino child runs
 * its bindings through serialisation and redaction, which cost 11% of an authenticated list call.
 */
export class LazyChildLogger implements Log {
  #logger: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
  ) {}

  /** The pino child, made on first use. */
  get logger(): Logger {
    this.#logger ??= this.parent.child(this.bindings);
    return this.#logger;
  }

  trace(...args: LogArgs): void {
    this.#write('trace', args);
  }
  debug(...args: LogArgs): void {
    this.#write('debug', args);
  }
  info(...args: LogArgs): void {
    this.#write('info', args);
  }
  warn(...args: LogArgs): void {
    this.#write('warn', args);
  }
  error(...args: LogArgs): void {
    this.#write('error', args);
  }
  fatal(...args: LogArgs): void {
    this.#write('fatal', args);
  }

  get level(): string {
    return this.#logger?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  silent(): void {}

  /** For Fastify, which asks every request logger for `child`. */
  child(bindings: Bindings): Logger {
    return this.logger.child(bindings);
  }

  #write(level: Level, args: LogArgs): void {
    if (this.parent.isLevelEnabled(level)) (this.logger[level] as (...a: LogArgs) => void)(...args);
  }
}
