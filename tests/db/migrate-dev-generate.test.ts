/**
 * `pnpm db:migrate:dev` regenerates the Prisma client after it applies the migration (as
 * `prisma migrate dev` did up to Prisma 6): otherwise the new model is missing on `db` (TS2339)
 * and the running dev server answers 500. Run on a copy of the schema and migrations in a
 * temporary project, whose generator output (`../server/src/generated/prisma`, relative to the
 * schema) lands inside that project, never in the repository's own client.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR } from '../../server/src/db/migrations/runner.js';
import { devCommand } from '../../tools/migrate/src/commands.js';
import { DEFAULT_SCHEMA_PATH } from '../../tools/migrate/src/engine.js';
import type { GenerateOptions } from '../../tools/migrate/src/prisma-generate.js';
import { logCollector, scratchDatabase, tableExists } from './helpers.js';

const PROBE_MODEL = 'model KeelGenProbe {\n  id    Int    @id @default(autoincrement())\n  label String\n\n  @@map("keel_gen_probe")\n}\n';

/** <root>/prisma/schema.prisma with the probe model, and the repository's migrations beside it. */
function projectWithNewModel() {
  const root = mkdtempSync(join(tmpdir(), 'keel-migrate-dev-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const schemaPath = join(root, 'prisma/schema.prisma');
  const migrationsDir = join(root, 'prisma/migrations');
  mkdirSync(migrationsDir, { recursive: true });
  cpSync(DEFAULT_MIGRATIONS_DIR, migrationsDir, { recursive: true });
  writeFileSync(schemaPath, `${readFileSync(DEFAULT_SCHEMA_PATH, 'utf8')}\n${PROBE_MODEL}`);
  return { root, schemaPath, migrationsDir, generated: join(root, 'server/src/generated/prisma') };
}

describe('pnpm db:migrate:dev', () => {
  test('creates and applies the migration, then regenerates the Prisma client: the new model is on `db`', async () => {
    const project = projectWithNewModel();
    const db = await scratchDatabase();
    const { log, lines } = logCollector();

    const result = await devCommand({
      databaseUrl: db.url,
      log,
      schemaPath: project.schemaPath,
      migrationsDir: project.migrationsDir,
      name: 'add probe',
    });

    expect(result.migration).toMatch(/^\d{14}_add_probe$/);
    expect(await tableExists(db.url, 'keel_gen_probe')).toBe(true);
    // The client generated from the changed schema has the model and its delegate on the client.
    expect(existsSync(join(project.generated, 'models/KeelGenProbe.ts'))).toBe(true);
    expect(readFileSync(join(project.generated, 'internal/class.ts'), 'utf8')).toMatch(
      /get keelGenProbe\(\): Prisma\.KeelGenProbeDelegate/,
    );
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^migration \d{14}_add_probe created and applied/),
        expect.stringMatching(/^generating the Prisma client from .*schema\.prisma \.\.\.$/),
        'Prisma client generated: the new models are on `db`',
      ]),
    );
  }, 120_000);

  test('with --create-only applies nothing and generates nothing: the migration may still be edited', async () => {
    const project = projectWithNewModel();
    const db = await scratchDatabase();
    const generated: GenerateOptions[] = [];
    const generate = async (options: GenerateOptions) => {
      generated.push(options);
    };

    const created = await devCommand({
      databaseUrl: db.url,
      log: () => {},
      schemaPath: project.schemaPath,
      migrationsDir: project.migrationsDir,
      name: 'add probe',
      createOnly: true,
      generate,
    });
    expect(created.migration).toMatch(/_add_probe$/);
    expect(generated).toEqual([]);

    // Applying it later (a second run, nothing new to create) generates.
    await devCommand({
      databaseUrl: db.url,
      log: () => {},
      schemaPath: project.schemaPath,
      migrationsDir: project.migrationsDir,
      name: 'again',
      generate,
    });
    expect(await tableExists(db.url, 'keel_gen_probe')).toBe(true);
    expect(generated).toEqual([{ schemaPath: project.schemaPath }]);
  }, 120_000);
});
