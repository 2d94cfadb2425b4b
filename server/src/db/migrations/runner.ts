/**
 * Keel's migration runner: the deploy path (`pnpm db:migrate`, every server start, the test
 * template). It depends on nothing but `pg` and keeps the same books as Prisma's schema engine
 * (`_prisma_migrations`, same columns, same checksums, same advisory lock), so Keel and
 * `prisma migrate deploy` are interchangeable on one database. See docs/decisions/0003-offline-migrations.md.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { guardClient } from '../connections.js';
import { quoteIdent } from '../identifiers.js';

/** The repository's `prisma/migrations` directory. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../../prisma/migrations', import.meta.url));

/** The key Prisma's schema engine locks (`pg_advisory_lock(72707369)`): Keel and Prisma never migrate at once. */
export const MIGRATION_LOCK_KEY = 72707369;

export const MIGRATIONS_TABLE = '_prisma_migrations';

export type MigrationErrorCode =
  | 'apply-failed'
  | 'failed-migration'
  | 'modified'
  | 'missing-locally'
  | 'not-empty'
  | 'lock-timeout'
  | 'bad-migrations-dir'
  | 'not-found'
  | 'invalid-state'
  | 'drift'
  | 'data-loss'
  | 'unexecutable'
  | 'refused'
  | 'engine';

/** A migration problem with a message that says what to do next. `migrations` names the migrations concerned. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    readonly migrations: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface LocalMigration {
  /** The folder name, e.g. `20261126112526_init`. */
  name: string;
  /** Absolute path of its `migration.sql`. */
  path: string;
  script: string;
  /** Hex SHA-256 of the file's bytes, as Prisma records it. */
  checksum: string;
}

/** Hex SHA-256 of a migration script: what Prisma stores in `_prisma_migrations.checksum`. */
export function migrationChecksum(script: string | Uint8Array): string {
  return createHash('sha256').update(script).digest('hex');
}

/**
 * Whether `script` matches a recorded checksum, with Prisma's tolerance: either line-ending
 * convention (git may rewrite them), and the non-zero-padded hex of very old Prisma versions.
 */
export function checksumMatches(script: string, recorded: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')];
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant).digest();
    const hex = recorded.length !== 64 && recorded.length > 0 ? [...digest].map((b) => b.toString(16)).join('') : digest.toString('hex');
    return hex === recorded;
  });
}

/** Prisma's CLI orders migration folders with `localeCompare`; so do we, so both apply in the same order. */
export function compareMigrationNames(a: string, b: string): number {
  return a.localeCompare(b);
}

/** The migrations folders of `dir` in apply order. A missing directory means no migrations. */
export async function readLocalMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<LocalMigration[]> {
  if (!existsSync(dir)) return [];
  const lockfile = join(dir, 'migration_lock.toml');
  if (existsSync(lockfile)) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(await readFile(lockfile, 'utf8'))?.[1];
    if (provider !== undefined && provider !== 'postgresql') {
      throw new MigrationError(
        'bad-migrations-dir',
        `${lockfile} says provider = "${provider}", but Keel migrates PostgreSQL: these migrations were written for another database.`,
      );
    }
  }
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort(compareMigrationNames);
  const migrations: LocalMigration[] = [];
  for (const name of names) {
    const path = join(dir, name, 'migration.sql');
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      throw new MigrationError(
        'bad-migrations-dir',
        `${join(dir, name)} has no readable migration.sql. Every folder in ${dir} is a migration: add the file or remove the folder.`,
        [name],
      );
    }
    migrations.push({ name, path, script: bytes.toString('utf8'), checksum: migrationChecksum(bytes) });
  }
  return migrations;
}

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

export interface FailedMigration {
  name: string;
  startedAt: Date;
  logs: string | null;
}

export interface MigrationStatus {
  /** Every local migration, in apply order. */
  local: string[];
  /** Local or not, recorded as successfully applied (and not rolled back). */
  applied: string[];
  /** Local migrations not applied yet, in apply order. */
  pending: string[];
  /** Recorded as started but neither finished nor rolled back: they block further deploys. */
  failed: FailedMigration[];
  /** Applied migrations whose local file changed since (checksum mismatch). */
  modified: string[];
  /** Applied migrations that have no folder here. */
  missingLocally: string[];
  hasMigrationsTable: boolean;
}

export interface StatusOptions {
  databaseUrl: string;
  migrationsDir?: string;
}

