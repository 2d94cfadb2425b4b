/**
 * Keel's migration runner against real PostgreSQL: Prisma-compatible bookkeeping, one implicit
 * transaction per migration, the advisory lock, failed/edited/missing migrations, resolve, reset,
 * status, and the `db:status` CLI's exit code.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import {
  applyMigrations,
  DEFAULT_MIGRATIONS_DIR,
  isUpToDate,
  MIGRATION_LOCK_KEY,
  MigrationError,
  migrationStatus,
} from '../../server/src/db/migrations/runner.js';
import { resetCommand, resolveCommand, statusCommand } from '../../tools/migrate/src/commands.js';
import { withSchemaEngine } from '../../tools/migrate/src/engine.js';
import { rejectionOf } from '../support/errors.js';
import { logCollector, migrationRows, query, scratchDatabase, tableExists, tempProject } from './helpers.js';

const repoMigrations = readdirSync(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort((a, b) => a.localeCompare(b));

const repoRoot = dirname(dirname(DEFAULT_MIGRATIONS_DIR));
const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const migrationErrorOf = (promise: Promise<unknown>): Promise<MigrationError> => rejectionOf(promise, MigrationError);

/** Prisma's `_prisma_migrations` columns (schema engine DDL, PostgreSQL flavour). */
const PRISMA_COLUMNS = [
  'id character varying(36) NO -',
  'checksum character varying(64) NO -',
  'finished_at timestamp with time zone YES -',
  'migration_name character varying(255) NO -',
  'logs text YES -',
  'rolled_back_at timestamp with time zone YES -',
  'started_at timestamp with time zone NO now()',
  'applied_steps_count integer NO 0',
];

async function migrationsTableColumns(url: string): Promise<string[]> {
  const rows = await query<{ c: string }>(
    url,
    `SELECT column_name || ' ' || CASE WHEN character_maximum_length IS NULL THEN data_type
              ELSE data_type || '(' || character_maximum_length || ')' END
            || ' ' || is_nullable || ' ' || coalesce(column_default, '-') AS c
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '_prisma_migrations'
      ORDER BY ordinal_position`,
  );
  return rows.map((r) => r.c);
}

