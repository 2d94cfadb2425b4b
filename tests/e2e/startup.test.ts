/**
 * Start-up as operators and developers meet it, with real `node main.ts` processes: two replicas
 * racing to migrate one database, the embedded development database across restarts and crashes,
 * and a database URL nobody answers on.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../server/src/db/client.js';
import { freePort } from '../../server/src/db/embedded.js';
import { DEFAULT_MIGRATIONS_DIR } from '../../server/src/db/migrations/runner.js';
import { createLogger } from '../../server/src/logger.js';
import { createScratchDatabase, testConfig } from '../support/database.js';
import {
  childPids,
  type LogLine,
  postmasterPid,
  type SpawnedProcess,
  spawnServer,
  stopAllProcesses,
  stopOrphanedPostgres,
  waitForPidsGone,
  waitUntilListening,
  waitUntilReady,
} from '../support/process.js';

const root = mkdtempSync(join(tmpdir(), 'keel-startup-'));
// The embedded PostgreSQL runs as the `postgres` user (we are root here): it must be able to enter.
chmodSync(root, 0o755);
const dataDir = join(root, 'postgres');
const scratches: Array<{ drop(): Promise<void> }> = [];
afterAll(async () => {
  await stopAllProcesses();
  await stopOrphanedPostgres(dataDir);
  for (const scratch of scratches) await scratch.drop();
  rmSync(root, { recursive: true, force: true });
});

const localMigrations = readdirSync(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** What every server here shares: JSON logs at info, its key file in the temp dir. */
function baseEnv(port: number): Record<string, string> {
  return { LOG_LEVEL: 'info', PORT: String(port), JWT_KEYS_FILE: join(root, 'jwt-keys.json'), SHUTDOWN_TIMEOUT_MS: '5000' };
}

const messages = (server: SpawnedProcess) => server.logs().map((l) => l.msg);

/** Becomes ready: /readyz answers 200 (asked until it does; see waitUntilReady). */
async function expectReady(url: string): Promise<void> {
  await waitUntilReady(url);
}

async function expectCleanStop(server: SpawnedProcess): Promise<void> {
  server.kill('SIGTERM');
  expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
}

describe('two servers starting at once on an empty database', () => {
  it('both become ready and every migration is applied exactly once', async () => {
    const empty = await createScratchDatabase();
    scratches.push(empty);
    const ports = await distinctFreePorts(2);
    const servers = ports.map((port, i) =>
      spawnServer({ ...baseEnv(port), NODE_ENV: 'test', DATABASE_URL: empty.url }, { name: `replica-${i}` }),
    );
    const urls = await Promise.all(servers.map((s) => waitUntilListening(s)));
    await Promise.all(urls.map(expectReady));

    const client = new pg.Client({ connectionString: empty.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ migration_name: string; applied: number }>(
        'select migration_name, count(*)::int as applied from _prisma_migrations where finished_at is not null and rolled_back_at is null group by 1 order by 1',
      );
      expect(rows).toEqual(localMigrations.map((name) => ({ migration_name: name, applied: 1 })));
      const { rows: all } = await client.query<{ n: number }>('select count(*)::int as n from _prisma_migrations');
      expect(all[0]?.n).toBe(localMigrations.length);
    } finally {
      await client.end();
    }
    // Between them the two logs account for each migration once: one applied, the other found it done.
    const appliedBy = servers.flatMap((s) =>
      messages(s)
        .filter((m) => m.startsWith('migrations: applied '))
        .flatMap((m) => m.slice('migrations: applied '.length).split(', ')),
    );
    expect(appliedBy.sort()).toEqual(localMigrations);
    await Promise.all(servers.map(expectCleanStop));
  });
});

