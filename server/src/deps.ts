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
import { DevInbox, devInboxEnabled } from './mail/dev-inbox.js';
import { createMailTransport, type MailTransport } from './mail/transport.js';
import { MailWorker } from './mail/worker.js';
import { createAccountService } from './modules/account/service.js';
import { type AccessTokens, createAccessTokens } from './modules/auth/access-tokens.js';
import { flushAuditRepeats } from './modules/auth/audit.js';
import { createAuthenticator } from './modules/auth/authenticate.js';
import type { KeySet } from './modules/auth/keys.js';
import { createOidcService, type OidcServiceDeps } from './modules/auth/oidc/service.js';
import { createRateLimits, type RateLimits } from './modules/auth/rate-limits.js';
import { createAuthService } from './modules/auth/service.js';
import { SessionCache } from './modules/auth/sessions.js';
import { lazySecretBox, loadTwoFactorKeys } from './modules/auth/two-factor/secret-box.js';
import { createTwoFactorService } from './modules/auth/two-factor/service.js';
import { createProjectService } from './modules/projects/service.js';
import { createServiceAccountService } from './modules/service-accounts/service.js';
import { createServiceTokens } from './modules/service-accounts/tokens.js';
import { createTaskService } from './modules/tasks/service.js';
import { createUserService } from './modules/users/service.js';
import type { Observability } from './observability/index.js';
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
  /** The mails sent, listed at GET /dev/inbox: development with the log transport only (mail/dev-inbox.ts). */
  devInbox: DevInbox | undefined;
  /** Traces, metrics, slow logs (server/src/observability); undefined when none is configured. */
  observability: Observability | undefined;
  services: Services;
}

export interface AppDepsInput {
  config: Config;
  database: Database;
  logger: Logger;
  keys: KeySet;
  now?: () => Date;
  mailTransport?: MailTransport;
  /** The HTTP client toward OpenID Connect providers (tests); the global fetch by default. */
  oidcFetch?: OidcServiceDeps['fetch'];
  observability?: Observability | undefined;
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
  const devInbox = devInboxEnabled(config) ? new DevInbox(now) : undefined;
  const mailer = new MailWorker(database.prisma, input.mailTransport ?? createMailTransport(config, logger, devInbox), logger);
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
  const twoFactor = createTwoFactorService({
    db: database.prisma,
    config,
    box: lazySecretBox(() => loadTwoFactorKeys(config)),
    accessTokens,
    rateLimits,
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
    devInbox,
    observability: input.observability,
    services: {
      auth,
      twoFactor,
      oidc: createOidcService({
        db: database.prisma,
        config,
        accessTokens,
        rateLimits,
        now,
        ...(input.oidcFetch ? { fetch: input.oidcFetch } : {}),
      }),
      account: createAccountService({
        db: database.prisma,
        config,
        rateLimits,
        sessionCache,
        twoFactor,
        mailQueued: () => mailer.kick(),
        now,
      }),
      authenticator: createAuthenticator({ db: database.prisma, config, accessTokens, sessionCache, now }),
      rateLimits,
      idempotency,
      projects: createProjectService(database.prisma, database.sql, now),
      tasks: createTaskService(database.prisma, now),
      users: createUserService(database.prisma, sessionCache, now),
      serviceAccounts: createServiceAccountService(database.prisma, config.serviceAccounts, now),
      serviceTokens: createServiceTokens(keys, config.auth, config.serviceAccounts.tokenTtlSeconds, now),
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
  flushAuditRepeats();
}
