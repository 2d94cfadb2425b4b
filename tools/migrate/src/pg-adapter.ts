/**
 * A migration-aware driver-adapter factory for Prisma's Wasm schema engine, built on
 * `@prisma/adapter-pg` with the repairs described in docs/decisions/0003-offline-migrations.md:
 *
 * 1. result columns of PostgreSQL's internal `"char"` type (OID 18, e.g. `pg_constraint.contype`),
 *    which adapter-pg cannot map, are reported with the driver-adapter type `Character` (the value is
 *    already a one-letter string). Reporting them as `Text` is not enough: the engine's describer
 *    reads `contype` with a strict char getter and panics on any CHECK or EXCLUDE constraint, and on
 *    PostgreSQL 18 on every NOT NULL column (catalogued there as contype 'n');
 * 2. `executeScript` sends the whole script as ONE simple-protocol query (adapter-pg splits on `;`,
 *    which breaks `$$` bodies and leaves failed scripts half applied);
 * 3. the shadow database really is a separate database (`keel_shadow_<random>`), and disposing of it
 *    ends its pool first, then runs `DROP DATABASE ... WITH (FORCE)`.
 *
 * Every pool has a single connection: the engine takes a session-level advisory lock that it never
 * releases, and ending the pool is what releases it.
 */
import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  ColumnTypeEnum,
  type ConnectionInfo,
  DriverAdapterError,
  type IsolationLevel,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQuery,
  type SqlResultSet,
  type Transaction,
} from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { guardClient } from '../../../server/src/db/connections.js';
import { quoteIdent } from '../../../server/src/db/identifiers.js';

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;
/** Appended to the name of a `"char"` result field, so the adapter wrapper can retype it. */
const CHAR_FIELD_MARKER = '\u0000keel:char';

/**
 * In a pg result (or the array of results of a multi-statement query), presents `"char"` fields as
 * `text` (which adapter-pg maps) and marks their names; `retypeCharColumns` undoes the mark.
 */
function markCharFields(result: unknown): void {
  const results: unknown[] = Array.isArray(result) ? result : [result];
  for (const one of results) {
    if (typeof one !== 'object' || one === null) continue;
    const fields: unknown = (one as { fields?: unknown }).fields;
    if (!Array.isArray(fields)) continue;
    for (const field of fields as Array<{ dataTypeID?: number; name?: string }>) {
      if (field.dataTypeID === PG_CHAR_OID) {
        field.dataTypeID = PG_TEXT_OID;
        field.name = `${field.name ?? ''}${CHAR_FIELD_MARKER}`;
      }
    }
  }
}

/** Gives the marked columns of a result set the `Character` type, and their names back. */
function retypeCharColumns(result: SqlResultSet): SqlResultSet {
  result.columnNames.forEach((name, i) => {
    if (name.endsWith(CHAR_FIELD_MARKER)) {
      result.columnNames[i] = name.slice(0, -CHAR_FIELD_MARKER.length);
      result.columnTypes[i] = ColumnTypeEnum.Character;
    }
  });
  return result;
}

/** A pg client whose query results mark OID 18 columns (see repair 1 above), listened to from birth (db/connections.ts). */
class CharMarkingClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    guardClient(this);
  }
}
{
  type AnyQuery = (this: pg.Client, ...args: unknown[]) => unknown;
  const baseQuery = pg.Client.prototype.query as unknown as AnyQuery;
  const patchedQuery: AnyQuery = function (...args) {
    const last = args.length > 0 ? args[args.length - 1] : undefined;
    if (typeof last === 'function') {
      const callback = last as (err: unknown, res: unknown) => void;
      args[args.length - 1] = (err: unknown, res: unknown) => {
        if (!err) markCharFields(res);
        callback(err, res);
      };
      return baseQuery.apply(this, args);
    }
    const ret = baseQuery.apply(this, args);
    if (ret instanceof Promise) {
      return ret.then((res: unknown) => {
        markCharFields(res);
        return res;
      });
    }
    return ret; // a Submittable (cursor, stream): not used by adapter-pg
  };
  Object.defineProperty(CharMarkingClient.prototype, 'query', {
    value: patchedQuery,
    writable: true,
    configurable: true,
  });
}

/** Converts a pg error into the error shape the engine understands (what adapter-pg does internally). */
function toDriverAdapterError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as Partial<Record<'code' | 'severity' | 'message' | 'detail' | 'column' | 'hint', unknown>>;
  if (typeof e.code === 'string' && typeof e.severity === 'string' && typeof e.message === 'string') {
    return new DriverAdapterError({
      kind: 'postgres',
      code: e.code,
      severity: e.severity,
      message: e.message,
      detail: typeof e.detail === 'string' ? e.detail : undefined,
      column: typeof e.column === 'string' ? e.column : undefined,
      hint: typeof e.hint === 'string' ? e.hint : undefined,
      originalCode: e.code,
      originalMessage: e.message,
    });
  }
  return error;
}

