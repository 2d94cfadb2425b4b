/**
 * The server process against a PostgreSQL that goes away under load: sessions terminated by an
 * administrator, a host that goes silent, a fast shutdown, an immediate shutdown, and a start again. A real `node main.ts`
 * child serves 8 clients of reads and writes (bounded in count and time) through a relay that
 * keeps the database's address stable. The process must stay up, answer 503 (never 500) while the
 * database is away, follow it on /readyz, and serve again within 5 s of its return.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import superjson from 'superjson';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../server/src/db/embedded.js';
import { eventually, type LoadSummary, type StopMode, startLoad, startOwnedCluster } from '../support/faults.js';
import { type LogLine, spawnServer, stopAllProcesses, waitUntilListening, waitUntilReady } from '../support/process.js';
import { decodeAnswer, mutate } from '../support/trpc-http.js';

const cluster = await startOwnedCluster();
const workDir = mkdtempSync(join(tmpdir(), 'keel-db-faults-'));
afterAll(async () => {
  await stopAllProcesses();
  await cluster.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

const port = await freePort();
const server = spawnServer({
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  PORT: String(port),
  DATABASE_URL: cluster.relayedUrl,
  DATABASE_CONNECT_TIMEOUT_MS: '1000',
  // A query with no reply is given up after this + 2 s (the black-hole scenario waits that long).
  DATABASE_STATEMENT_TIMEOUT_MS: '1000',
  DATABASE_POOL_SIZE: '5',
  RATE_LIMIT_ENABLED: 'false',
  JWT_KEYS_FILE: join(workDir, 'jwt-keys.json'),
});
const base = await waitUntilListening(server);

const registered = await mutate(base, 'auth.register', { email: 'faults@example.test', password: 'a sturdy passphrase' });
const auth = { authorization: `Bearer ${registered.data?.accessToken ?? ''}` };
const project = await mutate<{ id: string }>(base, 'projects.create', { name: 'Under fire' }, auth);
const projectId = project.data?.id ?? '';

/** One call of the load: a write (a task, in a transaction) or a read (a page of tasks), in turn. */
function call(client: number, n: number): Promise<Response> {
  const signal = AbortSignal.timeout(15_000);
  if (n % 2 === 0) {
    return fetch(`${base}/trpc/tasks.create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(superjson.serialize({ projectId, title: `task ${client}-${n}` })),
      signal,
    });
  }
  const input = encodeURIComponent(JSON.stringify(superjson.serialize({ projectId, limit: 5 })));
  return fetch(`${base}/trpc/tasks.list?input=${input}`, { headers: auth, signal });
}

const CLIENTS = 8;
const startFaultLoad = () => startLoad({ clients: CLIENTS, maxMs: 30_000, request: call });

/** Waits until `count` more answers were seen: the load is really running across the fault. */
async function answered(load: ReturnType<typeof startFaultLoad>, count: number): Promise<void> {
  const target = load.snapshot().requests + count;
  expect(await eventually(async () => load.snapshot().requests >= target, 60_000, 20)).toBe(true);
}

/** What every scenario demands of the answers: only 200, 503 and 504, and 503s that say when to retry. */
function expectNoServerErrors(summary: LoadSummary): void {
  const statuses = Object.fromEntries(summary.byStatus);
  expect(summary.transportErrors, 'requests that got no HTTP answer').toEqual([]);
  for (const status of summary.byStatus.keys()) {
    expect([200, 503, 504], `status ${status} among ${JSON.stringify(statuses)}: ${summary.samples.get(status) ?? ''}`).toContain(status);
  }
}

function expectAlive(): void {
  expect(server.hasExited(), `the server exited:\n${server.output().split('\n').slice(-20).join('\n')}`).toBe(false);
  expect(server.logs().filter((l) => l.level === 'fatal')).toEqual([]);
}

/** The server's log lines with this message, from the `since`-th line on. */
const logged = (msg: string, since = 0): LogLine[] =>
  server
    .logs()
    .slice(since)
    .filter((l) => l.msg === msg);

/**
 * How long recovery may take before the test gives up: a backstop, not a budget (how fast Keel
 * recovers is measured by bench scripts, not asserted by tests).
 */
const RECOVERY_BACKSTOP_MS = 60_000;

async function ready(): Promise<number> {
  return (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(30_000) })).status;
}

/** Both a write and a read succeed. */
async function serves(): Promise<boolean> {
  const [write, read] = [await call(0, 0), await call(0, 1)];
  return write.status === 200 && read.status === 200;
}

/**
 * A read while the database is away: 503 SERVICE_UNAVAILABLE with Retry-After. "busy" when every
 * pooled connection is still stuck on the silent host (the pool cannot tell that from load).
 */
async function expectUnavailable(message = /^The database is unavailable\. Retry later\.$/): Promise<void> {
  const answer = await decodeAnswer(await call(0, 1));
  expect(answer.status).toBe(503);
  expect(answer.headers.get('retry-after')).toBe('1');
  expect(answer.error?.data.code).toBe('SERVICE_UNAVAILABLE');
  expect(answer.error?.message).toMatch(message);
  expect(await ready()).toBe(503);
}

// A scenario that failed half-way must not leave the next one without a database.
afterEach(async () => {
  if (!cluster.running) await cluster.start();
});

describe('the server process while PostgreSQL ends its connections, under 8 clients of reads and writes', () => {
  it('is set up: the load is answered 200 and /readyz says ready', async () => {
    expect(registered.status).toBe(200);
    expect(project.status).toBe(200);
    expect(await serves()).toBe(true);
    await waitUntilReady(base);
  });

  it("pg_terminate_backend on the server's connections, round after round for 3 s: the process stays up, no 500, the pool replaces them", async () => {
    const load = startFaultLoad();
    await answered(load, 40);
    // Connections are killed at every stage: idle, mid-query, mid-transaction, just opened.
    let rounds = 0;
    let terminated = 0;
    for (const until = Date.now() + 3_000; Date.now() < until; rounds++) terminated += await cluster.terminate('keel');
    await answered(load, 20);
    const summary = await load.stop();
    expectAlive();
    expectNoServerErrors(summary);
    expect(terminated).toBeGreaterThan(rounds / 2);
    // What an operator sees: one warning per connection lost, naming the SQLSTATE.
    expect(logged('database connection lost; the pool replaces it').some((l) => (l.reason as { code?: string }).code === '57P01')).toBe(
      true,
    );
    expect(await eventually(serves, RECOVERY_BACKSTOP_MS)).toBe(true);
    await waitUntilReady(base);
  });

  it('the database host goes silent mid-conversation (no reset, no reply): 504 for queries in flight, 503 for new ones, no 500; serving again once it returns', async () => {
    const load = startFaultLoad();
    await answered(load, 40);
    await cluster.relay.set({ kind: 'freeze' });
    // Past the read timeout (statement timeout + 2 s) every connection has been given up.
    await answered(load, 20);
    expectAlive();
    await expectUnavailable(/^The database is (unavailable|busy)\. Retry later\.$/);
    await cluster.relay.set({ kind: 'forward', port: Number(new URL(cluster.url).port) });
    expect(await eventually(serves, RECOVERY_BACKSTOP_MS), 'serving again once the host answers, without a restart').toBe(true);
    await waitUntilReady(base);
    const summary = await load.stop();
    expectAlive();
    expectNoServerErrors(summary);
    expect(summary.byStatus.get(504) ?? 0).toBeGreaterThan(0);
  });

  for (const mode of ['fast', 'immediate'] satisfies StopMode[]) {
    it(`${mode} shutdown under load: 503 and /readyz 503 while it is down, serving again once it is up, no restart`, async () => {
      const load = startFaultLoad();
      await answered(load, 40);
      const since = server.logs().length;
      await cluster.stop(mode);
      await answered(load, 20);
      expectAlive();
      await expectUnavailable();
      await cluster.start();
      expect(await eventually(serves, RECOVERY_BACKSTOP_MS), 'serving again once the database is back, without a restart').toBe(true);
      await waitUntilReady(base);
      await answered(load, 20);
      const summary = await load.stop();
      expectAlive();
      expectNoServerErrors(summary);
      expect(summary.byStatus.get(503) ?? 0).toBeGreaterThan(0);
      // What an operator sees: one line when it went away, one when it came back.
      expect(logged('database unavailable: requests that need it answer 503 until it is back', since)).toHaveLength(1);
      expect(logged('database available again', since)).toHaveLength(1);
    });
  }
});
