/**
 * `pnpm new:module` end to end, on a temporary copy of the repository (its node_modules linked):
 * the module is generated and wired in, the client regenerated; `pnpm db:migrate:dev` creates its
 * table; the copy type-checks with the repository's tsc, the new files pass Biome, and the
 * generated test passes with Vitest inside the copy, on this run's database server. Under long/:
 * about a minute on a busy 2-core machine, most of it the typecheck of the whole server.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createModule, type NewModuleResult } from '../../../server/src/scripts/new-module/create.js';
import { devCommand } from '../../../tools/migrate/src/commands.js';
import { createScratchDatabase } from '../../support/database.js';
import { REPO_ROOT } from '../../support/process.js';

const run = promisify(execFile);
const STEP_TIMEOUT_MS = 240_000;
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
const VITEST = join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');
const BIOME = join(REPO_ROOT, 'node_modules/@biomejs/biome/bin/biome');

/** What a module needs from the repository: the server, the schema and migrations, the test harness and the configs. */
const COPIED = [
  '.gitignore',
  'package.json',
  'tsconfig.base.json',
  'biome.json',
  'prisma.config.ts',
  'vitest.config.ts',
  'vitest.workspace.ts',
  'prisma',
  'server/package.json',
  'server/src',
  'tools/migrate/package.json',
  'tools/migrate/src',
  'tests/support',
];

const root = mkdtempSync(join(tmpdir(), 'keel-new-module-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let result: NewModuleResult;

async function sh(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  try {
    return await run(command, args, { cwd: root, env, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${root}:\n${stdout}\n${stderr}`);
  }
}

beforeAll(async () => {
  for (const path of COPIED) cpSync(join(REPO_ROOT, path), join(root, path), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  symlinkSync(join(REPO_ROOT, 'server/node_modules'), join(root, 'server/node_modules'), 'dir');
  symlinkSync(join(REPO_ROOT, 'tools/migrate/node_modules'), join(root, 'tools/migrate/node_modules'), 'dir');
  // The server and the tests, without the parts of the repository that were not copied.
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({ extends: './tsconfig.base.json', compilerOptions: { noEmit: true }, include: ['server/src', 'tests'] }),
  );

  // What `pnpm new:module bird-sightings` does, and then `pnpm db:migrate:dev --name add_bird_sightings`.
  result = await createModule({ root, name: 'bird-sightings' });
  const db = await createScratchDatabase();
  try {
    await devCommand({
      databaseUrl: db.url,
      log: () => {},
      schemaPath: join(root, 'prisma/schema.prisma'),
      migrationsDir: join(root, 'prisma/migrations'),
      name: 'add_bird_sightings',
      // createModule generated the client from this very schema already.
      generate: async () => {},
    });
  } finally {
    await db.drop();
  }
}, STEP_TIMEOUT_MS);

describe('pnpm new:module bird-sightings', () => {
  it('writes the module, its test and a migration for its table', () => {
    expect(result.names).toMatchObject({ camel: 'birdSightings', model: 'BirdSighting', snake: 'bird_sightings' });
    expect(readdirSync(join(root, 'server/src/modules/bird-sightings')).sort()).toEqual(['router.ts', 'schemas.ts', 'service.ts']);
    expect(readdirSync(join(root, 'prisma/migrations')).filter((name) => name.endsWith('_add_bird_sightings'))).toHaveLength(1);
  });

  it(
    'type-checks: the server with the module wired in, and the generated test',
    async () => {
      const { stdout } = await sh(process.execPath, [TSC, '-p', join(root, 'tsconfig.json')]);
      expect(stdout).toBe('');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    "passes the repository's lint and format rules",
    async () => {
      await sh(process.execPath, [BIOME, 'check', ...result.created, ...result.changed.filter((f) => f.endsWith('.ts'))]);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'passes its generated test, on a database migrated with its migration',
    async () => {
      mkdirSync(join(root, 'coverage'), { recursive: true });
      const { FORCE_COLOR: _color, ...inherited } = process.env;
      const env = { ...inherited, NO_COLOR: '1', TEST_DATABASE_URL: inject('keelTestDb').adminUrl };
      const { stdout } = await sh(process.execPath, [VITEST, 'run', '--project', 'integration', 'tests/modules/bird-sightings'], env);
      expect(stdout).toMatch(/Tests\s+5 passed \(5\)/);
    },
    STEP_TIMEOUT_MS,
  );
});
