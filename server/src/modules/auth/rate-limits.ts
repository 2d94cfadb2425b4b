/**
 * Abuse limits, kept in PostgreSQL by rate-limiter-flexible so that every instance shares them.
 * Each call of a batch goes through its procedure, so batching cannot get around a limit.
 * The general limit on every call (api-limits.ts) counts in memory and shares in the background.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../../config.js';
import { unnamedStatements } from '../../db/pooler.js';
import { AppError } from '../../lib/errors.js';
import type { Log, Logger } from '../../logger.js';
import { addressKey } from './address-key.js';
import { type ApiCaller, type ApiDecision, createApiLimiter } from './api-limits.js';
import { audit } from './audit.js';

export type { ApiCaller, ApiDecision };
export { addressKey };

/**
 * Per-address budgets. `loginFailures` and `tokenFailures` count failed sign-ins (whatever the
 * accounts: credential stuffing) and wrong reset or verification tokens: each attempt is counted
 * before it runs, so concurrent attempts cannot all slip through, and refunded when it succeeds.
 */
export type IpLimit = 'login' | 'register' | 'passwordReset' | 'loginFailures' | 'tokenFailures';

/** One password check on an account, counted as a failure until it is settled. */
export interface PasswordAttempt {
  /** The right password: the account's failures are forgotten. */
  succeeded(): Promise<void>;
  /** A wrong password: past the free failures, each one doubles the account's backoff (1 s .. 15 min). */
  failed(): Promise<void>;
  /** The check could not finish (the database failed): it stays counted, the account's turn is freed. */
  abandoned(): Promise<void>;
}

export interface RateLimits {
  /** Counts one attempt from `ip`; TOO_MANY_REQUESTS once the window's budget is spent. */
  consumeIp(limit: IpLimit, ip: string | undefined): Promise<void>;
  /** Gives back one attempt counted by `consumeIp` (a sign-in or token that turned out right). */
  refundIp(limit: IpLimit, ip: string | undefined): Promise<void>;
  /**
   * The general limit on every call, per client address and per user (either may be absent):
   * decided in memory, synchronously, with no database round trip (see api-limits.ts).
   */
  checkApi(caller: ApiCaller): ApiDecision;
  /** Shares this instance's counts of the general limit now (it also happens every `apiSyncMs`). */
  syncApi(): Promise<void>;
  /** Stops the general limit's background sharing, after a last one. */
  stop(): Promise<void>;
  /**
   * Starts a password check on the account of `email`: TOO_MANY_REQUESTS while the account is in
   * a backoff, or while another check past its free failures is running. The attempt is counted
   * before the password is checked, so concurrent calls (a batch, many addresses) cannot all slip
   * through before the first failure is recorded.
   */
  beginPasswordAttempt(email: string): Promise<PasswordAttempt>;
  /**
   * Counts one password-reset mail to the account of `email`; false once the hour's budget is
   * spent, whatever addresses asked (each new mail also kills the previous link, so a flood of
   * requests could keep the owner from ever finishing a reset).
   */
  allowResetMail(email: string): Promise<boolean>;
}

const MAX_BACKOFF_SECONDS = 15 * 60;
const TABLE = 'rate_limits';

/**
 * rate-limiter-flexible's PostgreSQL limiters over `pool`, for every limit shared by the instances
 * (these, and the token endpoint's in service-accounts/limits.ts): windows in `rate_limits`.
 * `blockInMemory`: a key past its budget is refused from this process's memory until its window
 * ends, with no query (the shared count can only have grown meanwhile), so a flood behind one
 * address costs no database work. Not for budgets that give points back (failures refunded after
 * a right password): concurrent right attempts can pass the budget for a moment and be refunded
 * below it, and the memory block would outlive that moment by the whole window.
 */
export function postgresLimiters(pool: pg.Pool) {
  // Unnamed: the library names its statements, which PgBouncer in transaction mode cannot carry.
  const storeClient = unnamedStatements(pool);
  return (keyPrefix: string, points: number, duration: number, blockInMemory = false) =>
    new RateLimiterPostgres({
      storeClient,
      storeType: 'pool',
      tableName: TABLE,
      tableCreated: true,
      keyPrefix,
      points,
      duration,
      ...(blockInMemory ? { inMemoryBlockOnConsumed: points + 1 } : {}),
    });
}

const tooMany = (msBeforeNext: number) => {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new AppError('TOO_MANY_REQUESTS', `Too many attempts. Retry in ${retryAfterSeconds} s.`, { retryAfterSeconds });
};

/** Rate-limit keys never hold an address in clear: the table is readable by anyone with Studio. */
const accountKey = (email: string) => createHash('sha256').update(email).digest('hex').slice(0, 40);

