import { type Logger, type LoggerOptions, pino } from 'pino';
import type { Config } from './config.js';

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

export function loggerOptions(config: Pick<Config, 'log' | 'env'>): LoggerOptions {
  return {
    level: config.log.level,
    base: { service: 'keel', env: config.env },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(config.log.pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service,env' } } }
      : {}),
  };
}

export function createLogger(config: Pick<Config, 'log' | 'env'>, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions({ ...config, log: { ...config.log, pretty: false } }), destination) : pino(loggerOptions(config));
}
