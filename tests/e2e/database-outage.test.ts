/**
 * The database goes away and comes back while the server keeps running. A dedicated embedded
 * PostgreSQL is really stopped and started again; because every start picks a new port, the server
 * reaches it through a small TCP relay on one fixed port (as a server reaches its database at one
 * address). The relay also plays a database host that accepts connections and never answers.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../server/src/db/client.js';
import { type DatabaseHandle, ensureDatabase } from '../../server/src/db/embedded.js';
import { applyMigrations } from '../../server/src/db/migrations/runner.js';
import { createAppDeps, stopAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import { generateJwkSet, importKeySet } from '../../server/src/modules/auth/keys.js';
import { superjsonInput, testRouterFor } from '../http/fixtures.js';
import { testConfig } from '../support/database.js';
import { startRelay } from '../support/faults.js';
import { startTestServer } from '../support/http.js';

const CONNECT_TIMEOUT_MS = 1_000;

const root = mkdtempSync(join(tmpdir(), 'keel-outage-'));
// PostgreSQL runs as the `postgres` user (we are root here): it must be able to enter the directory.
chmodSync(root, 0o755);
const dataDir = join(root, 'postgres');
const pgLog: string[] = [];
let postgres: DatabaseHandle = await ensureDatabase({ dir: dataDir, log: (m) => pgLog.push(m) });
await applyMigrations({ databaseUrl: postgres.url, log: () => {} });
const relay = await startRelay(Number(new URL(postgres.url).port));
const relayedUrl = new URL(postgres.url);
relayedUrl.port = String(relay.port);

const config = testConfig(relayedUrl.toString(), { DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
const logger = createLogger(config);
const database = createDatabase(relayedUrl.toString(), config.database, logger);
const keys = await importKeySet(JSON.stringify(await generateJwkSet('EdDSA')));
const deps = createAppDeps({ config, database, logger, keys });
afterAll(async () => {
  await stopAppDeps(deps);
  await database.close();
  await relay.close();
  await postgres.stop();
  rmSync(root, { recursive: true, force: true });
});
const server = await startTestServer(deps, { router: testRouterFor(database.prisma) });

/** GET with a deadline: a hang fails the test instead of waiting for the test timeout. */
const get = (path: string, deadlineMs: number) => fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(deadlineMs) });

async function userCount(
  deadlineMs: number,
): Promise<{ status: number; count?: number; error?: { message: string; data: { code: string } } }> {
  const response = await get('/trpc/userCount', deadlineMs);
  const body = (await response.json()) as {
    result?: { data: Parameters<typeof superjson.deserialize>[0] };
    error?: Parameters<typeof superjson.deserialize>[0];
  };
  if (body.result) return { status: response.status, count: superjson.deserialize<number>(body.result.data) };
  return { status: response.status, error: superjson.deserialize(body.error as Parameters<typeof superjson.deserialize>[0]) };
}

async function expectUnavailable() {
  const ready = await get('/readyz', 2_000);
  expect(ready.status).toBe(503);
  expect(await ready.json()).toEqual({ status: 'unavailable', database: 'down' });

  const failed = await userCount(CONNECT_TIMEOUT_MS + 2_000);
  expect(failed.status).toBe(503);
  expect(failed.error?.data.code).toBe('SERVICE_UNAVAILABLE');
  expect(failed.error?.message).toBe('The database is unavailable. Retry later.');
}

describe('database outage', () => {
  it('serves /readyz 200 and database queries while the database is up', async () => {
    const created = await fetch(`${server.url}/trpc/createUser`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: superjsonInput({ email: 'survivor@example.com' }),
    });
    expect(created.status).toBe(200);
    expect((await get('/readyz', 2_000)).status).toBe(200);
    expect(await userCount(5_000)).toEqual({ status: 200, count: 1 });
  });

  it('database stopped: /readyz answers 503 within 2 s and a query fails fast with SERVICE_UNAVAILABLE', async () => {
    await postgres.stop();
    await relay.set({ kind: 'refuse' });
    await expectUnavailable();
  });

  it('database host accepting but never answering: both fail within the connect timeout instead of hanging', async () => {
    await relay.set({ kind: 'blackhole' });
    await expectUnavailable();
  });

  it('database started again: /readyz and queries recover without restarting the server, data intact', async () => {
    postgres = await ensureDatabase({ dir: dataDir, log: (m) => pgLog.push(m) });
    await relay.set({ kind: 'forward', port: Number(new URL(postgres.url).port) });
    const ready = await get('/readyz', 2_000);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: 'up' });
    expect(await userCount(5_000)).toEqual({ status: 200, count: 1 });
  });
});