/**
 * The error for a call refused by the general limit, logged with the caller's address (and user):
 * refusals must be traceable to a client.
 */
export function apiLimitExceeded(log: Log, caller: ApiCaller, decision: Extract<ApiDecision, { allowed: false }>): AppError {
  audit(log, 'auth.rate_limited', { ip: caller.ip, userId: caller.userId, limit: `api-${decision.limit}` });
  return new AppError('TOO_MANY_REQUESTS', `Too many requests. Retry in ${decision.retryAfterSeconds} s.`, {
    retryAfterSeconds: decision.retryAfterSeconds,
  });
}

export interface RateLimitsOptions {
  /** Epoch milliseconds (the general limit's windows; the others use the server clock). */
  now: () => number;
  log: Logger;
}

const ALLOWED: ApiDecision = { allowed: true };

export function createRateLimits(pool: pg.Pool, config: Config['rateLimit'], options: RateLimitsOptions): RateLimits {
  if (!config.enabled) {
    const unlimited: PasswordAttempt = { succeeded: async () => {}, failed: async () => {}, abandoned: async () => {} };
    return {
      consumeIp: async () => {},
      refundIp: async () => {},
      checkApi: () => ALLOWED,
      syncApi: async () => {},
      stop: async () => {},
      beginPasswordAttempt: async () => unlimited,
      allowResetMail: async () => true,
    };
  }
  const limiter = postgresLimiters(pool);
  const ipLimiters: Record<IpLimit, RateLimiterPostgres> = {
    login: limiter('ip-login', config.loginPerIp, 15 * 60, true),
    register: limiter('ip-register', config.registerPerIp, 60 * 60, true),
    passwordReset: limiter('ip-reset', config.resetPerIp, 60 * 60, true),
    loginFailures: limiter('ip-login-fail', config.loginFailuresPerIp, 15 * 60),
    tokenFailures: limiter('ip-token-fail', config.tokenFailuresPerIp, 60 * 60),
  };
  const api = createApiLimiter({
    pool,
    perIp: config.apiPerIp,
    perUser: config.apiPerUser,
    syncMs: config.apiSyncMs,
    now: options.now,
    log: options.log,
  });
  const failures = limiter('acct-fail', 10_000, 24 * 60 * 60);
  const blocks = limiter('acct-block', 1, MAX_BACKOFF_SECONDS);
  // Past the free failures, one check at a time per account (held at most this long).
  const turns = limiter('acct-turn', 1, 30);
  const resetMails = limiter('acct-reset', config.resetPerAccount, 60 * 60);

  return {
    async consumeIp(limit, ip) {
      try {
        await ipLimiters[limit].consume(addressKey(ip));
      } catch (error) {
        if (error instanceof RateLimiterRes) throw tooMany(error.msBeforeNext);
        throw error;
      }
    },
    async refundIp(limit, ip) {
      await ipLimiters[limit].reward(addressKey(ip), 1);
    },
    checkApi: (caller) => api.check(caller),
    syncApi: () => api.sync(),
    stop: () => api.stop(),
    async beginPasswordAttempt(email) {
      const key = accountKey(email);
      const block = await blocks.get(key);
      if (block && block.consumedPoints > 1) throw tooMany(block.msBeforeNext);
      const { consumedPoints } = await failures.penalty(key, 1);
      const excess = consumedPoints - config.loginFreeFailures;
      if (excess > 0) {
        try {
          await turns.consume(key);
          // The check before the turn may have raced the last holder's failure: look again.
          const since = await blocks.get(key);
          if (since && since.consumedPoints > 1) {
            await turns.delete(key);
            throw new RateLimiterRes(0, since.msBeforeNext);
          }
        } catch (error) {
          // No refund of the count: a refund racing the owner's success (which deletes the key)
          // would drive it below zero and hand out extra free attempts. Refused concurrent
          // attempts only make the next backoff longer.
          if (error instanceof RateLimiterRes) throw tooMany(error.msBeforeNext);
          throw error;
        }
      }
      return {
        async succeeded() {
          await Promise.all([failures.delete(key), blocks.delete(key), turns.delete(key)]);
        },
        async failed() {
          if (excess <= 0) return;
          await blocks.block(key, Math.min(2 ** (excess - 1), MAX_BACKOFF_SECONDS));
          await turns.delete(key);
        },
        async abandoned() {
          if (excess > 0) await turns.delete(key);
        },
      };
    },
    async allowResetMail(email) {
      try {
        await resetMails.consume(accountKey(email));
        return true;
      } catch (error) {
        if (error instanceof RateLimiterRes) return false;
        throw error;
      }
    },
  };
}
