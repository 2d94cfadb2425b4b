/**
 * Typed SQL for the few hot reads where Prisma's per-query pipeline costs more than the query
 * itself (docs/decisions/0011-request-path.md). The rule, which the tests enforce:
 *
 * - Prisma stays the data layer and `schema.prisma` the source of truth; a query goes here only
 *   when `pnpm bench` shows the gain, and only for reads (writes keep Prisma's checks and errors).
 * - Each query sits beside its module's service (`modules/<name>/queries.ts`), names its columns
 *   with the aliases of the domain type (`owner_id AS "ownerId"`), and declares its row as a zod
 *   schema: the row type comes from it, and tests/db/queries.test.ts runs every query of
 *   `server/src/db/queries.ts` against the migrated schema, checks each row with that schema, and
 *   compares the answers with the Prisma query they replace.
 * - Named (prepared) statements by default: PostgreSQL parses and plans each once per connection.
 *   A transaction-mode pooler older than PgBouncer 1.21 cannot carry them across transactions:
 *   `DATABASE_PREPARED_STATEMENTS=false` sends the same SQL unnamed. Left on by mistake behind
 *   one, the first query that lands on a server connection that never prepared its statement
 *   (26000) or already has it from another client (42P05) turns named statements off for the
 *   process, with one warning, and is sent again unnamed: reads only, so the retry is safe.
 */
import type pg from 'pg';
import type { z } from 'zod';
import { fastTypes } from './timestamps.js';

export interface Query<Input, Row> {
  /** Unique among queries: the prepared statement's name on every connection. */
  readonly name: string;
  readonly text: string;
  /** The row's shape: its type for callers, and what the tests check real rows against. */
  readonly row: z.ZodType<Row, unknown>;
  /** The positional parameters ($1, $2, ...) from a typed input. */
  values(input: Input): unknown[];
}

export const defineQuery = <Input, Row>(query: {
  name: string;
  text: string;
  row: z.ZodType<Row, unknown>;
  values: (input: Input) => unknown[];
}): Query<Input, Row> => query;

/** PostgreSQL's answer when a table changed under a prepared statement (a migration, mid-run). */
const CACHED_PLAN_CHANGED = '0A000';
/**
 * What a transaction-mode pooler's server connections answer to a statement prepared on another
 * one (does not exist) or to a second client preparing the same name (already exists).
 */
const POOLED_STATEMENT = new Set(['26000', '42P05']);

export class Sql {
  /** Statements that a migration invalidated on some connection: sent unnamed from then on. */
  private readonly stale = new Set<string>();

  constructor(
    private readonly pool: pg.Pool,
    private prepared: boolean,
    /** Called once if named statements turn out not to survive (a transaction-mode pooler). */
    private readonly onPooler: () => void = () => {},
  ) {}

  /** The query's rows. pg parses columns by type (timestamptz to Date, int4 to number, ...). */
  async rows<Input, Row>(query: Query<Input, Row>, input: Input): Promise<Row[]> {
    const values = query.values(input);
    const named = this.prepared && !this.stale.has(query.name);
    try {
      const result = await this.pool.query(
        named ? { name: query.name, text: query.text, values, types: fastTypes } : { text: query.text, values, types: fastTypes },
      );
      return result.rows as Row[];
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (!named || typeof code !== 'string') throw error;
      if (POOLED_STATEMENT.has(code)) {
        if (this.prepared) this.onPooler();
        this.prepared = false;
      } else if (code === CACHED_PLAN_CHANGED) {
        // A connection prepared the statement before a migration changed its table: PostgreSQL
        // refuses to run it ("cached plan must not change result type"). Unnamed statements are
        // planned afresh, so this process keeps answering; a restart prepares them again.
        this.stale.add(query.name);
      } else {
        throw error;
      }
      const result = await this.pool.query({ text: query.text, values, types: fastTypes });
      return result.rows as Row[];
    }
  }
}
