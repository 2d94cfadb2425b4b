/**
 * The types the rest of the server knows the account feature by: the caller a token proves, the
 * request facts a service reads, and what the account service is built from. Types only, so that
 * `trpc/` and other modules name the caller without importing the service.
 */
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/client.js';
import type { BackgroundTasks } from '../../lib/background.js';
import type { Log } from '../../logger.js';
import type { AccessTokens } from './access-tokens.js';
import type { KeySet } from './keys.js';
import type { RateLimits } from './rate-limits.js';
import type { Role } from './schemas.js';
import type { SessionCache } from './sessions.js';

/** The caller, as the access token proves it. */
export interface AuthUser {
  id: string;
  role: Role;
  sessionId: string;
}

/** What the service needs to know about the request it serves. */
export interface ClientInfo {
  ip: string | undefined;
  userAgent: string | undefined;
  log: Log;
}

export interface AuthServiceDeps {
  db: PrismaClient;
  config: Config;
  keys: KeySet;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  sessionCache: SessionCache;
  background: BackgroundTasks;
  /** Tells the mail worker that the outbox has something new. */
  mailQueued: () => void;
  now: () => Date;
}
