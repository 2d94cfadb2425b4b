/**
 * Keel's pool and dedicated connections when PostgreSQL ends them or stops answering, against the
 * run's real PostgreSQL (and a TCP relay in front of it for the faults a server cannot be asked to
 * make): no failure reaches the process, every failure comes out as an error that is classified by
 * its class or code, and the pool drops a dead connection instead of handing it out again.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../server/src/db/client.js';
import { classifyDatabaseError, DatabaseConnectionError } from '../../server/src/db/faults.js';
import { withMigrationLock } from '../../server/src/db/migrations/runner.js';
import { createLogger } from '../../server/src/logger.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { startRelay } from '../support/faults.js';
import { captureLogs } from '../support/log-capture.js';
import { REPO_ROOT } from '../support/process.js';

const db = await useTestDatabase();
const relay = await startRelay(Number(new URL(db.url).port));
const relayedUrl = new URL(db.url);
relayedUrl.port = String(relay.port);
afterAll(() => relay.close());

/** Runs `sql` on a connection of its own (the test's admin session). */
async function admin<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Resolves when the client's connection has closed (`events.once` would reject on the `error` that comes first). */
const closed = (client: pg.ClientBase) => new Promise<void>((resolve) => client.once('end', () => resolve()));
const terminate = (pid: number) => admin('select pg_terminate_backend($1)', [pid]);
const backendPid = async (client: pg.ClientBase) =>
  (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;

/** Uncaught exceptions while a test runs: an `error` event nobody listened to would land here. */
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});
afterEach(() => {
  process.off('uncaughtException', onUncaught);
});

const databases: Database[] = [];
afterAll(async () => {
  for (const database of databases) await database.close().catch(() => {});
});