describe('applyMigrations', () => {
  test('applies every migration to an empty database with Prisma-identical bookkeeping; a second run applies nothing', async () => {
    expect(repoMigrations.length).toBeGreaterThan(0);
    const db = await scratchDatabase();
    const { log, lines } = logCollector();

    const started = performance.now();
    const first = await applyMigrations({ databaseUrl: db.url, log });
    const elapsed = performance.now() - started;

    expect(first.applied).toEqual(repoMigrations);
    expect(lines).toContain(`applying ${repoMigrations[0]} ...`);
    expect(await tableExists(db.url, 'users')).toBe(true);
    expect(await migrationsTableColumns(db.url)).toEqual(PRISMA_COLUMNS);
    const rows = await migrationRows(db.url);
    expect(rows.map((r) => r.migration_name)).toEqual(repoMigrations);
    for (const row of rows) {
      expect(row.checksum).toBe(sha256File(join(DEFAULT_MIGRATIONS_DIR, row.migration_name, 'migration.sql')));
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
    }
    expect(elapsed).toBeLessThan(2_000);

    expect(await applyMigrations({ databaseUrl: db.url })).toEqual({ applied: [] });
    expect(await migrationRows(db.url)).toHaveLength(repoMigrations.length);
    const locks = await query(
      db.url,
      "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      [MIGRATION_LOCK_KEY],
    );
    expect(locks).toEqual([]);
  });

  test("is interchangeable with Prisma's engine: each sees the other's history as up to date", async () => {
    const ours = await scratchDatabase();
    const theirs = await scratchDatabase();
    await applyMigrations({ databaseUrl: ours.url });

    await withSchemaEngine(ours.url, async (engine) => {
      const diagnosis = await engine.diagnoseMigrationHistory(DEFAULT_MIGRATIONS_DIR);
      expect(diagnosis).toMatchObject({ history: null, editedMigrationNames: [], failedMigrationNames: [], hasMigrationsTable: true });
      expect(await engine.engineApplyMigrations(DEFAULT_MIGRATIONS_DIR)).toEqual([]);
    });
    await withSchemaEngine(theirs.url, async (engine) => {
      expect(await engine.engineApplyMigrations(DEFAULT_MIGRATIONS_DIR)).toEqual(repoMigrations);
    });
    expect(await applyMigrations({ databaseUrl: theirs.url })).toEqual({ applied: [] });
    expect(isUpToDate(await migrationStatus({ databaseUrl: theirs.url }))).toBe(true);
    expect(await migrationsTableColumns(theirs.url)).toEqual(await migrationsTableColumns(ours.url));
    const pick = (rows: Awaited<ReturnType<typeof migrationRows>>) =>
      rows.map(({ migration_name, checksum, applied_steps_count, logs }) => ({ migration_name, checksum, applied_steps_count, logs }));
    expect(pick(await migrationRows(theirs.url))).toEqual(pick(await migrationRows(ours.url)));
  });

  test('records a migration as finished in the same transaction as its script: if recording fails, nothing of it stays', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    const db = await scratchDatabase();
    await applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir });
    // Make the "finished" update itself fail, as a lost connection or a kill at that moment would.
    await query(
      db.url,
      `CREATE FUNCTION refuse_finish() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'cannot record'; END $$;
       CREATE TRIGGER refuse_finish BEFORE UPDATE OF finished_at ON _prisma_migrations
         FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL) EXECUTE FUNCTION refuse_finish();`,
    );
    project.addMigration('99990101000000_atomic', 'CREATE TABLE atomic_marker (id int);\n');
    await rejectionOf(applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir }), MigrationError);
    expect(await tableExists(db.url, 'atomic_marker')).toBe(false);
  });

  test('applies a migration whose one statement cannot run in a transaction block (CREATE INDEX CONCURRENTLY)', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    project.addMigration('99990101000001_concurrent_index', 'CREATE INDEX CONCURRENTLY "users_name_idx" ON "users" ("name");\n');
    const db = await scratchDatabase();
    const { applied } = await applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir });
    expect(applied).toContain('99990101000001_concurrent_index');
    const rows = await migrationRows(db.url);
    expect(rows.find((r) => r.migration_name === '99990101000001_concurrent_index')?.finished_at).not.toBeNull();
  });

  test('two concurrent runs on one empty database apply each migration exactly once, and both succeed', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    project.addMigration('99990101000000_slow', 'SELECT pg_sleep(0.3);\nCREATE TABLE slow_marker (id int);\n');
    const db = await scratchDatabase();

    const [a, b] = await Promise.all([
      applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir }),
      applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir }),
    ]);

    const expected = [...repoMigrations, '99990101000000_slow'];
    expect([...a.applied, ...b.applied].sort()).toEqual([...expected].sort());
    const rows = await migrationRows(db.url);
    expect(rows.map((r) => r.migration_name).sort()).toEqual([...expected].sort());
    expect(rows.every((r) => r.finished_at !== null)).toBe(true);
  });

  test('a failing migration leaves nothing behind, is recorded as failed, blocks the next run by name until resolved --rolled-back', async () => {
    const project = tempProject({
      migrations: {
        '99990101000001_create_a': 'CREATE TABLE a (id int);\n',
        '99990101000002_broken': 'CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\nINSERT INTO no_such_table VALUES (1);\n',
      },
    });
    const db = await scratchDatabase();
    const ctx = { databaseUrl: db.url, migrationsDir: project.migrationsDir };

    const failure = await migrationErrorOf(applyMigrations(ctx));
    expect(failure.code).toBe('apply-failed');
    expect(failure.migrations).toEqual(['99990101000002_broken']);
    expect(failure.message).toContain('migration 99990101000002_broken failed: relation "no_such_table" does not exist');
    expect(failure.message).toContain('pnpm db:resolve --rolled-back 99990101000002_broken');
    expect(await tableExists(db.url, 'a')).toBe(true);
    expect(await tableExists(db.url, 'b')).toBe(false); // the script's first statements were rolled back too

    const broken = (await migrationRows(db.url)).find((r) => r.migration_name === '99990101000002_broken');
    expect(broken?.finished_at).toBeNull();
    expect(broken?.rolled_back_at).toBeNull();
    expect(broken?.logs).toContain('no_such_table');
    expect(broken?.logs).toContain('42P01');

    const blocked = await migrationErrorOf(applyMigrations(ctx));
    expect(blocked.code).toBe('failed-migration');
    expect(blocked.message).toContain('99990101000002_broken');
    expect(blocked.message).toContain('pnpm db:resolve --rolled-back 99990101000002_broken');
    const status = await statusCommand({ ...ctx, log: () => {} });
    expect(status.exitCode).toBe(1);
    expect(status.status.failed.map((f) => f.name)).toEqual(['99990101000002_broken']);

    await resolveCommand({ ...ctx, log: () => {}, rolledBack: '99990101000002_broken' });
    project.addMigration('99990101000002_broken', 'CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n');
    expect(await applyMigrations(ctx)).toEqual({ applied: ['99990101000002_broken'] });
    expect(await query(db.url, 'SELECT id FROM b')).toEqual([{ id: 1 }]);
    expect(isUpToDate(await migrationStatus(ctx))).toBe(true);

    const notFailed = await migrationErrorOf(resolveCommand({ ...ctx, log: () => {}, rolledBack: '99990101000002_broken' }));
    expect(notFailed.code).toBe('invalid-state');
  });

  test('runs each script as one query: $$ function bodies, DO blocks and semicolons in strings apply intact', async () => {
    const project = tempProject({
      migrations: {
        '99990101000001_plpgsql': `-- a function whose body contains semicolons
CREATE FUNCTION keel_add(a int, b int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  -- a comment; with a semicolon
  RETURN a + b;
END;
$$;

DO $do$
BEGIN
  CREATE TABLE from_do (note text);
  INSERT INTO from_do VALUES ('semi;colon');
END
$do$;
`,
      },
    });
    const db = await scratchDatabase();
    await applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir });
    expect(await query(db.url, 'SELECT keel_add(2, 3) AS sum')).toEqual([{ sum: 5 }]);
    expect(await query(db.url, 'SELECT note FROM from_do')).toEqual([{ note: 'semi;colon' }]);
  });
});

