/**
 * Test databases, from inside a test file. Each file gets its own database cloned from the run's
 * migrated template (`useTestDatabase`), so tests never see each other's rows and need no cleanup.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { type Config, parseConfig } from '../../server/src/config.js';
import { createDatabase, type Database } from '../../server/src/db/client.js';
import { quoteIdent } from '../../server/src/db/identifiers.js';
import { type AppDeps, createAppDeps, stopAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import type { MailTransport } from '../../server/src/mail/transport.js';
import { generateJwkSet, importKeySet, type KeySet } from '../../server/src/modules/auth/keys.js';
import { databaseUrl } from './naming.js';

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: inject('keelTestDb').adminUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** A new database on the run's server: empty, or a clone of the migrated template. */
export async function createScratchDatabase(options: { migrated?: boolean } = {}): Promise<ScratchDatabase> {
  const { adminUrl, template, prefix } = inject('keelTestDb');
  const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  await withAdmin((admin) =>
    admin.query(`create database ${quoteIdent(name)}${options.migrated ? ` template ${quoteIdent(template)}` : ''}`),
  );
  let dropped = false;
  return {
    name,
    url: databaseUrl(adminUrl, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin((admin) => admin.query(`drop database if exists ${quoteIdent(name)} with (force)`));
    },
  };
}

/** A Config for tests: quiet, fast password hashing, pointing at `url`. */
export function testConfig(url: string, overrides: Record<string, string> = {}): Config {
  return parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: url,
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    ...overrides,
  });
}

export interface DepsOverrides {
  config?: Record<string, string>;
  now?: () => Date;
  mailTransport?: MailTransport;
  keys?: KeySet;
}

export interface TestDatabase {
  url: string;
  database: Database;
  config: Config;
  /** The file's signing keys (shared by every `deps()`, like instances sharing JWT_KEYS). */
  keys: KeySet;
  /** Dependencies for `createContextInner` / `buildApp`, with optional config overrides. */
  deps(overrides?: DepsOverrides): AppDeps;
}

/**
 * This file's own migrated database, created on first use and dropped after the file's tests.
 * Call it at the top level of a test file: `const db = await useTestDatabase();`
 */
export async function useTestDatabase(): Promise<TestDatabase> {
  const scratch = await createScratchDatabase({ migrated: true });
  const config = testConfig(scratch.url);
  const logger = createLogger(config);
  const database = createDatabase(scratch.url, config.database, logger);
  const keys = await importKeySet(JSON.stringify(await generateJwkSet('EdDSA')));
  const created: AppDeps[] = [];
  afterAll(async () => {
    for (const deps of created) await stopAppDeps(deps);
    await database.close();
    await scratch.drop();
  });
  return {
    url: scratch.url,
    database,
    config,
    keys,
    deps(overrides = {}) {
      const cfg = overrides.config ? testConfig(scratch.url, overrides.config) : config;
      const deps = createAppDeps({
        config: cfg,
        database,
        logger: createLogger(cfg),
        keys: overrides.keys ?? keys,
        ...(overrides.now ? { now: overrides.now } : {}),
        ...(overrides.mailTransport ? { mailTransport: overrides.mailTransport } : {}),
      });
      created.push(deps);
      return deps;
    },
  };
}
