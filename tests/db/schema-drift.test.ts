/**
 * The diff-based side, through Prisma's Wasm schema engine run offline: schema.prisma against the
 * migrations (a forgotten migration fails CI here, saying what it should contain), the live
 * database against the migrations (drift), and the create -> apply -> status round trip that a
 * dependency bump breaking the offline path would fail.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyMigrations, MigrationError, migrationStatus } from '../../server/src/db/migrations/runner.js';
import { devCommand, statusCommand } from '../../tools/migrate/src/commands.js';
import {
  createMigration,
  diffMigrationsToDatabase,
  diffMigrationsToSchema,
  openSchemaEngine,
  type SchemaEngineSession,
  withSchemaEngine,
} from '../../tools/migrate/src/engine.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/database.js';
import { logCollector, query, scratchDatabase, tableExists, tempProject } from './helpers.js';

/** Adds a field to the first model of a schema.prisma text (whatever models the repository has by then). */
function withExtraField(schema: string, field: string): string {
  const patched = schema.replace(/^(model \w+ \{\n)/m, `$1  ${field}\n`);
  expect(patched).not.toBe(schema);
  return patched;
}

/** The names of the shadow databases an engine session reported creating. */
function shadowNames(lines: string[]): string[] {
  return lines.flatMap((l) => /creating shadow database (\S+)/.exec(l)?.[1] ?? []);
}

async function remainingDatabases(url: string, names: string[]): Promise<string[]> {
  const rows = await query<{ datname: string }>(url, 'SELECT datname FROM pg_database WHERE datname = ANY($1::text[])', [names]);
  return rows.map((r) => r.datname);
}

// One migrated database and one engine for the read-only checks of this file.
let migrated: ScratchDatabase;
let engine: SchemaEngineSession;
let engineStartMs = 0;

beforeAll(async () => {
  migrated = await createScratchDatabase({ migrated: true });
  const started = performance.now();
  engine = await openSchemaEngine({ databaseUrl: migrated.url });
  engineStartMs = performance.now() - started;
});

afterAll(async () => {
  await engine?.close();
  await migrated?.drop();
});

describe('schema.prisma against the migrations', () => {
  test('the repository migrations build exactly prisma/schema.prisma (a forgotten migration fails here with the SQL it needs)', async () => {
    // Wasm module compiled and instantiated, plus one engine: measured so a slow-down shows.
    expect(engineStartMs).toBeLessThan(5_000);
    const sql = await diffMigrationsToSchema({ databaseUrl: migrated.url, engine });
    expect(
      sql,
      `prisma/schema.prisma has changes that no migration in prisma/migrations contains. ` +
        `Run \`pnpm db:migrate:dev --name <what-changed>\` and commit the new folder. The missing SQL:\n${sql}`,
    ).toBe('');
  });

  test('a schema with an extra field yields a diff that adds that column', async () => {
    const project = tempProject();
    writeFileSync(
      project.schemaPath,
      withExtraField(readFileSync(project.schemaPath, 'utf8'), 'keelDriftProbe String? @map("keel_drift_probe")'),
    );
    const sql = await diffMigrationsToSchema({ databaseUrl: migrated.url, schemaPath: project.schemaPath, engine });
    expect(sql).toMatch(/ALTER TABLE "\w+" ADD COLUMN\s+"keel_drift_probe" TEXT;/);
  });
});

describe('the live database against the migrations', () => {
  test('a manual ALTER TABLE on a migrated database is reported as drift by db:status, and migrate dev refuses to build on it', async () => {
    const db = await scratchDatabase({ migrated: true });
    await withSchemaEngine(db.url, async (session) => {
      const clean = await statusCommand({ databaseUrl: db.url, log: () => {}, engine: session });
      expect(clean.exitCode).toBe(0);

      const [table] = await query<{ name: string }>(
        db.url,
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1 LIMIT 1",
      );
      // A CHECK constraint is outside Prisma's model (no drift), and describing it must not crash the
      // engine: its catalog column is PostgreSQL's internal "char" type (repaired in pg-adapter.ts).
      await query(db.url, `ALTER TABLE "${table?.name}" ADD CONSTRAINT keel_manual_check CHECK (true)`);
      expect((await statusCommand({ databaseUrl: db.url, log: () => {}, engine: session })).exitCode).toBe(0);

      await query(db.url, `ALTER TABLE "${table?.name}" ADD COLUMN keel_manual_column integer`);

      const { log, lines } = logCollector();
      const drifted = await statusCommand({ databaseUrl: db.url, log, engine: session });
      expect(drifted.exitCode).toBe(1);
      expect(drifted.drift).toContain(`Changed the \`${table?.name}\` table`);
      expect(drifted.drift).toContain('[+] Added column `keel_manual_column`');
      expect(lines.join('\n')).toContain('the database schema has drifted from the migrations');
      expect(await diffMigrationsToDatabase(db.url, { engine: session })).toContain('ADD COLUMN     "keel_manual_column" INTEGER');

      const refused = await devCommand({ databaseUrl: db.url, log: () => {}, engine: session, name: 'anything', createOnly: true }).catch(
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(MigrationError);
      expect((refused as MigrationError).code).toBe('drift');
      expect((refused as MigrationError).message).toContain('keel_manual_column');
    });
  });
});

describe('migrate dev, offline', () => {
  test('create -> apply -> status on a schema change: the new migration creates the table, applies, and leaves nothing behind', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    const repoMigrations = readdirSync(project.migrationsDir).filter((n) => n !== 'migration_lock.toml');
    writeFileSync(
      project.schemaPath,
      `${readFileSync(project.schemaPath, 'utf8')}\nmodel KeelMigProbe {\n  id    Int    @id @default(autoincrement())\n  label String\n\n  @@map("keel_mig_probe")\n}\n`,
    );
    const db = await scratchDatabase();
    const { log, lines } = logCollector();
    const ctx = { databaseUrl: db.url, migrationsDir: project.migrationsDir, schemaPath: project.schemaPath };

    const started = performance.now();
    const created = await createMigration({ ...ctx, name: 'add probe', createOnly: true, log });
    const createMs = performance.now() - started;

    expect(created.migration).toMatch(/^\d{14}_add_probe$/);
    expect(created.applied.sort()).toEqual(repoMigrations.sort()); // pending ones first, not the new one (--create-only)
    const file = join(project.migrationsDir, created.migration as string, 'migration.sql');
    expect(readFileSync(file, 'utf8')).toBe(created.script);
    expect(created.script).toContain(
      '-- CreateTable\nCREATE TABLE "keel_mig_probe" (\n    "id" SERIAL NOT NULL,\n    "label" TEXT NOT NULL,',
    );
    expect(await tableExists(db.url, 'keel_mig_probe')).toBe(false);
    expect(createMs).toBeLessThan(15_000);

    expect(await applyMigrations({ databaseUrl: db.url, migrationsDir: project.migrationsDir })).toEqual({ applied: [created.migration] });
    const status = await statusCommand({ ...ctx, log: () => {} });
    expect(status.problems).toEqual([]);
    expect(status.exitCode).toBe(0);
    expect(await diffMigrationsToSchema(ctx)).toBe('');

    // Every shadow database was dropped, and no session kept the migration lock.
    const shadows = shadowNames(lines);
    expect(shadows.length).toBeGreaterThan(0);
    expect(await remainingDatabases(db.url, shadows)).toEqual([]);
    const locks =
      "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    expect(await query(db.url, locks)).toEqual([]);
  });

  test('dropping a column that holds data produces a data-loss warning and needs consent', async () => {
    const project = tempProject({ copyRepoMigrations: true });
    const probe = 'model KeelMigProbe {\n  id    Int    @id @default(autoincrement())\n  label String\n\n  @@map("keel_mig_probe")\n}\n';
    writeFileSync(project.schemaPath, `${readFileSync(project.schemaPath, 'utf8')}\n${probe}`);
    const db = await scratchDatabase();
    await withSchemaEngine(db.url, async (session) => {
      const ctx = {
        databaseUrl: db.url,
        migrationsDir: project.migrationsDir,
        schemaPath: project.schemaPath,
        engine: session,
        log: () => {},
      };
      const first = await createMigration({ ...ctx, name: 'add_probe' });
      expect(first.applied).toContain(first.migration);
      await query(db.url, "INSERT INTO keel_mig_probe (label) VALUES ('keep me')");

      writeFileSync(project.schemaPath, readFileSync(project.schemaPath, 'utf8').replace('  label String\n', ''));
      const asked: string[][] = [];
      const refused = await createMigration({
        ...ctx,
        name: 'drop_label',
        confirmDataLoss: (w) => {
          asked.push(w);
          return false;
        },
      }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MigrationError);
      expect((refused as MigrationError).code).toBe('data-loss');
      expect(asked).toEqual([
        ['You are about to drop the column `label` on the `keel_mig_probe` table, which still contains 1 non-null values.'],
      ]);
      expect((refused as MigrationError).message).toContain('--accept-data-loss');
      expect(readdirSync(project.migrationsDir).filter((n) => n.endsWith('_drop_label'))).toEqual([]);
      expect((await migrationStatus({ databaseUrl: db.url, migrationsDir: project.migrationsDir })).pending).toEqual([]);

      const accepted = await createMigration({ ...ctx, name: 'drop_label', acceptDataLoss: true });
      expect(accepted.warnings).toEqual(asked[0]);
      expect(accepted.script).toContain('ALTER TABLE "keel_mig_probe" DROP COLUMN "label";');
      expect(accepted.applied).toEqual([accepted.migration]);
      expect(existsSync(join(project.migrationsDir, accepted.migration as string, 'migration.sql'))).toBe(true);
      expect(await query(db.url, 'SELECT * FROM keel_mig_probe')).toEqual([{ id: 1 }]);
    });
  });
});
