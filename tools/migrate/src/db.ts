/**
 * Keel's offline migration commands, interchangeable with Prisma's (same `_prisma_migrations`
 * bookkeeping); see docs/decisions/0003-offline-migrations.md.
 *
 *   pnpm db:migrate                                   apply pending migrations (= prisma migrate deploy)
 *   pnpm db:migrate:dev --name <name> [--create-only] [--accept-data-loss]
 *                                                     create a migration from schema.prisma, apply it, regenerate the client
 *   pnpm db:status                                    exit 1 when pending/failed/edited migrations or drift
 *   pnpm db:resolve --applied <name> | --rolled-back <name>
 *   pnpm db:reset [--force]                           drop everything, re-apply all migrations (not in production)
 *
 * The database is $DATABASE_URL, or the project's embedded PostgreSQL when it is unset.
 */

import { resolve } from 'node:path';
import { stdin, stdout } from 'node:process';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { loadDotEnv, PROJECT_ROOT, readEnv } from '../../../server/src/config.js';
import { assertResetAllowed, MigrationError } from '../../../server/src/db/migrations/runner.js';
import { redactUrl } from '../../../server/src/db/wait.js';
import { type CommandContext, devCommand, migrateCommand, resetCommand, resolveCommand, statusCommand } from './commands.js';
import { PrismaGenerateError } from './prisma-generate.js';

const USAGE = `usage: tsx tools/migrate/src/db.ts <command> [options]
  migrate                                  apply pending migrations
  dev --name <name> [--create-only] [--accept-data-loss]
                                           create a migration from prisma/schema.prisma, apply it and regenerate the Prisma client
  status                                   exit code 1 when migrations are pending, failed, edited, or the database drifted
  resolve --applied <name> | --rolled-back <name>
  reset [--force]                          drop everything in the public schema and re-apply all migrations`;

const log = (msg: string): void => {
  stdout.write(`[keel] db: ${msg}\n`);
};

class UsageError extends Error {}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: stdin, output: stdout });
  try {
    const answer = await rl.question(`[keel] db: ${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

interface Database {
  url: string;
  stop(): Promise<void>;
}

async function openDatabase(): Promise<Database> {
  const configured = readEnv('DATABASE_URL');
  if (configured) {
    log(`database: ${redactUrl(configured)} (DATABASE_URL)`);
    return { url: configured, stop: async () => {} };
  }
  // Loaded only when needed: the embedded server is for development machines without DATABASE_URL.
  const { ensureDatabase } = await import('../../../server/src/db/embedded.js');
  const handle = await ensureDatabase({ log, dir: resolve(PROJECT_ROOT, readEnv('EMBEDDED_PG_DIR') ?? '.data/postgres') });
  log(`database: ${redactUrl(handle.url)} (embedded; set DATABASE_URL to use another)`);
  return handle;
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string', short: 'n' },
      'create-only': { type: 'boolean', default: false },
      'accept-data-loss': { type: 'boolean', default: false },
      applied: { type: 'string' },
      'rolled-back': { type: 'string' },
      force: { type: 'boolean', short: 'f', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help || !command) {
    stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const allowed: Record<string, string[]> = {
    migrate: [],
    dev: ['name', 'create-only', 'accept-data-loss'],
    status: [],
    resolve: ['applied', 'rolled-back'],
    reset: ['force'],
  };
  const accepted = allowed[command];
  if (!accepted) throw new UsageError(`unknown command "${command}"`);
  for (const [key, value] of Object.entries(values)) {
    if (key !== 'help' && value !== undefined && value !== false && !accepted.includes(key)) {
      throw new UsageError(`--${key} does not apply to "${command}"`);
    }
  }
  if (command === 'dev' && !values.name) throw new UsageError('dev needs --name <name> (e.g. --name add_posts)');
  if (command === 'resolve' && (values.applied === undefined) === (values['rolled-back'] === undefined)) {
    throw new UsageError('resolve needs exactly one of --applied <migration> or --rolled-back <migration>');
  }
  if (command === 'reset') assertResetAllowed(readEnv('NODE_ENV')); // before starting any database

  const db = await openDatabase();
  try {
    const ctx: CommandContext = { databaseUrl: db.url, log };
    switch (command) {
      case 'migrate':
        await migrateCommand(ctx);
        return 0;
      case 'status':
        return (await statusCommand(ctx)).exitCode;
      case 'dev':
        await devCommand({
          ...ctx,
          name: values.name as string,
          createOnly: values['create-only'],
          acceptDataLoss: values['accept-data-loss'],
          confirmDataLoss: async () => {
            if (!stdin.isTTY) {
              log('data loss needs confirmation, and stdin is not a terminal: re-run with --accept-data-loss to go on');
              return false;
            }
            return confirm(`Are you sure you want to ${values['create-only'] ? 'create' : 'create and apply'} this migration?`);
          },
        });
        return 0;
      case 'resolve':
        await resolveCommand({ ...ctx, applied: values.applied, rolledBack: values['rolled-back'] });
        return 0;
      case 'reset':
        if (!values.force && !stdin.isTTY) {
          // A deploy job or cron with the wrong DATABASE_URL must not drop a database unasked.
          log('reset drops every table and row, and stdin is not a terminal to confirm it: re-run with --force to go on');
          return 1;
        }
        if (!values.force && !(await confirm('Drop every table and row of this database and re-apply all migrations?'))) {
          log('reset cancelled: nothing changed');
          return 1;
        }
        await resetCommand({ ...ctx, nodeEnv: readEnv('NODE_ENV') });
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } finally {
    await db.stop();
  }
}

loadDotEnv();
try {
  process.exitCode = await run(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`[keel] db: ${(error as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (error instanceof PrismaGenerateError) {
    // The migration is applied by then: only the client is stale.
    process.stderr.write(
      `[keel] db: error: ${error.message}\n[keel] db: the database is migrated; fix the error above and run \`pnpm db:generate\`.\n`,
    );
    process.exitCode = 1;
  } else if (error instanceof MigrationError) {
    process.stderr.write(`[keel] db: error: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(
      `[keel] db: error: ${message}\n[keel] db: is the database reachable? Check DATABASE_URL (or unset it to use the embedded PostgreSQL).\n`,
    );
    process.exitCode = 1;
  }
}
