import pg from 'pg';
import { guardClient } from './connections.js';

export interface WaitOptions {
  retries: number;
  connectTimeoutMs: number;
  log: (message: string) => void;
  /** First delay; each retry doubles it, up to 5 s. */
  initialDelayMs?: number;
}

/** A URL safe to print: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // pg also takes the password as a query parameter.
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

/**
 * Waits until PostgreSQL accepts a connection, retrying with exponential backoff. Fails with a
 * message that says what was tried, so a wrong URL and a database still booting are told apart.
 */
export async function waitForDatabase(url: string, options: WaitOptions): Promise<void> {
  const started = Date.now();
  let delay = options.initialDelayMs ?? 250;
  let lastError = '';
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const client = guardClient(new pg.Client({ connectionString: url, connectionTimeoutMillis: options.connectTimeoutMs }));
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      if (attempt <= options.retries) {
        options.log(`database not reachable yet (attempt ${attempt}/${options.retries + 1}: ${lastError}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(
    `could not reach the database at ${redactUrl(url)} after ${options.retries + 1} attempts over ${Math.round((Date.now() - started) / 1000)} s: ${lastError}. ` +
      'Check DATABASE_URL and that PostgreSQL is running and accepts connections.',
  );
}
