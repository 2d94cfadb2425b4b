/**
 * `pnpm new:module <name> [--model <Model>]`: a new feature module after the `projects` one.
 *
 * Writes server/src/modules/<name>/{router,schemas,service}.ts and tests/modules/<name>/<name>.test.ts,
 * mounts the router in server/src/router.ts, registers the service in server/src/services.ts (its
 * type) and server/src/deps.ts (its factory), adds a
 * model (owned by a User) to prisma/schema.prisma and regenerates the Prisma client, so the result
 * type-checks at once; then prints what is left: the migration, the rules, the access cases and
 * the OpenAPI snapshot. Refuses reserved or taken names, and never overwrites a file.
 */
import { parseArgs } from 'node:util';
import { PrismaGenerateError } from '../../../tools/migrate/src/prisma-generate.js';
import { PROJECT_ROOT } from '../config.js';
import { createModule, NewModuleError } from './new-module/create.js';
import { ModuleNameError } from './new-module/names.js';
import { accessCases } from './new-module/templates.js';

const USAGE = `usage: pnpm new:module <name> [--model <Model>]
  <name>           the feature, plural, kebab-case or camelCase: widgets, team-members, teamMembers
  --model <Model>  the Prisma model when the singular of <name> is not the right one (default: widgets -> Widget)`;

const out = (line = '') => process.stdout.write(`${line}\n`);

try {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { model: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
  });
  if (values.help) {
    out(USAGE);
    process.exit(0);
  }
  const [name, ...extra] = positionals;
  if (!name || extra.length > 0) throw new ModuleNameError('give exactly one module name');

  const result = await createModule({ root: PROJECT_ROOT, name, model: values.model });
  const n = result.names;
  out(`[keel] new module ${n.camel}: model ${n.model} (table ${n.snake}), REST under /api/${n.kebab}`);
  for (const file of result.created) out(`  created  ${file}`);
  for (const file of result.changed) out(`  changed  ${file}`);
  out(`  Prisma client regenerated: db.${n.entity} exists (its table does not yet).`);
  out();
  out('Next:');
  out(`  1. Review model ${n.model} at the end of prisma/schema.prisma (add the feature's fields), then create its table:`);
  out(`       pnpm db:migrate:dev --name add_${n.snake}`);
  out(`  2. Write the rules in server/src/modules/${n.kebab}/service.ts (fields in schemas.ts), a test for each in`);
  out(`     tests/modules/${n.kebab}/${n.kebab}.test.ts:  pnpm vitest run tests/modules/${n.kebab}`);
  out('  3. Add the access cases to `cases` in tests/modules/access.test.ts (it fails until you do), and a row of');
  out(`     user A (its id as rows.${n.entity}Id) in its beforeAll:`);
  for (const line of accessCases(n)) out(`       ${line}`);
  out('  4. pnpm openapi:generate, and commit the updated OpenAPI snapshot and types with the module.');
  out(`  5. pnpm typecheck && pnpm lint && pnpm test. The SDK sees ${n.camel}.* at once; apps get it from pnpm sdk:pack`);
  out('     (or live with pnpm sdk:watch when they link the SDK).');
} catch (error) {
  if (error instanceof ModuleNameError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`[keel] new:module: ${(error as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (error instanceof NewModuleError) {
    process.stderr.write(`[keel] new:module: ${error.message}\n`);
    process.exitCode = 1;
  } else if (error instanceof PrismaGenerateError) {
    process.stderr.write(
      `[keel] new:module: the module is written, but ${error.message}\nFix prisma/schema.prisma and run pnpm db:generate.\n`,
    );
    process.exitCode = 1;
  } else {
    throw error;
  }
}
