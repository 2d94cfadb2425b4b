/**
 * Token-request limits, on the machinery of the login limits (auth/rate-limits.ts): the same
 * PostgreSQL table shared by every instance, the same address keys (an IPv6 /64 counts as one).
 * Per address: every request, and failed client authentications (counted before the check,
 * refunded on success, so concurrent guesses cannot slip through). Per client: tokens issued,
 * so a runaway service cannot mint without bound (counted only after its secret proved it).
 */
import type pg from 'pg';
import { type RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../../config.js';
import { addressKey } from '../auth/address-key.js';
import { postgresLimiters } from '../auth/rate-limits.js';

const WINDOW_SECONDS = 15 * 60;

/** Over budget: retry after this many seconds. */
export class TokenRateLimited extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('rate limited');
    this.name = 'TokenRateLimited';
  }
}

export interface TokenLimits {
  request(ip: string | undefined): Promise<void>;
  failure(ip: string | undefined): Promise<void>;
  refundFailure(ip: string | undefined): Promise<void>;
  issued(clientId: string): Promise<void>;
}

export function createTokenLimits(pool: pg.Pool, rateLimit: Config['rateLimit'], config: Config['serviceAccounts']): TokenLimits {
  if (!rateLimit.enabled)
    return { request: async () => {}, failure: async () => {}, refundFailure: async () => {}, issued: async () => {} };
  const limiter = postgresLimiters(pool);
  const perIp = limiter('oauth-ip', config.tokenPerIp, WINDOW_SECONDS, true);
  const failures = limiter('oauth-ip-fail', rateLimit.loginFailuresPerIp, WINDOW_SECONDS);
  const perClient = limiter('oauth-client', config.tokenPerClient, WINDOW_SECONDS, true);
  const consume = async (l: RateLimiterPostgres, key: string) => {
    try {
      await l.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw new TokenRateLimited(Math.max(1, Math.ceil(error.msBeforeNext / 1000)));
      throw error;
    }
  };
  return {
    request: (ip) => consume(perIp, addressKey(ip)),
    failure: (ip) => consume(failures, addressKey(ip)),
    refundFailure: async (ip) => {
      await failures.reward(addressKey(ip), 1);
    },
    issued: (clientId) => consume(perClient, clientId),
  };
}