/** A Keel database (pool + Prisma) at `url`, logging into a capture. */
function keelDatabase(url: string, overrides: Record<string, string> = {}) {
  const logs = captureLogs();
  const config = testConfig(url, { LOG_LEVEL: 'debug', ...overrides });
  const database = createDatabase(url, config.database, createLogger(config, logs.stream));
  databases.push(database);
  return { database, logs };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe("Keel's pool when the server ends its connections", () => {
  it('a checked-out connection terminated while idle does not reach the process; the pool replaces it', async () => {
    const { database, logs } = keelDatabase(db.url);
    const client = await database.pool.connect();
    const pid = await backendPid(client);
    const ended = closed(client);
    await terminate(pid);
    await ended; // pg has emitted `error` on the checked-out client by now: with no listener, an uncaught exception
    expect(uncaught).toEqual([]);

    const error = await rejection(client.query('select 1'));
    expect(error).toBeInstanceOf(DatabaseConnectionError);
    expect((error as DatabaseConnectionError).failure).toBe('lost');
    expect(classifyDatabaseError(error)).toBe('unavailable');

    client.release(); // as adapter-pg releases a transaction's client: without an error
    const { rows } = await database.pool.query<{ pid: number }>('select pg_backend_pid() as pid');
    expect(rows[0]?.pid).not.toBe(pid);
    const lost = await logs.waitFor((l) => l.msg === 'database connection lost; the pool replaces it');
    expect(lost).toMatchObject({ level: 'warn', reason: { code: '57P01' } });
  });

  it('a query in flight on a terminated connection fails with 57P01, classified unavailable, and nothing reaches the process', async () => {
    const { database } = keelDatabase(db.url);
    const client = await database.pool.connect();
    const pid = await backendPid(client);
    const ended = closed(client);
    const sleeping = rejection(client.query('select pg_sleep(5)'));
    await terminate(pid);
    const error = await sleeping;
    expect((error as { code?: string }).code).toBe('57P01');
    expect(classifyDatabaseError(error)).toBe('unavailable');
    await ended;
    client.release();
    expect(uncaught).toEqual([]);
    expect((await database.pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('a connection terminated inside a Prisma transaction fails that transaction as unavailable; the next one runs', async () => {
    const { database } = keelDatabase(db.url);
    const error = await rejection(
      database.prisma.$transaction(async (tx) => {
        const [row] = await tx.$queryRaw<Array<{ pid: number }>>`select pg_backend_pid() as pid`;
        await terminate(row?.pid ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return tx.user.count();
      }),
    );
    expect(classifyDatabaseError(error)).toBe('unavailable');
    expect(uncaught).toEqual([]);
    expect(await database.prisma.$transaction((tx) => tx.user.count())).toBeGreaterThanOrEqual(0);
  });
});

describe("Keel's pool when no connection can be had", () => {
  afterEach(() => relay.set({ kind: 'forward', port: Number(new URL(db.url).port) }));

  it('refused: the socket error keeps its code and is unavailable; one "database unavailable" line, then one "available again"', async () => {
    const { database, logs } = keelDatabase(relayedUrl.toString());
    await relay.set({ kind: 'refuse' });
    for (let i = 0; i < 3; i++) {
      const error = await rejection(database.pool.query('select 1'));
      expect((error as { code?: string }).code).toBe('ECONNREFUSED');
      expect(classifyDatabaseError(error)).toBe('unavailable');
    }
    const unavailable = logs.lines().filter((l) => l.msg.startsWith('database unavailable'));
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]).toMatchObject({ level: 'warn', reason: { code: 'ECONNREFUSED' } });
    await relay.set({ kind: 'forward', port: Number(new URL(db.url).port) });
    await database.pool.query('select 1');
    await logs.waitFor((l) => l.msg === 'database available again');
  });

  it('a host that accepts and never answers: pg\'s code-less connect timeout becomes DatabaseConnectionError "connect"', async () => {
    const { database } = keelDatabase(relayedUrl.toString(), { DATABASE_CONNECT_TIMEOUT_MS: '300' });
    await relay.set({ kind: 'blackhole' });
    const error = await rejection(database.prisma.user.count());
    expect(error).toBeInstanceOf(DatabaseConnectionError);
    expect((error as DatabaseConnectionError).failure).toBe('connect');
    expect(classifyDatabaseError(error)).toBe('unavailable');
  });

  it('every connection busy for the whole connect timeout: DatabaseConnectionError "pool-timeout", classified busy', async () => {
    const { database } = keelDatabase(db.url, { DATABASE_POOL_SIZE: '1', DATABASE_CONNECT_TIMEOUT_MS: '200' });
    const held = await database.pool.connect();
    try {
      const error = await rejection(database.pool.query('select 1'));
      expect((error as DatabaseConnectionError).failure).toBe('pool-timeout');
      expect(classifyDatabaseError(error)).toBe('busy');
    } finally {
      held.release();
    }
  });
});

describe("Keel's pool when the server goes silent mid-query", () => {
  it('the query fails as "no-reply" (a timeout) after statement timeout + 2 s, and the pool drops the connection instead of reusing it', async () => {
    const { database, logs } = keelDatabase(relayedUrl.toString(), { DATABASE_STATEMENT_TIMEOUT_MS: '200' });
    const client = await database.pool.connect();
    await client.query('select 1');
    await relay.set({ kind: 'freeze' });
    try {
      const error = await rejection(client.query('select 1'));
      expect(error).toBeInstanceOf(DatabaseConnectionError);
      expect((error as DatabaseConnectionError).failure).toBe('no-reply');
      expect(classifyDatabaseError(error)).toBe('timeout');
      client.release(); // without an error, as adapter-pg does after a transaction's rollback
      expect(database.pool.idleCount).toBe(0);
      expect(database.pool.totalCount).toBe(0);
      const lost = await logs.waitFor((l) => l.msg === 'database connection lost; the pool replaces it');
      expect(lost.reason).toMatchObject({ message: 'the database did not reply in time; the connection was closed' });
    } finally {
      await relay.set({ kind: 'forward', port: Number(new URL(db.url).port) });
    }
    expect((await database.pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    expect(uncaught).toEqual([]);
  }, 15_000);
});

describe('dedicated connections', () => {
  it("the migration lock's connection terminated while it holds the lock: the run fails with an error, the process does not", async () => {
    const error = await rejection(
      withMigrationLock({ databaseUrl: db.url }, async (client) => {
        const pid = await backendPid(client);
        const ended = closed(client);
        await terminate(pid);
        await ended;
        await client.query('select 1');
      }),
    );
    expect(uncaught).toEqual([]);
    expect(error).toBeInstanceOf(Error);
  });

  it('no pg.Client is created in server/src without guardClient (source check: a new one would lack its error listener)', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return entry.name === 'generated' ? [] : files(path);
        return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
      });
    const unguarded = files(join(REPO_ROOT, 'server/src')).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.includes('new pg.Client(') && !line.includes('guardClient(new pg.Client('))
        .map((line) => `${file}: ${line.trim()}`),
    );
    expect(unguarded).toEqual([]);
  });
});
