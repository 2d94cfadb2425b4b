/**
 * How long the test harness takes to give a test file its own database: CREATE DATABASE from the
 * migrated template, then a first connection and query. Prints the median (goal <= 300 ms).
 *
 *   pnpm bench:test-db                   # embedded PostgreSQL in a temp dir
 *   TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres pnpm bench:test-db
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { readEnv } from '../server/src/config.js';
import { ensureDatabase } from '../server/src/db/embedded.js';
import { applyMigrations } from '../server/src/db/migrations/runner.js';
import { redactUrl } from '../server/src/db/wait.js';

const ROUNDS = 20;
const log = (message: string) => process.stdout.write(`[bench:test-db] ${message}\n`);

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function main(): Promise<void> {
  const external = readEnv('TEST_DATABASE_URL');
  const dir = join(tmpdir(), `keel-bench-pg-${process.pid}`);
  log(external ? `server: ${redactUrl(external)}` : `server: embedded PostgreSQL in ${dir}`);
  const handle = await ensureDatabase({ url: external, dir: join(dir, 'postgres'), database: 'postgres', durability: 'none', log });
  const admin = new pg.Client({ connectionString: handle.url });
  await admin.connect();
  const prefix = `keel_bench_${process.pid}`;
  const template = `${prefix}_tpl`;
  const timings: number[] = [];
  try {
    await admin.query(`create database ${template}`);
    await applyMigrations({ databaseUrl: withDatabase(handle.url, template), log: () => {} });
    log(`template ${template} migrated; provisioning ${ROUNDS} databases`);
    for (let i = 0; i < ROUNDS; i++) {
      const name = `${prefix}_${i}`;
      const started = performance.now();
      await admin.query(`create database ${name} template ${template}`);
      const client = new pg.Client({ connectionString: withDatabase(handle.url, name) });
      await client.connect();
      await client.query('select count(*) from users');
      await client.end();
      timings.push(performance.now() - started);
    }
  } finally {
    for (let i = 0; i < ROUNDS; i++) await admin.query(`drop database if exists ${prefix}_${i} with (force)`);
    await admin.query(`drop database if exists ${template} with (force)`);
    await admin.end();
    await handle.stop();
    if (!external) rmSync(dir, { recursive: true, force: true });
  }
  timings.sort((a, b) => a - b);
  const at = (q: number) => (timings[Math.min(timings.length - 1, Math.floor(q * timings.length))] ?? 0).toFixed(1);
  log(`provision one isolated database (create from template + first query), ${ROUNDS} rounds:`);
  log(`  median ${at(0.5)} ms   p90 ${at(0.9)} ms   min ${at(0)} ms   max ${at(0.999)} ms   (goal: median <= 300 ms)`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:test-db] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
