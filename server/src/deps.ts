/**
 * The composition root: every long-lived dependency, built once per process (or per test) and
 * handed to procedures through the tRPC context. No container library: a plain object.
 */
import type { Config } from './config.js';
import type { Database } from './db/client.js';
import { BackgroundTasks } from './lib/background.js';
import { createIdempotencyStore } from './lib/idempotency.js';
import { Lifecycle } from './lib/lifecycle.js';
import { LiveHub } from './live/hub.js';
import type { Logger } from './logger.js';
import { createMailTransport, type MailTransport } from './mail/transport.js';
import { MailWorker } from './mail/worker.js';
import { type AccessTokens, createAccessTokens } from './modules/auth/access-tokens.js';
import { createAuthenticator } from './modules/auth/authenticate.js';
import type { KeySet } from './modules/auth/keys.js';
import { createRateLimits, type RateLimits } from './modules/auth/rate-limits.js';
import { createAuthService } from './modules/auth/service.js';
import { SessionCache } from './modules/auth/sessions.js';
import { createProjectService } from './modules/projects/service.js';
import { createTaskService } from './modules/tasks/service.js';
import { createUserService } from './modules/users/service.js';
import type { Services } from './services.js';

export interface AppDeps {
  config: Config;
  database: Database;
  logger: Logger;
  /** The time source, so tests can move time without sleeping. */
  now: () => Date;
  keys: KeySet;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  sessionCache: SessionCache;
  background: BackgroundTasks;
  mailer: MailWorker;
  /** Draining or not (readiness). */
  lifecycle: Lifecycle;
  services: Services;
}

export interface AppDepsInput {
  config: Config;
  database: Database;
  logger: Logger;
  keys: KeySet;
  now?: () => Date;
  mailTransport?: MailTransport;
  /** Where live updates LISTEN when the config names no URL (the embedded database's). */
  databaseUrl?: string;
}

export function createAppDeps(input: AppDepsInput): AppDeps {
  const { config, database, logger, keys } = input;
  const now = input.now ?? (() => new Date());
  const accessTokens = createAccessTokens(keys, config.auth, now);
  const rateLimits = createRateLimits(database.pool, config.rateLimit, { now: () => now().getTime(), log: logger });
  const sessionCache = new SessionCache(config.auth.sessionCacheSeconds);
  const background = new BackgroundTasks(logger);
  const idempotency = createIdempotencyStore(database.pool, {
    ttlSeconds: config.http.idempotencyTtlSeconds,
    // Longer than a request may run (its timeout): a claim older than that without an answer was abandoned.
    abandonedAfterMs: 2 * config.http.requestTimeoutMs,
    now,
  });
  const mailer = new MailWorker(database.prisma, input.mailTransport ?? createMailTransport(config, logger), logger);
  const auth = createAuthService({
    db: database.prisma,
    config,
    keys,
    accessTokens,
    rateLimits,
    sessionCache,
    background,
    mailQueued: () => mailer.kick(),
    now,
  });
  return {
    config,
    database,
    logger,
    now,
    keys,
    accessTokens,
    rateLimits,
    sessionCache,
    background,
    mailer,
    lifecycle: new Lifecycle(),
    services: {
      auth,
      authenticator: createAuthenticator({ db: database.prisma, config, accessTokens, sessionCache, now }),
      rateLimits,
      idempotency,
      projects: createProjectService(database.prisma, database.sql, now),
      tasks: createTaskService(database.prisma, now),
      users: createUserService(database.prisma, sessionCache, now),
      live: new LiveHub({
        url: config.database.directUrl ?? config.database.url ?? input.databaseUrl,
        config: config.live,
        applicationName: config.database.applicationName,
        connectTimeoutMs: config.database.connectTimeoutMs,
        logger,
        now: () => now().getTime(),
      }),
    },
  };
}

/** Lets background work finish, stops the mail worker and the limits' sharing (the pool is closed by its owner). */
export async function stopAppDeps(deps: AppDeps): Promise<void> {
  await deps.services.live.stop();
  await deps.background.drain();
  await deps.mailer.stop();
  await deps.rateLimits.stop();
  deps.services.idempotency.stop();
}
