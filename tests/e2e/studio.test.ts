/**
 * `pnpm studio` (tools/migrate/src/studio.ts) as a developer runs it: Prisma Studio serving on
 * STUDIO_PORT against the configured database, or against the embedded cluster (reused when the
 * dev server runs it, otherwise started and stopped again with Studio).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/src/db/embedded.js';
import { redactUrl } from '../../server/src/db/wait.js';
import { createScratchDatabase } from '../support/database.js';
import {
  postmasterPid,
  REPO_ROOT,
  type SpawnedProcess,
  spawnServer,
  spawnTsx,
  stopAllProcesses,
  stopOrphanedPostgres,
  waitUntilListening,
  waitUntilReady,
} from '../support/process.js';

const STUDIO_SCRIPT = join(REPO_ROOT, 'tools/migrate/src/studio.ts');
const root = mkdtempSync(join(tmpdir(), 'keel-studio-'));
// The embedded PostgreSQL runs as the `postgres` user (we are root here): it must be able to enter.
chmodSync(root, 0o755);
const dataDir = join(root, 'postgres');
const scratch = await createScratchDatabase({ migrated: true });
afterAll(async () => {
  await stopAllProcesses();
  await stopOrphanedPostgres(dataDir);
  await scratch.drop();
  rmSync(root, { recursive: true, force: true });
});

async function startStudio(env: Record<string, string>): Promise<{ studio: SpawnedProcess; url: string }> {
  const port = await freePort();
  const studio = spawnTsx(STUDIO_SCRIPT, [], { name: 'studio', env: { STUDIO_PORT: String(port), ...env } });
  await studio.waitForLine(/Prisma Studio is running at/);
  return { studio, url: `http://127.0.0.1:${port}/` };
}

async function expectStudioServes(url: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/text\/html/);
}

async function expectCleanStop(process: SpawnedProcess): Promise<void> {
  process.kill('SIGTERM');
  expect(await process.waitForExit()).toEqual({ code: 0, signal: null });
}

describe('pnpm studio', () => {
  it('serves Prisma Studio on STUDIO_PORT for DATABASE_URL, and exits 0 on SIGTERM', async () => {
    const { studio, url } = await startStudio({ DATABASE_URL: scratch.url });
    await expectStudioServes(url);
    expect(studio.stdout()).toContain(`[keel:studio] database: ${redactUrl(scratch.url)}`);
    const password = new URL(scratch.url).password;
    if (password) expect(studio.output()).not.toContain(password);
    expect(studio.stdout()).toContain(`[keel:studio] open http://localhost:${new URL(url).port}`);
    await expectCleanStop(studio);
  });

  it('reuses the embedded cluster the dev server is running, and leaves it running on exit', async () => {
    const serverPort = await freePort();
    const server = spawnServer({
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      PORT: String(serverPort),
      EMBEDDED_PG_DIR: dataDir,
      SEED_DEMO_DATA: 'false',
      JWT_KEYS_FILE: join(root, 'jwt-keys.json'),
    });
    const serverUrl = await waitUntilListening(server);
    const postmaster = postmasterPid(dataDir);

    const { studio, url } = await startStudio({ EMBEDDED_PG_DIR: dataDir });
    await expectStudioServes(url);
    expect(studio.stdout()).toContain(`embedded PostgreSQL already running (pid ${postmaster}`);
    await expectCleanStop(studio);
    expect(studio.stdout()).not.toContain('stopping embedded PostgreSQL');

    expect(postmasterPid(dataDir)).toBe(postmaster);
    await waitUntilReady(serverUrl);
    await expectCleanStop(server);
  });

  it('starts the embedded cluster when nothing runs it, and stops it when Studio exits', async () => {
    expect(postmasterPid(dataDir)).toBeUndefined();
    const { studio, url } = await startStudio({ EMBEDDED_PG_DIR: dataDir });
    await expectStudioServes(url);
    expect(studio.stdout()).toContain(`starting embedded PostgreSQL on 127.0.0.1:`);
    expect(studio.stdout()).toContain('(started for Studio; stopped when Studio exits)');
    expect(postmasterPid(dataDir)).toBeDefined();
    await expectCleanStop(studio);
    expect(studio.stdout()).toContain('stopping embedded PostgreSQL');
    expect(postmasterPid(dataDir)).toBeUndefined();
  });
});
