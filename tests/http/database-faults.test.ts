/**
 * Transactions under contention, over real HTTP against real PostgreSQL: a row lock held by
 * another session, a pool with no free connection, 100 parallel `tasks.create`. No answer is a
 * 500: a transaction that cannot start or finish in its time is 503 with Retry-After, a statement
 * that times out is 504, and Prisma's transaction wait and timeout follow the pool's connect
 * timeout and the statement timeout unless configured otherwise.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../server/src/db/client.js';
import { createAppDeps, stopAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import { signIn } from '../support/caller.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { mutate } from '../support/trpc-http.js';

const db = await useTestDatabase();

/** A server of its own (pool, Prisma client and all) with `overrides` in its config. */
async function serverWith(overrides: Record<string, string>) {
  const config = testConfig(db.url, { RATE_LIMIT_ENABLED: 'false', ...overrides });
  const logger = createLogger(config);
  const database = createDatabase(db.url, config.database, logger);
  const deps = createAppDeps({ config, database, logger, keys: db.keys });
  afterAll(async () => {
    await stopAppDeps(deps);
    await database.close();
  });
  const server = await startTestServer(deps);
  const user = await createUser(deps);
  const auth = { authorization: `Bearer ${(await signIn(deps, user)).accessToken}` };
  const project = await mutate<{ id: string }>(server.url, 'projects.create', { name: 'Contended' }, auth);
  const projectId = project.data?.id ?? '';
  const createTask = (title: string) => mutate<{ id: string }>(server.url, 'tasks.create', { projectId, title }, auth);
  return { server, database, projectId, auth, createTask };
}

/** Another session holds the project's row lock (as a long transaction would) until `release()`. */
async function lockProject(projectId: string) {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => {});
  await client.connect();
  await client.query('begin');
  await client.query('select 1 from projects where id = $1 for update', [projectId]);
  return {
    async release() {
      await client.query('commit');
      await client.end();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('transactions that wait', () => {
  it('100 parallel tasks.create while the project is locked for 2.5 s, 2 connections: only 200 and 503 with Retry-After, and exactly the 200s wrote', async () => {
    // Connect timeout 3 s (the default) and maxWait following it: Prisma's own 2 s gave up first, as a 500.
    const { projectId, createTask, database } = await serverWith({ DATABASE_POOL_SIZE: '2', DATABASE_CONNECT_TIMEOUT_MS: '3000' });
    const lock = await lockProject(projectId);
    const answers = Array.from({ length: 100 }, (_, i) => createTask(`parallel ${i}`));
    await sleep(2_500);
    await lock.release();
    const settled = await Promise.all(answers);
    const byStatus = new Map<number, number>();
    for (const answer of settled) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
    expect(
      [...byStatus.keys()].filter((s) => s !== 200 && s !== 503),
      JSON.stringify(Object.fromEntries(byStatus)),
    ).toEqual([]);
    expect(byStatus.get(200) ?? 0).toBeGreaterThan(0);
    for (const answer of settled.filter((a) => a.status === 503)) {
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.error?.data).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: 1 });
      expect(answer.error?.message).toBe('The database is busy. Retry later.');
    }
    expect(await database.prisma.task.count({ where: { projectId } })).toBe(byStatus.get(200));
  }, 30_000);

  it('a row lock held 5.5 s under the default timeouts: the create waits and succeeds (Prisma expired it at 5 s, a 500)', async () => {
    const { projectId, createTask } = await serverWith({});
    const lock = await lockProject(projectId);
    const answer = createTask('patient');
    await sleep(5_500);
    await lock.release();
    expect((await answer).status).toBe(200);
  }, 20_000);

  it('a row lock held past the statement timeout: 504 TIMEOUT, no Retry-After', async () => {
    const { projectId, createTask } = await serverWith({ DATABASE_STATEMENT_TIMEOUT_MS: '500' });
    const lock = await lockProject(projectId);
    try {
      const answer = await createTask('blocked');
      expect(answer.status).toBe(504);
      expect(answer.error?.data.code).toBe('TIMEOUT');
      expect(answer.headers.get('retry-after')).toBeNull();
    } finally {
      await lock.release();
    }
  });
});

describe('transaction time limits from config', () => {
  it('no connection within DATABASE_TRANSACTION_MAX_WAIT_MS (Prisma P2028): 503 busy with Retry-After, over tRPC and REST', async () => {
    const { projectId, createTask, database, server, auth } = await serverWith({
      DATABASE_POOL_SIZE: '1',
      DATABASE_TRANSACTION_MAX_WAIT_MS: '300',
    });
    const held = await database.pool.connect();
    try {
      const answer = await createTask('no room');
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.error?.message).toBe('The database is busy. Retry later.');
      const rest = await fetch(`${server.url}/api/projects/${projectId}/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ title: 'no room either' }),
      });
      expect(rest.status).toBe(503);
      expect(rest.headers.get('retry-after')).toBe('1');
      expect(await rest.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'The database is busy. Retry later.' });
    } finally {
      held.release();
    }
  });

  it('a transaction that outlives DATABASE_TRANSACTION_TIMEOUT_MS (expired, P2028): 503, not 500, and nothing written', async () => {
    const { projectId, createTask, database } = await serverWith({ DATABASE_TRANSACTION_TIMEOUT_MS: '300' });
    const lock = await lockProject(projectId);
    const answer = createTask('too slow');
    await sleep(800);
    await lock.release();
    const settled = await answer;
    expect(settled.status).toBe(503);
    expect(settled.error?.data.code).toBe('SERVICE_UNAVAILABLE');
    expect(await database.prisma.task.count({ where: { projectId } })).toBe(0);
  });
});