/** `url` with its database name replaced. */
export function urlWithDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Runs one statement on a short-lived connection. */
export async function runAdminStatement(url: string, sql: string): Promise<void> {
  const client = guardClient(new pg.Client({ connectionString: url }));
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

class RepairedTransaction implements Transaction {
  readonly provider = 'postgres' as const;
  readonly adapterName: string;
  readonly options: Transaction['options'];

  constructor(private readonly inner: Transaction) {
    this.adapterName = inner.adapterName;
    this.options = inner.options;
  }

  async queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    return retypeCharColumns(await this.inner.queryRaw(query));
  }

  executeRaw(query: SqlQuery): Promise<number> {
    return this.inner.executeRaw(query);
  }

  commit(): Promise<void> {
    return this.inner.commit();
  }

  rollback(): Promise<void> {
    return this.inner.rollback();
  }

  async createSavepoint(name: string): Promise<void> {
    await this.inner.executeRaw({ sql: `SAVEPOINT ${name}`, args: [], argTypes: [] });
  }

  async rollbackToSavepoint(name: string): Promise<void> {
    await this.inner.executeRaw({ sql: `ROLLBACK TO SAVEPOINT ${name}`, args: [], argTypes: [] });
  }

  async releaseSavepoint(name: string): Promise<void> {
    await this.inner.executeRaw({ sql: `RELEASE SAVEPOINT ${name}`, args: [], argTypes: [] });
  }
}

class RepairedPgAdapter implements SqlDriverAdapter {
  readonly provider = 'postgres' as const;
  readonly adapterName: string;
  private disposed: Promise<void> | undefined;

  constructor(
    private readonly inner: SqlDriverAdapter,
    private readonly pool: pg.Pool,
    private readonly afterDispose: (() => Promise<void>) | undefined,
  ) {
    this.adapterName = inner.adapterName;
  }

  async queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    return retypeCharColumns(await this.inner.queryRaw(query));
  }

  executeRaw(query: SqlQuery): Promise<number> {
    return this.inner.executeRaw(query);
  }

  async startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction> {
    return new RepairedTransaction(await this.inner.startTransaction(isolationLevel));
  }

  getConnectionInfo(): ConnectionInfo {
    return this.inner.getConnectionInfo?.() ?? { supportsRelationJoins: true };
  }

  /** The whole script as one simple-protocol query: PostgreSQL runs it as one implicit transaction. */
  async executeScript(script: string): Promise<void> {
    try {
      await this.pool.query(script);
    } catch (error) {
      throw toDriverAdapterError(error);
    }
  }

  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      try {
        await this.inner.dispose(); // ends the pool (and so the engine's advisory lock)
      } finally {
        await this.afterDispose?.();
      }
    })();
    return this.disposed;
  }
}

/**
 * The factory handed to `SchemaEngine.new`. `closeAll()` disposes of whatever the engine left open
 * (pools, shadow databases); call it when done with the engine.
 */
export class RepairedPgMigrationFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres' as const;
  readonly adapterName = '@prisma/adapter-pg';
  private readonly open = new Set<RepairedPgAdapter>();

  constructor(
    private readonly databaseUrl: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  private async open1(url: string, afterDispose?: () => Promise<void>): Promise<RepairedPgAdapter> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 1,
      idleTimeoutMillis: 0, // never drop the connection that holds the engine's advisory lock
      allowExitOnIdle: true,
      Client: CharMarkingClient,
    });
    pool.on('error', () => {}); // an idle connection dying surfaces on the next query
    const inner = await new PrismaPg(pool, { disposeExternalPool: true }).connect();
    const adapter: RepairedPgAdapter = new RepairedPgAdapter(inner, pool, async () => {
      this.open.delete(adapter);
      await afterDispose?.();
    });
    this.open.add(adapter);
    return adapter;
  }

  connect(): Promise<SqlDriverAdapter> {
    return this.open1(this.databaseUrl);
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = `keel_shadow_${randomBytes(8).toString('hex')}`;
    this.log(`creating shadow database ${name}`);
    await runAdminStatement(this.databaseUrl, `CREATE DATABASE ${quoteIdent(name)}`);
    try {
      return await this.open1(urlWithDatabase(this.databaseUrl, name), async () => {
        this.log(`dropping shadow database ${name}`);
        await runAdminStatement(this.databaseUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      });
    } catch (error) {
      await runAdminStatement(this.databaseUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      throw error;
    }
  }

  /** Disposes of every adapter still open: main pools first, shadow databases dropped after their pools end. */
  async closeAll(): Promise<void> {
    const results = await Promise.allSettled([...this.open].map((a) => a.dispose()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  }
}