describe('embedded PostgreSQL (no DATABASE_URL)', () => {
  const embeddedEnv = async () => ({
    ...baseEnv(await freePort()),
    NODE_ENV: 'development',
    EMBEDDED_PG_DIR: dataDir,
    SEED_DEMO_DATA: 'false',
  });
  let databaseUrl = '';

  /** The embedded cluster's URL: the port from the server's log, the password from the credentials file beside the data. */
  function embeddedUrl(server: SpawnedProcess): string {
    const line = server.logs().find((l) => l.msg.startsWith('database: ') && l.msg.endsWith(' (embedded)'));
    const port = /:(\d+)\/keel/.exec(line?.msg ?? '')?.[1];
    if (!port) throw new Error(`no embedded database line in the log:\n${server.output()}`);
    const { password } = JSON.parse(readFileSync(`${dataDir}.credentials.json`, 'utf8')) as { password: string };
    return `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/keel`;
  }

  async function withPrisma<T>(url: string, fn: (prisma: ReturnType<typeof createDatabase>['prisma']) => Promise<T>): Promise<T> {
    const config = testConfig(url);
    const database = createDatabase(url, config.database, createLogger(config));
    try {
      return await fn(database.prisma);
    } finally {
      await database.close();
    }
  }

  it('first start: initialises a cluster, applies the migrations, seeds the admin and becomes ready', async () => {
    const server = spawnServer(await embeddedEnv(), { name: 'embedded-1' });
    const url = await waitUntilListening(server);
    await expectReady(url);
    const log = messages(server);
    expect(log).toContain(`initialising embedded PostgreSQL in ${dataDir}`);
    expect(log).toContainEqual(`migrations: applied ${localMigrations.join(', ')}`);
    expect(log.some((m) => m.startsWith('seed: created admin admin@keel.local'))).toBe(true);
    // The password never reaches the log.
    const { password } = JSON.parse(readFileSync(`${dataDir}.credentials.json`, 'utf8')) as { password: string };
    expect(server.output()).not.toContain(password);

    databaseUrl = embeddedUrl(server);
    await withPrisma(databaseUrl, async (prisma) => {
      expect(await prisma.user.findUnique({ where: { email: 'admin@keel.local' }, select: { role: true } })).toEqual({ role: 'ADMIN' });
      await prisma.user.create({ data: { email: 'marker@example.com', passwordHash: 'not-a-hash' } });
    });

    await expectCleanStop(server);
    expect(messages(server)).toContain('stopping embedded PostgreSQL');
    expect(postmasterPid(dataDir)).toBeUndefined();
  });

  it('second start on the same directory: reuses the data, and the inserted row survived', async () => {
    const server = spawnServer(await embeddedEnv(), { name: 'embedded-2' });
    const url = await waitUntilListening(server);
    await expectReady(url);
    const log = messages(server);
    expect(log).toContain(`reusing the embedded PostgreSQL data in ${dataDir}`);
    expect(log.some((m) => m.startsWith('initialising'))).toBe(false);
    expect(log).toContain('migrations: up to date');
    expect(log.some((m) => m.startsWith('seed: created admin'))).toBe(false);

    await withPrisma(embeddedUrl(server), async (prisma) => {
      expect(await prisma.user.count({ where: { email: { in: ['admin@keel.local', 'marker@example.com'] } } })).toBe(2);
    });
    await expectCleanStop(server);
  });

  it('after a crash (server and PostgreSQL killed -9, stale postmaster.pid left behind) the next start recovers', async () => {
    const first = spawnServer(await embeddedEnv(), { name: 'embedded-crash' });
    await waitUntilListening(first);
    const postmaster = postmasterPid(dataDir);
    expect(postmaster).toBeDefined();
    const workers = childPids(postmaster as number);
    first.kill('SIGKILL');
    process.kill(postmaster as number, 'SIGKILL');
    expect((await first.waitForExit()).signal).toBe('SIGKILL');
    await waitForPidsGone([postmaster as number, ...workers]);
    // The lock file names a process that no longer exists.
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(true);
    expect(postmasterPid(dataDir)).toBe(postmaster);

    const next = spawnServer(await embeddedEnv(), { name: 'embedded-after-crash' });
    const url = await waitUntilListening(next);
    await expectReady(url);
    const log = messages(next);
    expect(log.some((m) => m.includes('already running'))).toBe(false);
    expect(log).toContain(`reusing the embedded PostgreSQL data in ${dataDir}`);
    expect(postmasterPid(dataDir)).not.toBe(postmaster);
    await withPrisma(embeddedUrl(next), async (prisma) => {
      expect(await prisma.user.count({ where: { email: 'marker@example.com' } })).toBe(1);
    });
    await expectCleanStop(next);
  });
});

describe('a database nobody answers on', () => {
  it('fails start-up with exit code 1 after DATABASE_STARTUP_RETRIES, saying what it tried (password redacted)', async () => {
    const port = await freePort();
    const server = spawnServer({
      ...baseEnv(await freePort()),
      NODE_ENV: 'test',
      DATABASE_URL: `postgresql://keel:s3cret-pw@127.0.0.1:${port}/keel`,
      DATABASE_STARTUP_RETRIES: '2',
      DATABASE_CONNECT_TIMEOUT_MS: '1000',
    });
    const exit = await server.waitForExit();
    expect(exit).toEqual({ code: 1, signal: null });
    const logs = server.logs();
    const retries = logs.filter((l: LogLine) => l.level === 'warn' && l.msg.startsWith('database not reachable yet'));
    expect(retries.map((l) => /attempt (\d+\/\d+)/.exec(l.msg)?.[1])).toEqual(['1/3', '2/3']);
    const fatal = logs.find((l) => l.level === 'fatal');
    expect(fatal?.msg).toContain(`could not reach the database at postgresql://keel:***@127.0.0.1:${port}/keel after 3 attempts`);
    expect(fatal?.msg).toMatch(/ECONNREFUSED/);
    expect(fatal?.msg).toMatch(/Check DATABASE_URL/);
    expect(server.output()).not.toContain('s3cret-pw');
    expect(server.output()).not.toMatch(/listening on/);
  });
});
