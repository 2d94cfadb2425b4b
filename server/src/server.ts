import { type Config, directDatabaseUrl } from './config.js';
import { createDatabase, type Database } from './db/client.js';
import { type DatabaseHandle, ensureDatabase } from './db/embedded.js';
import { applyMigrations, MIGRATIONS_TABLE } from './db/migrations/runner.js';
import { checkPooledConnection } from './db/pooler.js';
import { seed } from './db/seed.js';
import { redactUrl, waitForDatabase } from './db/wait.js';
import { createAppDeps, stopAppDeps } from './deps.js';
import { type App, buildApp } from './http/app.js';
import type { Logger } from './logger.js';
import { DEV_INBOX_PATH } from './mail/dev-inbox.js';
import { loadKeySet } from './modules/auth/keys.js';
import { type Observability, startObservability } from './observability/index.js';

export interface RunningServer {
  app: App;
  database: Database;
  url: string;
  /**
   * Drains (`/readyz` 503 for SHUTDOWN_DRAIN_MS while everything else is served and connections
   * are accepted), then stops accepting, lets in-flight requests finish (up to
   * SHUTDOWN_TIMEOUT_MS), closes the pool and any embedded database. Safe to call twice.
   */
  close(): Promise<void>;
  /** Ends a drain in progress at once (a second signal); the rest of `close()` goes on. False when none was in progress. */
  skipDrain(): boolean;
}

/**
 * The seed runs at start-up on the embedded database, in development on any database, and
 * wherever ADMIN_EMAIL and ADMIN_PASSWORD are both set (production's first admin). It is
 * idempotent and safe with several instances starting at once (see db/seed.ts).
 */
export function shouldSeed(config: Config): boolean {
  return (
    !config.database.url ||
    config.env === 'development' ||
    (config.seed.adminEmail !== undefined && config.seed.adminPassword !== undefined)
  );
}

/**
 * Everything between a valid config and a listening server, one logged step at a time:
 * database (configured or embedded), readiness, migrations, seed, HTTP.
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const step = (message: string) => logger.info(message);
  let handle: DatabaseHandle | undefined;
  let database: Database | undefined;
  let observability: Observability | undefined;
  let appliedAtStart = 0;
  try {
    // Before any side effect (a database started, migrations applied): bad keys stop the start here.
    const keys = await loadKeySet(config, step);
    handle = await ensureDatabase({ url: config.database.url, dir: config.database.embeddedDir, log: step });
    step(`database: ${redactUrl(handle.url)}${config.database.url ? '' : ' (embedded)'}`);
    await waitForDatabase(handle.url, {
      retries: config.database.startupRetries,
      connectTimeoutMs: config.database.connectTimeoutMs,
      log: (m) => logger.warn(m),
    });
    if (config.database.migrateOnStart) {
      // Under the migration lock, a session advisory lock: never through a transaction-mode pooler.
      const { applied } = await applyMigrations({ databaseUrl: directDatabaseUrl(config.database, handle.url), log: step });
      appliedAtStart = applied.length;
      step(applied.length > 0 ? `migrations: applied ${applied.join(', ')}` : 'migrations: up to date');
    }
    observability = await startObservability(config, logger);
    database = createDatabase(handle.url, config.database, logger, { query: observability?.query });
    await checkPooledConnection(database.pool);
    observability?.watchDatabase(database.pool, MIGRATIONS_TABLE);
    if (shouldSeed(config)) await seed(database.prisma, config, step);
    if (!config.database.url) step(`Prisma Studio on this database: pnpm studio`);
    observability?.migrationsApplied(appliedAtStart);
    const deps = createAppDeps({ config, database, logger, keys, observability, databaseUrl: handle.url });
    const app = await buildApp(deps);
    deps.mailer.start();
    await deps.services.live.start();
    const url = await app.listen({ host: config.host, port: config.port });
    step(`listening on ${url} (tRPC at ${url}/trpc, health at ${url}/healthz)`);
    if (deps.devInbox) step(`development inbox: ${url}${DEV_INBOX_PATH} lists the mails sent, links clickable`);
    await observability?.listen();
    const observed = observability;
    const db = database;
    const dbHandle = handle;
    let closing: Promise<void> | undefined;
    let endDrain: (() => void) | undefined;
    /**
     * A balancer keeps sending new connections until its probes of /readyz fail: closing the
     * listener at once reset them. Fail readiness first and keep serving for the drain delay.
     */
    const drain = async () => {
      deps.lifecycle.startDraining();
      const ms = config.http.shutdownDrainMs;
      if (ms <= 0) return;
      step(`draining for ${ms} ms: /readyz answers 503, requests are still served`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        endDrain = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      endDrain = undefined;
    };
    return {
      app,
      database: db,
      url,
      skipDrain() {
        if (!endDrain) return false;
        endDrain();
        return true;
      },
      close() {
        closing ??= (async () => {
          await drain();
          const deadline = setTimeout(() => {
            logger.warn(`shutdown deadline of ${config.http.shutdownTimeoutMs} ms passed: closing remaining connections`);
            app.server.closeAllConnections();
          }, config.http.shutdownTimeoutMs);
          deadline.unref();
          try {
            await app.close();
          } finally {
            clearTimeout(deadline);
            await stopAppDeps(deps);
            await db.close();
            await observed?.stop();
            if (dbHandle.owned) {
              step('stopping embedded PostgreSQL');
              await dbHandle.stop();
            }
          }
        })();
        return closing;
      },
    };
  } catch (error) {
    await database?.close().catch(() => {});
    await observability?.stop().catch(() => {});
    if (handle?.owned) await handle.stop().catch(() => {});
    throw error;
  }
}
