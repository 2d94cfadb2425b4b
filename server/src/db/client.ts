import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { Config } from '../config.js';
import { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
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
 * statement on the server (statement_timeout) and the client-side wait for a reply
 * (query_timeout, for a server that vanished mid-query), so no request can hang on the database.
 */
export function createDatabase(url: string, options: Config['database'], log: Logger): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: options.idleTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 2_000,
    application_name: options.applicationName,
    keepAlive: true,
  });
  // An idle connection that dies (database restarted) emits here; pg replaces it on next use.
  pool.on('error', (err) => log.warn({ err: { message: err.message } }, 'database connection lost; it will be replaced'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });

  let closed: Promise<void> | undefined;
  return {
    prisma,
    pool,
    sql: new Sql(pool, options.preparedStatements),
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