describe('migration status', () => {
  test('reports an applied migration whose file was edited, by name, and the runner refuses to go on', async () => {
    const project = tempProject({
      migrations: { '99990101000001_one': 'CREATE TABLE one (id int);\n', '99990101000002_two': 'CREATE TABLE two (id int);\n' },
    });
    const db = await scratchDatabase();
    const ctx = { databaseUrl: db.url, migrationsDir: project.migrationsDir };
    await applyMigrations(ctx);

    project.addMigration('99990101000001_one', 'CREATE TABLE one (id int);\n-- edited afterwards\n');
    // Line endings alone are no edit (Prisma accepts both conventions): git may rewrite them.
    project.addMigration('99990101000002_two', 'CREATE TABLE two (id int);\r\n');

    const status = await migrationStatus(ctx);
    expect(status.modified).toEqual(['99990101000001_one']);
    const report = await statusCommand({ ...ctx, log: () => {} });
    expect(report.exitCode).toBe(1);
    expect(report.problems.join('\n')).toContain('migration 99990101000001_one was modified after it was applied');
    const refused = await migrationErrorOf(applyMigrations(ctx));
    expect(refused.code).toBe('modified');
    expect(refused.migrations).toEqual(['99990101000001_one']);
  });

  test('reports a pending migration with exit code 1, then "Database is up to date" with exit code 0 once applied', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    const db = await scratchDatabase();
    const ctx = { databaseUrl: db.url, migrationsDir: project.migrationsDir };
    await applyMigrations(ctx);
    project.addMigration('99990101000000_add_notes', 'CREATE TABLE notes (id int);\n');

    const { log, lines } = logCollector();
    const behind = await statusCommand({ ...ctx, log });
    expect(behind.exitCode).toBe(1);
    expect(behind.status.pending).toEqual(['99990101000000_add_notes']);
    expect(behind.problems).toEqual(['1 migration not yet applied: 99990101000000_add_notes. Run `pnpm db:migrate`.']);
    expect(lines).not.toContain('Database is up to date');

    await applyMigrations(ctx);
    const { log: log2, lines: lines2 } = logCollector();
    const current = await statusCommand({ ...ctx, log: log2 });
    expect(current.exitCode).toBe(0);
    expect(lines2.at(-1)).toBe('Database is up to date');
  });

  test('reports applied migrations that are missing locally, and the runner refuses to go on', async () => {
    const full = tempProject({
      migrations: { '99990101000001_one': 'CREATE TABLE one (id int);\n', '99990101000002_two': 'CREATE TABLE two (id int);\n' },
    });
    const older = tempProject({ migrations: { '99990101000001_one': 'CREATE TABLE one (id int);\n' } });
    const db = await scratchDatabase();
    await applyMigrations({ databaseUrl: db.url, migrationsDir: full.migrationsDir });

    const status = await migrationStatus({ databaseUrl: db.url, migrationsDir: older.migrationsDir });
    expect(status.missingLocally).toEqual(['99990101000002_two']);
    const refused = await migrationErrorOf(applyMigrations({ databaseUrl: db.url, migrationsDir: older.migrationsDir }));
    expect(refused.code).toBe('missing-locally');
    expect(refused.message).toContain('99990101000002_two');
  });

  test('db:status (the CLI) exits 1 on a database behind the migrations and 0 once migrated', async () => {
    const db = await scratchDatabase();
    const run = async () => {
      const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'tools/migrate/src/db.ts', 'status'], {
        cwd: repoRoot,
        env: { ...process.env, DATABASE_URL: db.url },
        timeout: 15_000,
      }).then(
        (out) => ({ code: 0, stdout: out.stdout }),
        (error: { code?: number; stdout?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? '' }),
      );
      return result;
    };
    const behind = await run();
    expect(behind.code).toBe(1);
    expect(behind.stdout).toContain(`not yet applied: ${repoMigrations.join(', ')}`);

    await applyMigrations({ databaseUrl: db.url });
    const current = await run();
    expect(current.stdout).toContain('[keel] db: Database is up to date');
    expect(current.code).toBe(0);
  });
});