function qualifiedTable(schema: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(MIGRATIONS_TABLE)}`;
}

async function currentSchema(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
  const schema = rows[0]?.schema;
  if (!schema)
    throw new MigrationError('refused', 'the connection has no current schema (empty search_path?): set search_path to include public.');
  return schema;
}

async function hasTable(client: pg.ClientBase, schema: string): Promise<boolean> {
  const { rows } = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [qualifiedTable(schema)]);
  return rows[0]?.oid != null;
}

async function readRows(client: pg.ClientBase, schema: string): Promise<MigrationRow[]> {
  const { rows } = await client.query<MigrationRow>(
    `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count
       FROM ${qualifiedTable(schema)} ORDER BY started_at, migration_name`,
  );
  return rows;
}

function computeStatus(local: LocalMigration[], rows: MigrationRow[], hasMigrationsTable: boolean): MigrationStatus {
  const live = rows.filter((r) => r.rolled_back_at === null);
  const failed = live.filter((r) => r.finished_at === null).map((r) => ({ name: r.migration_name, startedAt: r.started_at, logs: r.logs }));
  const appliedRows = live.filter((r) => r.finished_at !== null);
  const localByName = new Map(local.map((m) => [m.name, m]));
  const appliedNames = new Set(appliedRows.map((r) => r.migration_name));
  const modified = new Set<string>();
  const missingLocally = new Set<string>();
  for (const row of appliedRows) {
    const file = localByName.get(row.migration_name);
    if (!file) missingLocally.add(row.migration_name);
    else if (!checksumMatches(file.script, row.checksum)) modified.add(row.migration_name);
  }
  const recorded = new Set(live.map((r) => r.migration_name));
  return {
    local: local.map((m) => m.name),
    applied: [...appliedNames].sort(compareMigrationNames),
    pending: local.filter((m) => !recorded.has(m.name)).map((m) => m.name),
    failed,
    modified: [...modified].sort(compareMigrationNames),
    missingLocally: [...missingLocally].sort(compareMigrationNames),
    hasMigrationsTable,
  };
}

/** Where the database stands against the local migrations. Read-only: takes no lock, creates nothing. */
export async function migrationStatus(opts: StatusOptions): Promise<MigrationStatus> {
  const local = await readLocalMigrations(opts.migrationsDir);
  const client = guardClient(new pg.Client({ connectionString: opts.databaseUrl, application_name: 'keel-migrate-status' }));
  await client.connect();
  try {
    const schema = await currentSchema(client);
    const exists = await hasTable(client, schema);
    return computeStatus(local, exists ? await readRows(client, schema) : [], exists);
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when nothing is pending, failed, edited or missing. */
export function isUpToDate(status: MigrationStatus): boolean {
  return status.pending.length === 0 && status.failed.length === 0 && status.modified.length === 0 && status.missingLocally.length === 0;
}

function failedMigrationError(failed: FailedMigration[]): MigrationError {
  const names = failed.map((f) => f.name);
  const details = failed
    .map(
      (f) =>
        `- ${f.name} (started ${f.startedAt.toISOString()})${f.logs?.trim() ? `:\n    ${f.logs.trim().replaceAll('\n', '\n    ')}` : ''}`,
    )
    .join('\n');
  const first = names[0] ?? '';
  return new MigrationError(
    'failed-migration',
    `migration ${names.join(', ')} failed earlier and blocks further migrations:\n${details}\n` +
      `Fix the SQL or the data, then run \`pnpm db:resolve --rolled-back ${first}\` (it changed nothing: PostgreSQL rolled it back) ` +
      `and \`pnpm db:migrate\`; or, if you applied its changes by hand, \`pnpm db:resolve --applied ${first}\`.`,
    names,
  );
}

function historyErrors(status: MigrationStatus): MigrationError | undefined {
  if (status.modified.length > 0) {
    return new MigrationError(
      'modified',
      `migration ${status.modified.join(', ')} was edited after it was applied (its migration.sql no longer matches the recorded checksum). ` +
        'Restore the original file (git checkout) and put the change in a new migration (`pnpm db:migrate:dev --name <what-changed>`); ' +
        'on a development database, `pnpm db:reset` starts over.',
      status.modified,
    );
  }
  if (status.missingLocally.length > 0) {
    return new MigrationError(
      'missing-locally',
      `migration ${status.missingLocally.join(', ')} is applied to this database but has no folder in the migrations directory. ` +
        'This code is older than the database (or the folder was renamed or deleted): check out the branch that has it, ' +
        'or on a development database run `pnpm db:reset`.',
      status.missingLocally,
    );
  }
  return undefined;
}

