import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { quoteIdent } from '../../server/src/db/identifiers.js';

export interface ProvidedDb {
  /** A URL to the server's maintenance database, for CREATE/DROP DATABASE. */
  adminUrl: string;
  /** The migrated template every test database is cloned from. */
  template: string;
  /** Name prefix of every database this run and project create. */
  prefix: string;
  source: 'external' | 'testcontainers' | 'embedded';
}

const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 4);
const DAY_MS = 24 * 60 * 60 * 1000;

/** `<host>_<pid>_<start time>`: enough to tell which databases belong to a dead run. */
export const RUN_TAG = `${HOST}_${process.pid}_${Date.now().toString(36)}`;

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A test database of a run that crashed on this host, or of any run older than a day. */
export function isStaleTestDatabase(name: string): boolean {
  const match = /^keel_test_([0-9a-f]{4})_(\d+)_([0-9a-z]+)_/.exec(name);
  if (!match) return false;
  const [, host, pid, started] = match;
  if (Date.now() - Number.parseInt(started as string, 36) > DAY_MS) return true;
  if (host !== HOST) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch {
    return true;
  }
}

export async function dropDatabases(admin: pg.Client, names: string[]): Promise<void> {
  for (const name of names) await admin.query(`drop database if exists ${quoteIdent(name)} with (force)`);
}
