/**
 * The `pnpm db:*` commands as functions (the CLI in tools/migrate/src/db.ts parses arguments and
 * calls these; tests call them directly). Each logs one line per step through `log`.
 */
import { relative } from 'node:path';
import {
  applyMigrations,
  DEFAULT_MIGRATIONS_DIR,
  MigrationError,
  type MigrationStatus,
  migrationStatus,
  resetDatabase,
  resolveMigration,
} from '../../../server/src/db/migrations/runner.js';
import {
  type CreateMigrationResult,
  createMigration,
  DEFAULT_SCHEMA_PATH,
  diffMigrationsToDatabase,
  type SchemaEngineSession,
} from './engine.js';
import { type GenerateOptions, generatePrismaClient } from './prisma-generate.js';

export interface CommandContext {
  databaseUrl: string;
  log: (msg: string) => void;
  migrationsDir?: string;
  schemaPath?: string;
  /** An open schema engine bound to `databaseUrl`, to reuse (tests); else one is opened when needed. */
  engine?: SchemaEngineSession;
}

function dirOpts(ctx: CommandContext): { migrationsDir?: string } {
  return ctx.migrationsDir ? { migrationsDir: ctx.migrationsDir } : {};
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `pnpm db:migrate`: apply pending migrations. */
export async function migrateCommand(ctx: CommandContext): Promise<{ applied: string[] }> {
  const result = await applyMigrations({ databaseUrl: ctx.databaseUrl, log: ctx.log, ...dirOpts(ctx) });
  ctx.log(
    result.applied.length > 0
      ? `${plural(result.applied.length, 'migration')} applied: database is up to date`
      : 'no pending migrations: database is up to date',
  );
  return result;
}

export interface StatusReport {
  /** 0: up to date. 1: pending, failed, edited or missing migrations, or drift. */
  exitCode: 0 | 1;
  status: MigrationStatus;
  /** What differs between the migrations' schema and the live database (engine summary); empty if none or not checked. */
  drift: string;
  /** One message per problem, each saying what to do. */
  problems: string[];
}

/**
 * `pnpm db:status`: the migration history against the local folders, then (when the history is
 * sound) drift: the schema the applied migrations build, diffed with the live database.
 */
export async function statusCommand(ctx: CommandContext): Promise<StatusReport> {
  const status = await migrationStatus({ databaseUrl: ctx.databaseUrl, ...dirOpts(ctx) });
  const dirLabel = relative(process.cwd(), ctx.migrationsDir ?? DEFAULT_MIGRATIONS_DIR) || '.';
  ctx.log(`${plural(status.local.length, 'migration')} in ${dirLabel}, ${status.applied.length} applied to the database`);
  const problems: string[] = [];
  for (const failed of status.failed) {
    problems.push(
      `migration ${failed.name} failed (started ${failed.startedAt.toISOString()})${failed.logs?.trim() ? `:\n${failed.logs.trim()}\n` : '. '}` +
        `Fix the SQL or the data, then run \`pnpm db:resolve --rolled-back ${failed.name}\` and \`pnpm db:migrate\`.`,
    );
  }
  for (const name of status.modified) {
    problems.push(
      `migration ${name} was modified after it was applied (checksum mismatch). Restore the original file and put the change in a new migration (\`pnpm db:migrate:dev --name <what-changed>\`).`,
    );
  }
  for (const name of status.missingLocally) {
    problems.push(
      `migration ${name} is applied to the database but missing from ${dirLabel}. Check out the code that has it, or reset a development database (\`pnpm db:reset\`).`,
    );
  }
  if (status.pending.length > 0) {
    problems.push(`${plural(status.pending.length, 'migration')} not yet applied: ${status.pending.join(', ')}. Run \`pnpm db:migrate\`.`);
  }

  let drift = '';
  if (status.failed.length === 0 && status.modified.length === 0 && status.missingLocally.length === 0) {
    ctx.log('checking for drift: the applied migrations, replayed in a shadow database, against the live database ...');
    drift = await diffMigrationsToDatabase(ctx.databaseUrl, {
      ...dirOpts(ctx),
      ...(ctx.schemaPath ? { schemaPath: ctx.schemaPath } : {}),
      ...(ctx.engine ? { engine: ctx.engine } : {}),
      only: status.applied,
      script: false,
      log: () => {},
    });
    if (drift) {
      problems.push(
        `the database schema has drifted from the migrations (changed outside them):\n${drift}\n` +
          'To keep the change, make it in schema.prisma and run `pnpm db:migrate:dev --name <what-changed>`; ' +
          'to undo it on a development database, run `pnpm db:reset`.',
      );
    }
  } else {
    ctx.log('drift not checked: fix the migration history first');
  }

  if (problems.length === 0) {
    ctx.log('Database is up to date');
    return { exitCode: 0, status, drift, problems };
  }
  for (const problem of problems) ctx.log(problem);
  return { exitCode: 1, status, drift, problems };
}

export interface DevOptions extends CommandContext {
  name: string;
  createOnly?: boolean;
  acceptDataLoss?: boolean;
  confirmDataLoss?: (warnings: string[]) => boolean | Promise<boolean>;
  /** Regenerates the Prisma client from the schema (default: `prisma generate`, output on the terminal). */
  generate?: (options: GenerateOptions) => Promise<void>;
}

/**
 * `pnpm db:migrate:dev --name <name> [--create-only] [--accept-data-loss]`: creates the migration,
 * applies it, then regenerates the Prisma client, so the new model is on `db` for the typecheck and
 * for the running dev server (which restarts on the regenerated files). `--create-only` applies
 * nothing, and so generates nothing: the migration may still be edited.
 */
export async function devCommand(opts: DevOptions): Promise<CreateMigrationResult> {
  const result = await createMigration({
    databaseUrl: opts.databaseUrl,
    name: opts.name,
    log: opts.log,
    ...dirOpts(opts),
    ...(opts.schemaPath ? { schemaPath: opts.schemaPath } : {}),
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.createOnly ? { createOnly: true } : {}),
    ...(opts.acceptDataLoss ? { acceptDataLoss: true } : {}),
    ...(opts.confirmDataLoss ? { confirmDataLoss: opts.confirmDataLoss } : {}),
  });
  if (result.migration && !opts.createOnly) opts.log(`migration ${result.migration} created and applied: database is up to date`);
  if (!opts.createOnly) {
    const schema = relative(process.cwd(), opts.schemaPath ?? DEFAULT_SCHEMA_PATH) || '.';
    opts.log(`generating the Prisma client from ${schema} ...`);
    await (opts.generate ?? generatePrismaClient)(opts.schemaPath ? { schemaPath: opts.schemaPath } : {});
    opts.log('Prisma client generated: the new models are on `db`');
  }
  return result;
}

export interface ResolveCommandOptions extends CommandContext {
  applied?: string | undefined;
  rolledBack?: string | undefined;
}

/** `pnpm db:resolve --applied <name>` / `--rolled-back <name>`. */
export async function resolveCommand(opts: ResolveCommandOptions): Promise<void> {
  if ((opts.applied === undefined) === (opts.rolledBack === undefined)) {
    throw new MigrationError('refused', 'give exactly one of --applied <migration> or --rolled-back <migration>.');
  }
  const name = (opts.applied ?? opts.rolledBack) as string;
  await resolveMigration({
    databaseUrl: opts.databaseUrl,
    log: opts.log,
    ...dirOpts(opts),
    name,
    as: opts.applied !== undefined ? 'applied' : 'rolled-back',
  });
}

/** `pnpm db:reset`: drop everything in the public schema, re-apply every migration. Refused in production. */
export async function resetCommand(opts: CommandContext & { nodeEnv?: string | undefined }): Promise<{ applied: string[] }> {
  const result = await resetDatabase({ databaseUrl: opts.databaseUrl, log: opts.log, ...dirOpts(opts), nodeEnv: opts.nodeEnv });
  opts.log(`database reset: ${plural(result.applied.length, 'migration')} applied`);
  return result;
}
