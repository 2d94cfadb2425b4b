/**
 * Decides once per run where the test databases live, migrates a template database, and hands
 * its coordinates to the workers. Every database the run creates is dropped at the end, and
 * leftovers of crashed earlier runs are removed at the start.
 *
 *   TEST_DATABASE_URL=postgresql://...  an existing server (only our own databases are touched)
 *   TEST_DB=testcontainers              a throwaway container (needs a Docker engine)
 *   (neither)                           an embedded PostgreSQL in a temp directory (offline, no Docker)
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { ensureDatabase } from '../../server/src/db/embedded.js';
import { quoteIdent } from '../../server/src/db/identifiers.js';
import { applyMigrations } from '../../server/src/db/migrations/runner.js';
import { redactUrl } from '../../server/src/db/wait.js';
import { databaseUrl, dropDatabases, isStaleTestDatabase, type ProvidedDb, RUN_TAG } from './naming.js';

declare module 'vitest' {
  export interface ProvidedContext {
    keelTestDb: ProvidedDb;
  }
}

const log = (message: string) => process.stdout.write(`[keel:test] ${message}\n`);

interface Server {
  adminUrl: string;
  source: ProvidedDb['source'];
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    log(`database: existing server at ${redactUrl(external)} (TEST_DATABASE_URL)`);
    return { adminUrl: external, source: 'external', stop: async () => {} };
  }
  if (process.env.TEST_DB === 'testcontainers') {
    log('database: PostgreSQL in a container (TEST_DB=testcontainers)');
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine').start().catch((error: unknown) => {
      throw new Error(
        `TEST_DB=testcontainers needs a running Docker engine: ${error instanceof Error ? error.message : String(error)}. Unset TEST_DB to use the embedded PostgreSQL.`,
      );
    });
    return { adminUrl: container.getConnectionUri(), source: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  removeCrashedEmbeddedClusters();
  const dir = join(tmpdir(), `keel-test-pg-${process.pid}-${Date.now().toString(36)}`, 'postgres');
  const started = Date.now();
  const handle = await ensureDatabase({ dir, database: 'postgres', durability: 'none', log: () => {} });
  log(`database: embedded PostgreSQL in ${dir} (started in ${Date.now() - started} ms; set TEST_DATABASE_URL to use a server)`);
  return {
    adminUrl: handle.url,
    source: 'embedded',
    stop: async () => {
      await handle.stop();
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

/** Clusters of runs that were killed before their teardown: stop their postmaster, delete their files. */
function removeCrashedEmbeddedClusters(): void {
  for (const entry of readdirSync(tmpdir())) {
    const match = /^keel-test-pg-(\d+)-/.exec(entry);
    if (!match || isAlive(Number(match[1]))) continue;
    const dir = join(tmpdir(), entry);
    const lock = join(dir, 'postgres', 'postmaster.pid');
    if (existsSync(lock)) {
      const pid = Number(readFileSync(lock, 'utf8').split('\n')[0]);
      if (isAlive(pid)) process.kill(pid, 'SIGQUIT');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startServer();
  const admin = new pg.Client({ connectionString: server.adminUrl });
  try {
    await admin.connect();
  } catch (error) {
    await server.stop();
    throw new Error(`cannot connect to the test database server ${redactUrl(server.adminUrl)}: ${(error as Error).message}`);
  }
  const { rows } = await admin.query<{ datname: string }>("select datname from pg_database where datname like 'keel\\_test\\_%'");
  const stale = rows.map((r) => r.datname).filter(isStaleTestDatabase);
  if (stale.length > 0) {
    await dropDatabases(admin, stale);
    log(`removed ${stale.length} database(s) left by crashed runs`);
  }

  const template = `keel_test_${RUN_TAG}_${project.name}_tpl`;
  await admin.query(`create database ${quoteIdent(template)}`);
  const started = Date.now();
  await applyMigrations({ databaseUrl: databaseUrl(server.adminUrl, template), log: () => {} });
  log(`template ${template} migrated in ${Date.now() - started} ms`);
  project.provide('keelTestDb', {
    adminUrl: server.adminUrl,
    template,
    prefix: `keel_test_${RUN_TAG}_${project.name}`,
    source: server.source,
  });

  return async () => {
    try {
      const { rows: ours } = await admin.query<{ datname: string }>('select datname from pg_database where starts_with(datname, $1)', [
        `keel_test_${RUN_TAG}_${project.name}`,
      ]);
      await dropDatabases(
        admin,
        ours.map((r) => r.datname),
      );
    } finally {
      await admin.end();
      await server.stop();
    }
  };
}
