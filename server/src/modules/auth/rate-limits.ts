/**
 * Abuse limits, kept in PostgreSQL by rate-limiter-flexible so that every instance shares them.
 * Each call of a batch goes through its procedure, so batching cannot get around a limit.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../../config.js';
import { AppError } from '../../lib/errors.js';

export type IpLimit = 'login' | 'register' | 'passwordReset';

export interface RateLimits {
  /** Counts one attempt from `ip`; TOO_MANY_REQUESTS once the window's budget is spent. */
  consumeIp(limit: IpLimit, ip: string | undefined): Promise<void>;
  /** TOO_MANY_REQUESTS while the account is in a failure backoff. */
  assertAccountNotBlocked(email: string): Promise<void>;
  /** A failed login: past the free failures, each one doubles the account's backoff (1 s .. 15 min). */
  recordLoginFailure(email: string): Promise<void>;
  recordLoginSuccess(email: string): Promise<void>;
}

const MAX_BACKOFF_SECONDS = 15 * 60;
const TABLE = 'rate_limits';

const tooMany = (msBeforeNext: number) => {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new AppError('TOO_MANY_REQUESTS', `Too many attempts. Retry in ${retryAfterSeconds} s.`, { retryAfterSeconds });
};

/** Rate-limit keys never hold an address in clear: the table is readable by anyone with Studio. */
const accountKey = (email: string) => createHash('sha256').update(email).digest('hex').slice(0, 40);

export function createRateLimits(pool: pg.Pool, config: Config['rateLimit']): RateLimits {
  if (!config.enabled) {
    return {
      consumeIp: async () => {},
      assertAccountNotBlocked: async () => {},
      recordLoginFailure: async () => {},
      recordLoginSuccess: async () => {},
    };
  }
  const limiter = (keyPrefix: string, points: number, duration: number) =>
    new RateLimiterPostgres({ storeClient: pool, storeType: 'pool', tableName: TABLE, tableCreated: true, keyPrefix, points, duration });
  const ipLimiters: Record<IpLimit, RateLimiterPostgres> = {
    login: limiter('ip-login', config.loginPerIp, 15 * 60),
    register: limiter('ip-register', config.registerPerIp, 60 * 60),
    passwordReset: limiter('ip-reset', config.resetPerIp, 60 * 60),
  };
  const failures = limiter('acct-fail', 10_000, 24 * 60 * 60);
  const blocks = limiter('acct-block', 1, MAX_BACKOFF_SECONDS);

  return {
    async consumeIp(limit, ip) {
      try {
        await ipLimiters[limit].consume(ip ?? 'unknown');
      } catch (error) {
        if (error instanceof RateLimiterRes) throw tooMany(error.msBeforeNext);
        throw error;
      }
    },
    async assertAccountNotBlocked(email) {
      const state = await blocks.get(accountKey(email));
      if (state && state.consumedPoints > 1) throw tooMany(state.msBeforeNext);
    },
    async recordLoginFailure(email) {
      const key = accountKey(email);
      const { consumedPoints } = await failures.penalty(key, 1);
      const excess = consumedPoints - config.loginFreeFailures;
      if (excess > 0) await blocks.block(key, Math.min(2 ** (excess - 1), MAX_BACKOFF_SECONDS));
    },
    async recordLoginSuccess(email) {
      const key = accountKey(email);
      await Promise.all([failures.delete(key), blocks.delete(key)]);
    },
  };
}
