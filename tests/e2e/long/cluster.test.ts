/**
 * Keel scaled out on real engines, as deploy/ configures them: three instances behind HAProxy,
 * reaching PostgreSQL through PgBouncer 1.18 in transaction mode (`pnpm cluster`'s code, on a
 * fresh database of the test run's server). Every call goes through the balancer; the
 * X-Keel-Server header says which instance answered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { readLocalMigrations } from '../../../server/src/db/migrations/runner.js';
import { checkPooledConnection, PoolerConfigError } from '../../../server/src/db/pooler.js';
import { Sql } from '../../../server/src/db/sql.js';
import { listProjects } from '../../../server/src/modules/projects/queries.js';
import { startCluster, startPgbouncer } from '../../../server/src/scripts/cluster/cluster.js';
import { PGBOUNCER_TEMPLATE, readTemplate } from '../../../server/src/scripts/cluster/configs.js';
import { failed, startLoad } from '../../support/cluster-load.js';
import { createScratchDatabase } from '../../support/database.js';
import { type AuthBody, mutate, query } from '../../support/trpc-http.js';

const PASSWORD = 'a sturdy passphrase';
const LOGIN_FAILURES_PER_IP = 8;

const scratch = await createScratchDatabase({ migrated: false });
const dir = mkdtempSync(join(tmpdir(), 'keel-cluster-'));
const cluster = await startCluster({
  instances: 3,
  databaseUrl: scratch.url,
  dir,
  log: () => {},
  env: {
    // Every call below comes from 127.0.0.1: only the limit under test is small.
    RATE_LIMIT_LOGIN_FAILURES_PER_IP: String(LOGIN_FAILURES_PER_IP),
    RATE_LIMIT_LOGIN_PER_IP: '100000',
    RATE_LIMIT_REGISTER_PER_IP: '100000',
    RATE_LIMIT_API_PER_IP: '1000000',
    RATE_LIMIT_API_PER_USER: '1000000',
  },
});
const direct = new pg.Pool({ connectionString: cluster.directUrl, max: 2 });

afterAll(async () => {
  await direct.end();
  await cluster.stop();
  await scratch.drop();
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
async function register(): Promise<AuthBody & { email: string }> {
  const email = `cluster-${++counter}-${Date.now()}@example.test`;
  const answer = await mutate(cluster.url, 'auth.register', { email, password: PASSWORD, name: `Cluster User ${counter}` });
  expect(answer.error).toBeUndefined();
  return { ...(answer.data as AuthBody), email };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('three Keel instances behind HAProxy, through PgBouncer in transaction mode', () => {
  it('applied each migration exactly once although the three instances started at once', async () => {
    const local = await readLocalMigrations();
    const { rows } = await direct.query<{ migration_name: string; n: number; finished: number }>(
      `SELECT migration_name, count(*)::int AS n, count(finished_at)::int AS finished FROM _prisma_migrations GROUP BY migration_name ORDER BY migration_name`,
    );
    expect(rows).toEqual(local.map((m) => ({ migration_name: m.name, n: 1, finished: 1 })));
    const appliers = cluster.instances.filter((i) => /"msg":"migrations: applied /.test(i.process().tail(5_000)));
    expect(appliers).toHaveLength(1);
  });

  it('registers, signs in and answers from every instance, with the client address from X-Forwarded-For', async () => {
    const user = await register();
    const servers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // A client's own X-Forwarded-For is dropped by HAProxy: it cannot choose its address.
      const login = await mutate(
        cluster.url,
        'auth.login',
        { email: user.email, password: PASSWORD },
        { 'x-forwarded-for': '203.0.113.9' },
      );
      expect(login.error).toBeUndefined();
      const me = await query<{ email: string }>(cluster.url, 'auth.me', bearer((login.data as AuthBody).accessToken));
      expect(me.data?.email).toBe(user.email);
      servers.add(login.headers.get('x-keel-server') ?? '');
      servers.add(me.headers.get('x-keel-server') ?? '');
    }
    expect([...servers].sort()).toEqual(['keel1', 'keel2', 'keel3']);
    const sessions = await direct.query<{ ip: string | null }>(
      'SELECT s.ip FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1',
      [user.email],
    );
    // HAProxy replaced whatever the client sent and appended the socket's address; Keel trusts loopback.
    expect(sessions.rows.every((r) => r.ip === '127.0.0.1')).toBe(true);
  });

  it('serialises 20 refreshes of one token spread over the instances: one live successor, no error', async () => {
    const user = await register();
    const refreshToken = user.refreshToken as string;
    const answers = await Promise.all(Array.from({ length: 20 }, () => mutate(cluster.url, 'auth.refresh', { refreshToken })));
    expect(answers.map((a) => a.error?.data.code)).toEqual(Array(20).fill(undefined));
    expect(new Set(answers.map((a) => a.headers.get('x-keel-server'))).size).toBe(3);
    expect(new Set(answers.map((a) => a.data?.refreshToken)).size).toBe(1);
    const { rows } = await direct.query<{ live: number; revoked: number }>(
      `SELECT count(*) FILTER (WHERE t.rotated_at IS NULL)::int AS live, count(s.revoked_at)::int AS revoked
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE s.user_id = $1`,
      [user.user.id],
    );
    expect(rows[0]).toEqual({ live: 1, revoked: 0 });
  });

  it('keeps one admin when three admins demote each other at once from different instances', async () => {
    const admins = await Promise.all([register(), register(), register()]);
    // These three are the only admins (development start-up seeds one more): the guard must keep one of them.
    await direct.query(`UPDATE users SET role = CASE WHEN id = ANY($1::uuid[]) THEN 'ADMIN' ELSE 'USER' END::"Role"`, [
      admins.map((a) => a.user.id),
    ]);
    const tokens = await Promise.all(
      admins.map(
        async (a) => ((await mutate(cluster.url, 'auth.login', { email: a.email, password: PASSWORD })).data as AuthBody).accessToken,
      ),
    );
    const calls = admins.flatMap((actor, i) =>
      admins
        .filter((target) => target !== actor)
        .map((target) => mutate(cluster.url, 'users.setRole', { id: target.user.id, role: 'USER' }, bearer(tokens[i] as string))),
    );
    const answers = await Promise.all(calls);
    expect(new Set(answers.map((a) => a.headers.get('x-keel-server'))).size).toBeGreaterThan(1);
    for (const answer of answers) expect([undefined, 'CONFLICT', 'FORBIDDEN']).toContain(answer.error?.data.code);
    const { rows } = await direct.query<{ n: number; theirs: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE id = ANY($1::uuid[]))::int AS theirs FROM users WHERE role = 'ADMIN' AND active`,
      [admins.map((a) => a.user.id)],
    );
    expect(rows[0]).toEqual({ n: 1, theirs: 1 });
  });

  it('turns named prepared statements off by itself when PgBouncer cannot carry them', async () => {
    // A PgBouncer of its own, with the shipped file: the instances' traffic through the shared one
    // reorders its server connections, so which connection the next transaction gets was a race.
    const bouncer = await startPgbouncer({ dir, serverUrl: cluster.directUrl, name: 'pgbouncer-prepared' });
    const pool = new pg.Pool({ connectionString: bouncer.pooledUrl, max: 1 });
    const other = new pg.Client({ connectionString: bouncer.pooledUrl });
    try {
      await other.connect();
      const owner = await register();
      let warnings = 0;
      const sql = new Sql(pool, true, () => {
        warnings++;
      });
      const input = { ownerId: owner.user.id, includeArchived: false, take: 5 };
      // Prepared on the only server connection this PgBouncer has ...
      expect(await sql.rows(listProjects, input)).toEqual([]);
      // ... which the other client now holds in a transaction, so the next execution goes to a
      // new server connection that never prepared it: 26000, then the same SQL unnamed.
      await other.query('BEGIN');
      await other.query('SELECT 1');
      expect(await sql.rows(listProjects, input)).toEqual([]);
      await other.query('COMMIT');
      expect(warnings).toBe(1);
      const reads = await Promise.all(Array.from({ length: 12 }, () => sql.rows(listProjects, input)));
      expect(reads).toEqual(Array(12).fill([]));
      expect(warnings).toBe(1);
    } finally {
      await other.end();
      await pool.end();
      await bouncer.process.stop();
    }
  });

  it('stops at start with what to change when PgBouncer refuses the statement timeout Keel sends', async () => {
    // deploy/pgbouncer.ini without its ignore_startup_parameters line: PgBouncer 1.18 refuses the connection.
    const template = readTemplate(PGBOUNCER_TEMPLATE).replace(/^ignore_startup_parameters = .*$/m, '');
    const strict = await startPgbouncer({ dir, serverUrl: cluster.directUrl, template, name: 'pgbouncer-strict' });
    const pool = new pg.Pool({ connectionString: strict.pooledUrl, statement_timeout: 10_000, max: 1 });
    const shipped = new pg.Pool({ connectionString: cluster.pooledUrl, statement_timeout: 10_000, max: 1 });
    try {
      const refused = await checkPooledConnection(pool).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(PoolerConfigError);
      expect((refused as Error).message).toMatch(/refuses the startup parameter statement_timeout: add it to ignore_startup_parameters/);
      // The shipped file's line is what makes it work.
      await expect(checkPooledConnection(shipped)).resolves.toBeUndefined();
    } finally {
      await Promise.all([pool.end(), shipped.end()]);
      await strict.process.stop();
    }
  });

  it('restarts every instance in turn under load with no failed request, and keeps every acknowledged write', async () => {
    const users = await Promise.all([register(), register(), register(), register()]);
    const load = startLoad({ url: cluster.url, accessTokens: users.map((u) => u.accessToken), connections: 32, tag: 'rolling' });
    await load.completed(200);
    const events: string[] = [];
    const event = (what: string) => events.push(`${Math.round(performance.now())} ${what}`);
    for (const instance of cluster.instances) {
      const beforeStop = cluster.haproxy.lineCount();
      event(`SIGTERM ${instance.name}`);
      const exit = instance.stop('SIGTERM');
      await cluster.waitForState(instance, 'DOWN', beforeStop);
      event(`${instance.name} DOWN`);
      expect(await exit).toEqual({ code: 0, signal: null });
      event(`${instance.name} exited`);
      const beforeStart = cluster.haproxy.lineCount();
      await instance.start();
      event(`${instance.name} listening`);
      await cluster.waitForState(instance, 'UP', beforeStart);
      event(`${instance.name} UP`);
      await load.completed(100);
    }
    await load.stop();
    // On failure: when each step happened, and HAProxy's lines for the requests that ended abnormally.
    const context = `${events.join('\n')}\nHAProxy:\n${cluster.haproxy.tail(40)}`;
    expect(failed(load.outcomes), context).toEqual([]);
    const servers = new Set(load.outcomes.map((o) => o.server));
    expect([...servers].sort()).toEqual(['keel1', 'keel2', 'keel3']);
    const { rows } = await direct.query<{ n: number }>('SELECT count(*)::int AS n FROM projects WHERE id = ANY($1::uuid[])', [
      load.acknowledged,
    ]);
    expect(load.acknowledged.length).toBeGreaterThan(0);
    expect(rows[0]?.n).toBe(load.acknowledged.length);
  });

  it('stops sending to an instance killed with SIGKILL once its health checks fail', async () => {
    const users = await Promise.all([register(), register()]);
    const load = startLoad({ url: cluster.url, accessTokens: users.map((u) => u.accessToken), connections: 32, tag: 'killed' });
    await load.completed(200);
    const victim = cluster.instances[1] as (typeof cluster.instances)[number];
    const before = cluster.haproxy.lineCount();
    const killedAt = performance.now();
    await victim.stop('SIGKILL');
    await cluster.waitForState(victim, 'DOWN', before);
    const downAt = performance.now();
    await load.completed(300);
    await load.stop();
    const failures = failed(load.outcomes);
    // Only calls already on the killed instance's connections can fail (HAProxy re-sends the
    // ones whose connection was refused); none started after HAProxy marked it DOWN.
    expect(failures.every((o) => o.start < downAt)).toBe(true);
    expect(failures.length).toBeLessThanOrEqual(32);
    expect(load.outcomes.filter((o) => o.start > downAt && o.server === victim.name)).toEqual([]);
    const writesLost = failures.filter((o) => o.kind === 'write').length;
    console.info(
      `SIGKILL under load: ${failures.length} of ${load.outcomes.length} calls failed (${writesLost} writes, statuses ${
        [...new Set(failures.map((o) => o.status))].join(', ') || 'none'
      }), HAProxy marked it DOWN ${Math.round(downAt - killedAt)} ms after the kill`,
    );
    const { rows } = await direct.query<{ n: number }>('SELECT count(*)::int AS n FROM projects WHERE id = ANY($1::uuid[])', [
      load.acknowledged,
    ]);
    expect(rows[0]?.n).toBe(load.acknowledged.length);
    const restarted = cluster.haproxy.lineCount();
    await victim.start();
    await cluster.waitForState(victim, 'UP', restarted);
  });

  // Last: once the address's budget is spent, it cannot sign in any more.
  it("issues service tokens from every instance: the token endpoint's limits send no named statement PgBouncer cannot carry", async () => {
    const admin = await register();
    await direct.query(`UPDATE users SET role = 'ADMIN' WHERE id = $1::uuid`, [admin.user.id]);
    const login = await mutate(cluster.url, 'auth.login', { email: admin.email, password: PASSWORD });
    const created = await mutate<{ clientId: string; clientSecret: string }>(
      cluster.url,
      'serviceAccounts.create',
      { name: `cluster-${Date.now()}`, scopes: ['projects:read'] },
      bearer((login.data as AuthBody).accessToken),
    );
    expect(created.error).toBeUndefined();
    const { clientId, clientSecret } = created.data ?? { clientId: '', clientSecret: '' };
    const answers = await Promise.all(
      // Fewer than the failure budget per address: each request counts as a failure until its secret checks.
      Array.from({ length: 6 }, async () => {
        const response = await fetch(`${cluster.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
        });
        return { status: response.status, server: response.headers.get('x-keel-server') };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(new Set(answers.map((a) => a.server)).size).toBeGreaterThan(1);
  });

  it('shares the failed-login limit per address across the instances', async () => {
    const outcomes = [];
    for (let i = 0; i < LOGIN_FAILURES_PER_IP + 4; i++) {
      const answer = await mutate(cluster.url, 'auth.login', { email: `nobody-${i}@example.test`, password: 'wrong password' });
      outcomes.push({ code: answer.error?.data.code, server: answer.headers.get('x-keel-server') });
    }
    expect(new Set(outcomes.map((o) => o.server)).size).toBe(3);
    const codes = outcomes.map((o) => o.code);
    expect(codes.slice(0, LOGIN_FAILURES_PER_IP)).toEqual(Array(LOGIN_FAILURES_PER_IP).fill('UNAUTHORIZED'));
    expect(codes.slice(LOGIN_FAILURES_PER_IP)).toEqual(Array(4).fill('TOO_MANY_REQUESTS'));
  });
});