export interface ApplyOptions {
  databaseUrl: string;
  migrationsDir?: string;
  log?: (msg: string) => void;
  /** How long to wait for another process's migration lock. Default 60 s. */
  lockTimeoutMs?: number;
}

async function connectForMigrations(databaseUrl: string): Promise<pg.Client> {
  // A dropped connection (and with it the lock) fails the pending query, which reports it.
  const client = guardClient(new pg.Client({ connectionString: databaseUrl, application_name: 'keel-migrate' }));
  await client.connect();
  return client;
}

/** Takes the migration advisory lock on `client`'s session, waiting at most `timeoutMs`. */
async function acquireLock(client: pg.Client, timeoutMs: number, log: (msg: string) => void): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_KEY]);
  if (rows[0]?.locked) return;
  log(`waiting for the migration lock (another process is migrating this database) ...`);
  await client.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  } catch (error) {
    if ((error as { code?: string }).code === '57014') {
      throw new MigrationError(
        'lock-timeout',
        `timed out after ${timeoutMs} ms waiting for the migration lock (pg_advisory_lock(${MIGRATION_LOCK_KEY})), held by another process. ` +
          `Find it with \`select pid, application_name from pg_locks join pg_stat_activity using (pid) where locktype = 'advisory' and objid = ${MIGRATION_LOCK_KEY}\`, ` +
          'let it finish (or stop it), then retry.',
      );
    }
    throw error;
  } finally {
    await client.query('RESET statement_timeout').catch(() => {});
  }
}

async function releaseAndEnd(client: pg.Client): Promise<void> {
  try {
    await client.query('SELECT pg_advisory_unlock_all()');
  } catch {
    // the connection is gone: so is its lock
  }
  await client.end().catch(() => {});
}

/**
 * Runs `fn` holding the migration lock on a dedicated connection, then releases the lock and ends
 * the connection whatever happens.
 */
export async function withMigrationLock<T>(
  opts: { databaseUrl: string; log?: (msg: string) => void; lockTimeoutMs?: number },
  fn: (client: pg.Client, schema: string) => Promise<T>,
): Promise<T> {
  const log = opts.log ?? (() => {});
  const client = await connectForMigrations(opts.databaseUrl);
  try {
    await acquireLock(client, opts.lockTimeoutMs ?? 60_000, log);
    return await fn(client, await currentSchema(client));
  } finally {
    await releaseAndEnd(client);
  }
}

/** Prisma's own DDL for the migrations table (schema engine, PostgreSQL flavour). */
function createTableSql(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualifiedTable(schema)} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;
}

/**
 * Creates `_prisma_migrations` when absent. Like Prisma, refuses a database that already has
 * tables but no migrations table unless `allowNonEmpty` (baselining through `resolve --applied`).
 */
async function ensureMigrationsTable(
  client: pg.Client,
  schema: string,
  opts: { allowNonEmpty: boolean; firstMigration?: string },
): Promise<void> {
  if (await hasTable(client, schema)) return;
  if (!opts.allowNonEmpty) {
    const { rows } = await client.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname LIMIT 5`,
      [schema],
    );
    if (rows.length > 0) {
      const first = opts.firstMigration ?? '<first migration>';
      throw new MigrationError(
        'not-empty',
        `the database already has tables (${rows.map((r) => r.relname).join(', ')}) but no ${MIGRATIONS_TABLE} table: it was not built by these migrations. ` +
          `To adopt it, make sure its schema matches the migrations and record them as applied (\`pnpm db:resolve --applied ${first}\`, then the next ones); ` +
          'for a development database, `pnpm db:reset` starts over.',
      );
    }
  }
  await client.query(createTableSql(schema));
}

function describePgError(error: unknown): { message: string; logs: string } {
  if (typeof error !== 'object' || error === null) return { message: String(error), logs: String(error) };
  const e = error as { message?: string; code?: string; detail?: string; hint?: string; position?: string; where?: string };
  const message = e.message ?? String(error);
  const lines = [`Database error code: ${e.code ?? 'unknown'}`, '', 'Database error:', `ERROR: ${message}`];
  if (e.detail) lines.push(`DETAIL: ${e.detail}`);
  if (e.hint) lines.push(`HINT: ${e.hint}`);
  if (e.where) lines.push(`CONTEXT: ${e.where}`);
  if (e.position) lines.push(`POSITION: ${e.position}`);
  return { message: `${message}${e.code ? ` (SQLSTATE ${e.code})` : ''}`, logs: lines.join('\n') };
}