describe('resolve and reset', () => {
  test('a database with tables but no history is refused, and adopted with resolve --applied (as Prisma records it)', async () => {
    const project = tempProject({
      migrations: { '99990101000001_legacy': 'CREATE TABLE legacy (id int);\n', '99990101000002_more': 'CREATE TABLE more (id int);\n' },
    });
    const db = await scratchDatabase();
    const ctx = { databaseUrl: db.url, migrationsDir: project.migrationsDir };
    await query(db.url, 'CREATE TABLE legacy (id int)');

    const refused = await migrationErrorOf(applyMigrations(ctx));
    expect(refused.code).toBe('not-empty');
    expect(refused.message).toContain('pnpm db:resolve --applied 99990101000001_legacy');

    await resolveCommand({ ...ctx, log: () => {}, applied: '99990101000001_legacy' });
    const [row] = await migrationRows(db.url);
    expect(row).toMatchObject({ migration_name: '99990101000001_legacy', applied_steps_count: 0, logs: '', rolled_back_at: null });
    expect(row?.finished_at).toBeInstanceOf(Date);
    expect(await applyMigrations(ctx)).toEqual({ applied: ['99990101000002_more'] });

    expect((await migrationErrorOf(resolveCommand({ ...ctx, log: () => {}, applied: '99990101000001_legacy' }))).code).toBe(
      'invalid-state',
    );
    expect((await migrationErrorOf(resolveCommand({ ...ctx, log: () => {}, applied: '99990101000009_nope' }))).code).toBe('not-found');
  });

  test('reset drops everything in the public schema and re-applies every migration; refused when NODE_ENV=production', async () => {
    const db = await scratchDatabase({ migrated: true });
    await query(db.url, 'CREATE TABLE stray (id int)');
    const schemaInfo = () =>
      query<{ owner: string; acl: string | null; comment: string | null }>(
        db.url,
        "SELECT nspowner::regrole::text AS owner, nspacl::text AS acl, obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = 'public'",
      );
    const before = await schemaInfo();

    const refused = await migrationErrorOf(resetCommand({ databaseUrl: db.url, log: () => {}, nodeEnv: 'production' }));
    expect(refused.code).toBe('refused');
    expect(refused.message).toContain('NODE_ENV=production');
    expect(await tableExists(db.url, 'stray')).toBe(true);

    const { applied } = await resetCommand({ databaseUrl: db.url, log: () => {}, nodeEnv: 'test' });
    expect(applied).toEqual(repoMigrations);
    expect(await tableExists(db.url, 'stray')).toBe(false);
    expect(await tableExists(db.url, 'users')).toBe(true);
    expect((await migrationRows(db.url)).map((r) => r.migration_name)).toEqual(repoMigrations);
    expect(await schemaInfo()).toEqual(before); // same owner, grants and comment as before
  });

  test('db:reset (the CLI) without a terminal to confirm drops nothing unless --force is given', async () => {
    const db = await scratchDatabase();
    await applyMigrations({ databaseUrl: db.url });
    await query(db.url, 'CREATE TABLE keep_me (id int)');
    const reset = (...flags: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'tools/migrate/src/db.ts', 'reset', ...flags], {
        cwd: repoRoot,
        env: { ...process.env, DATABASE_URL: db.url, NODE_ENV: 'test' },
        timeout: 30_000,
      }).then(
        (out) => ({ code: 0, output: out.stdout + out.stderr }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({
          code: error.code ?? -1,
          output: `${error.stdout}${error.stderr}`,
        }),
      );
    const refused = await reset();
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('re-run with --force');
    expect(await tableExists(db.url, 'keep_me')).toBe(true);
    const forced = await reset('--force');
    expect(forced.code).toBe(0);
    expect(await tableExists(db.url, 'keep_me')).toBe(false);
  });
});

// Keep the repository's migration files byte-stable: an accidental edit of an applied migration
// breaks every deployed database.
test('the repository migrations are Prisma-formatted folders with a lock file', () => {
  expect(readFileSync(join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8')).toContain('provider = "postgresql"');
  for (const name of repoMigrations) {
    expect(name).toMatch(/^\d{14}_[A-Za-z0-9_]+$/);
    expect(readFileSync(join(DEFAULT_MIGRATIONS_DIR, name, 'migration.sql'), 'utf8')).not.toContain('\r\n');
  }
});
