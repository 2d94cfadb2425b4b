import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { type Config, STATEMENT_REPLY_MARGIN_MS } from '../config.js';
import { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { QueryHook } from '../observability/hooks.js';
import { KeelPool, pooledClientClass } from './connections.js';
import { Sql } from './sql.js';

export type { PrismaClient };
/** What services receive: the client itself or an interactive transaction's client. */
export type Db = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

export interface Database {
  prisma: PrismaClient;
  pool: pg.Pool;
  /** Typed SQL on the same pool, for the few hot reads that bypass Prisma (see sql.ts). */
  sql: Sql;
  /** True when the database answers `select 1` within `timeoutMs`. Never throws. */
  ping(timeoutMs: number): Promise<boolean>;
  /** Ends the Prisma client and the pool; safe to call twice. */
  close(): Promise<void>;
}

/**
 * One pool per process, shared by Prisma (through the pg driver adapter) and the few raw
 * queries Keel makes. Every wait is bounded: acquiring a connection (connect timeout), a
 * statement on the server (statement_timeout), the client-side wait for a reply (for a server
 * that vanished mid-query), and an interactive transaction's wait and run time (from config, see
 * `transactionOptions`), so no request can hang on the database. Every connection survives its
 * server going away (db/connections.ts): the requests on it fail, the pool opens a new one.
 */
export function createDatabase(
  url: string,
  options: Config['database'],
  log: Logger,
  observe: { query?: QueryHook | undefined } = {},
): Database {
  const availability = availabilityLog(log);
  const pool = new KeelPool(
    {
      connectionString: url,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs,
      idleTimeoutMillis: options.idleTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      application_name: options.applicationName,
      keepAlive: true,
      Client: pooledClientClass({
        readTimeoutMs: options.statementTimeoutMs + STATEMENT_REPLY_MARGIN_MS,
        onLost: (error) => log.warn({ reason: describe(error) }, 'database connection lost; the pool replaces it'),
        observeQuery: observe.query,
      }),
    },
    (error, failure) => {
      if (failure !== 'pool-timeout') availability.down(error);
    },
  );
  // pg-pool re-emits an idle connection's death here; the connection's own listener has logged it.
  pool.on('error', () => {});
  pool.on('connect', availability.up);
  const prisma = new PrismaClient({
    adapter: new PrismaPg(pool),
    // Set once for every $transaction: Prisma's defaults (2 s wait, 5 s run) were shorter than the
    // pool's connect timeout and the statement timeout, so they failed first, and as a 500.
    transactionOptions: { maxWait: options.transactionMaxWaitMs, timeout: options.transactionTimeoutMs },
  });

  let closed: Promise<void> | undefined;
  return {
    prisma,
    pool,
    sql: new Sql(pool, options.preparedStatements, () =>
      log.warn(
        'named prepared statements do not survive on these connections (a transaction-mode pooler such as PgBouncer < 1.21?): sending them unnamed from now on; set DATABASE_PREPARED_STATEMENTS=false',
      ),
    ),
    async ping(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const query = pool.query('select 1').then(
        () => true,
        () => false,
      );
      try {
        return await Promise.race([query, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      closed ??= (async () => {
        await prisma.$disconnect();
        await pool.end();
      })();
      return closed;
    },
  };
}

/** What went wrong, for a log line: the SQLSTATE or socket code when there is one, and pg's words. */
function describe(error: Error): { code?: string; message: string; cause?: string } {
  const code = (error as { code?: unknown }).code;
  return {
    ...(typeof code === 'string' ? { code } : {}),
    message: error.message,
    ...(error.cause instanceof Error ? { cause: error.cause.message } : {}),
  };
}

/**
 * One log line when the database stops accepting connections and one when it accepts them again,
 * instead of one per failed request (each of those has its own request line with its status).
 */
function availabilityLog(log: Logger) {
  let available = true;
  return {
    down(error: Error) {
      if (!available) return;
      available = false;
      log.warn({ reason: describe(error) }, 'database unavailable: requests that need it answer 503 until it is back');
    },
    up() {
      if (available) return;
      available = true;
      log.info('database available again');
    },
  };
}