/** Statements PostgreSQL refuses inside a transaction block (so also in a multi-statement query). */
const OUTSIDE_TRANSACTION = /\b(CONCURRENTLY|VACUUM)\b/i;

async function applyOne(client: pg.Client, schema: string, migration: LocalMigration): Promise<void> {
  const table = qualifiedTable(schema);
  const id = randomUUID();
  await client.query(`INSERT INTO ${table} (id, checksum, started_at, migration_name) VALUES ($1, $2, now(), $3)`, [
    id,
    migration.checksum,
    migration.name,
  ]);
  // Recorded as finished in the same implicit transaction as the script: a process killed (or a
  // connection lost) between the two could otherwise leave an applied migration looking failed,
  // and the advice for failed ones (resolve --rolled-back, migrate) would run it twice. The id is
  // our own UUID, safe to inline: a simple query takes no parameters.
  const finish = `UPDATE ${table} SET finished_at = now(), applied_steps_count = applied_steps_count + 1 WHERE id = '${id}'`;
  // A statement that cannot run inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM)
  // works only alone in its migration, sent alone: then the record follows separately.
  const alone = OUTSIDE_TRANSACTION.test(migration.script);
  try {
    // One simple-protocol query (no parameters): PostgreSQL runs the whole script as one implicit
    // transaction, so a failure leaves nothing half applied. Never split on `;`.
    await client.query(alone ? migration.script : `${migration.script}\n;\n${finish}`);
  } catch (error) {
    // A script with its own BEGIN may leave the session inside an aborted transaction block.
    await client.query('ROLLBACK').catch(() => {});
    const { message, logs } = describePgError(error);
    await client.query(`UPDATE ${table} SET logs = $2 WHERE id = $1`, [id, logs]);
    throw new MigrationError(
      'apply-failed',
      `migration ${migration.name} failed: ${message}. Nothing of it was applied. ` +
        `Fix the SQL or the data, then run \`pnpm db:resolve --rolled-back ${migration.name}\` and \`pnpm db:migrate\`.`,
      [migration.name],
    );
  }
  if (alone) await client.query(finish);
}

/**
 * Applies the pending migrations in order, each as one implicit transaction, under Prisma's
 * advisory lock. Throws `MigrationError` (naming the migration and what to do) on a failed,
 * edited or locally missing migration. Concurrent callers apply each migration exactly once.
 */
export async function applyMigrations(opts: ApplyOptions): Promise<{ applied: string[] }> {
  const log = opts.log ?? (() => {});
  const local = await readLocalMigrations(opts.migrationsDir);
  return withMigrationLock(opts, async (client, schema) => {
    await ensureMigrationsTable(client, schema, { allowNonEmpty: false, firstMigration: local[0]?.name });
    // Read the history only now that we hold the lock: another process may just have migrated.
    const status = computeStatus(local, await readRows(client, schema), true);
    if (status.failed.length > 0) throw failedMigrationError(status.failed);
    const problem = historyErrors(status);
    if (problem) throw problem;
    const byName = new Map(local.map((m) => [m.name, m]));
    const applied: string[] = [];
    for (const name of status.pending) {
      const migration = byName.get(name) as LocalMigration;
      log(`applying ${name} ...`);
      const started = performance.now();
      await applyOne(client, schema, migration);
      log(`applied ${name} in ${Math.round(performance.now() - started)} ms`);
      applied.push(name);
    }
    return { applied };
  });
}

export interface ResolveOptions {
  databaseUrl: string;
  migrationsDir?: string;
  log?: (msg: string) => void;
  name: string;
  /** `applied`: record it as applied without running it. `rolled-back`: mark its failed attempt rolled back. */
  as: 'applied' | 'rolled-back';
}

