/**
 * What Keel's pool needs from a connection pooler in front of PostgreSQL (PgBouncer in
 * transaction mode; see docs/decisions/0018-scale-out.md). The rule for all of Keel's SQL: every
 * piece of session state lives inside one transaction (`pg_advisory_xact_lock`, `SET LOCAL`), or
 * goes through DIRECT_DATABASE_URL (migrations, LISTEN); the typed SQL's named statements are
 * off (DATABASE_PREPARED_STATEMENTS=false) or turn themselves off (db/sql.ts).
 */
import type pg from 'pg';

/** PgBouncer's refusal of a startup parameter it does not know (the pg driver sends statement_timeout). */
const UNSUPPORTED_STARTUP_PARAMETER = /unsupported startup parameter: (\S+)/;

export class PoolerConfigError extends Error {
  override readonly name = 'PoolerConfigError';
}

/**
 * One query through the pool at start-up, so a pooler that refuses Keel's connections stops the
 * start with what to change, rather than every request failing with a 503. Any other failure
 * (the database went away since the start-up wait) is left to the pool's own handling.
 */
export async function checkPooledConnection(pool: pg.Pool): Promise<void> {
  try {
    await pool.query('select 1');
  } catch (error) {
    const parameter = UNSUPPORTED_STARTUP_PARAMETER.exec(error instanceof Error ? error.message : '')?.[1];
    if (parameter === undefined) return;
    throw new PoolerConfigError(
      `DATABASE_URL goes through a pooler (PgBouncer) that refuses the startup parameter ${parameter}: ` +
        `add it to ignore_startup_parameters in pgbouncer.ini and set the statement timeout on the pooled connections instead ` +
        `(connect_query='SET statement_timeout = ...' on the database line; see deploy/pgbouncer.ini)`,
    );
  }
}

/**
 * The pool as a store client that sends every statement unnamed: for libraries that name their
 * statements (rate-limiter-flexible does), whose named statements a transaction-mode pooler
 * older than PgBouncer 1.21 cannot carry ("prepared statement ... already exists"). Their
 * statements are small and cheap to plan; one code path behind a pooler or not.
 */
export function unnamedStatements(pool: pg.Pool): { query(query: { text: string; values?: unknown[] }): Promise<pg.QueryResult> } {
  return { query: ({ text, values }) => pool.query({ text, values }) };
}