/** `prisma migrate resolve`, with the same rules and the same bookkeeping. */
export async function resolveMigration(opts: ResolveOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const local = await readLocalMigrations(opts.migrationsDir);
  await withMigrationLock(opts, async (client, schema) => {
    const table = qualifiedTable(schema);
    if (opts.as === 'rolled-back') {
      const exists = await hasTable(client, schema);
      const rows = exists ? await readRows(client, schema) : [];
      const failed = rows.filter((r) => r.migration_name === opts.name && r.finished_at === null && r.rolled_back_at === null);
      if (failed.length === 0) {
        throw new MigrationError(
          'invalid-state',
          `migration ${opts.name} cannot be marked rolled back: it is not in a failed state in this database (only a failed migration can be; see \`pnpm db:status\`).`,
          [opts.name],
        );
      }
      await client.query(`UPDATE ${table} SET rolled_back_at = now() WHERE id = ANY($1::text[])`, [failed.map((r) => r.id)]);
      log(`marked ${opts.name} as rolled back: \`pnpm db:migrate\` will apply it again`);
      return;
    }
    const migration = local.find((m) => m.name === opts.name);
    if (!migration) {
      throw new MigrationError(
        'not-found',
        `there is no migration ${opts.name} in ${opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR} (give the folder name, e.g. ${local.at(-1)?.name ?? '20261126120000_init'}).`,
        [opts.name],
      );
    }
    await ensureMigrationsTable(client, schema, { allowNonEmpty: true });
    const rows = await readRows(client, schema);
    const live = rows.filter((r) => r.migration_name === opts.name && r.rolled_back_at === null);
    if (live.some((r) => r.finished_at !== null)) {
      throw new MigrationError('invalid-state', `migration ${opts.name} is already recorded as applied in this database.`, [opts.name]);
    }
    await client.query('BEGIN');
    try {
      const failedIds = live.map((r) => r.id);
      if (failedIds.length > 0) await client.query(`UPDATE ${table} SET rolled_back_at = now() WHERE id = ANY($1::text[])`, [failedIds]);
      await client.query(
        `INSERT INTO ${table} (id, checksum, logs, started_at, finished_at, migration_name) VALUES ($1, $2, '', now(), now(), $3)`,
        [randomUUID(), migration.checksum, opts.name],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
    log(`marked ${opts.name} as applied (its SQL was not run)`);
  });
}

export interface ResetOptions {
  databaseUrl: string;
  migrationsDir?: string;
  log?: (msg: string) => void;
  /** The caller's NODE_ENV (from config): `production` is refused. */
  nodeEnv: string | undefined;
}

/** Throws when `nodeEnv` is `production`: a reset there would delete real data. */
export function assertResetAllowed(nodeEnv: string | undefined): void {
  if (nodeEnv === 'production') {
    throw new MigrationError(
      'refused',
      'db:reset deletes every table and row, so it is refused when NODE_ENV=production. ' +
        'If this really is a development database, run it without NODE_ENV=production; to change a production schema, use a migration (`pnpm db:migrate`).',
    );
  }
}

/**
 * Drops everything in the current schema (`public`), recreating it with the same owner, grants
 * and comment, then applies every migration. Refused when NODE_ENV=production.
 */
export async function resetDatabase(opts: ResetOptions): Promise<{ applied: string[] }> {
  const log = opts.log ?? (() => {});
  assertResetAllowed(opts.nodeEnv);
  await readLocalMigrations(opts.migrationsDir); // a broken migrations dir fails before anything is dropped
  await withMigrationLock(opts, async (client, schema) => {
    const { rows } = await client.query<{ owner: string; comment: string | null }>(
      `SELECT n.nspowner::regrole::text AS owner, obj_description(n.oid, 'pg_namespace') AS comment
         FROM pg_namespace n WHERE n.nspname = $1`,
      [schema],
    );
    const { rows: grants } = await client.query<{ grantee: string; privilege: string; grantable: boolean }>(
      `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,
              a.privilege_type AS privilege, a.is_grantable AS grantable
         FROM pg_namespace n, aclexplode(n.nspacl) a
        WHERE n.nspname = $1 AND a.grantee <> n.nspowner`,
      [schema],
    );
    const info = rows[0];
    const q = quoteIdent(schema);
    log(`dropping schema ${schema} and everything in it ...`);
    const statements = [`DROP SCHEMA ${q} CASCADE`, `CREATE SCHEMA ${q}${info ? ` AUTHORIZATION ${info.owner}` : ''}`];
    for (const g of grants) {
      statements.push(`GRANT ${g.privilege} ON SCHEMA ${q} TO ${g.grantee}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
    }
    if (info?.comment != null) statements.push(`COMMENT ON SCHEMA ${q} IS ${client.escapeLiteral(info.comment)}`);
    // One simple query: one implicit transaction, all or nothing.
    await client.query(statements.join(';\n'));
  });
  log('applying every migration ...');
  return applyMigrations({ databaseUrl: opts.databaseUrl, ...(opts.migrationsDir ? { migrationsDir: opts.migrationsDir } : {}), log });
}
