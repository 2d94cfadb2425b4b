/**
 * Production start as an operator meets it: exactly the command the README documents, stopped by
 * SIGTERM as a supervisor stops it; the configuration checked before anything touches the
 * database; the first admin seeded by several instances starting at once; PUBLIC_URL in the
 * served OpenAPI document.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/src/db/embedded.js';
import { productionEnv } from '../http/fixtures.js';
import { createScratchDatabase } from '../support/database.js';
import { groupAlive, REPO_ROOT, spawnCommand, spawnServer, stopAllProcesses, waitUntilListening } from '../support/process.js';

const scratches: Array<{ drop(): Promise<void> }> = [];
afterAll(async () => {
  await stopAllProcesses();
  for (const scratch of scratches) await scratch.drop();
});

/** The production command as the README's Operations section gives it (the `node ... server/dist/main.js` line). */
function documentedProductionCommand(): [string, ...string[]] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const operations = readme.slice(readme.indexOf('## Operations'));
  const line = operations
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^node .*server\/dist\/main\.js$/.test(l));
  if (!line) throw new Error('README.md: no `node ... server/dist/main.js` line in the Operations section');
  return line.split(/\s+/) as [string, ...string[]];
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // A file may go between the listing and the stat (another test's temporary file): skip it.
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0));
  }
  return newest;
}

/** `pnpm --filter @keel/server build` when server/dist is missing or older than a source file, so the test runs what the sources make now. */
async function buildServerIfStale(): Promise<void> {
  const main = join(REPO_ROOT, 'server/dist/main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(REPO_ROOT, 'server/src'))) return;
  const build = spawn('pnpm', ['--filter', '@keel/server', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  build.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  build.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => build.once('close', resolve));
  if (code !== 0) throw new Error(`pnpm --filter @keel/server build failed (${code}):\n${output}`);
}

async function tableExists(url: string, table: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ found: string | null }>('select to_regclass($1)::text as found', [table]);
    return rows[0]?.found !== null;
  } finally {
    await client.end();
  }
}

describe('the documented production command', () => {
  it('SIGTERM stops the server with exit code 0, and no process of its group is left', async () => {
    const argv = documentedProductionCommand();
    expect(argv[0]).toBe('node');
    await buildServerIfStale();
    const scratch = await createScratchDatabase({ migrated: true });
    scratches.push(scratch);
    const server = spawnCommand([process.execPath, ...argv.slice(1)], {
      name: 'production',
      env: { ...productionEnv(), DATABASE_URL: scratch.url, PORT: String(await freePort()), LOG_LEVEL: 'info', LOG_PRETTY: 'false' },
    });
    const url = await waitUntilListening(server);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    process.kill(server.pid, 'SIGTERM');
    expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
    expect(server.logs().map((l) => l.msg)).toContain('stopped');
    expect(groupAlive(server.pid)).toBe(false);
  }, 180_000);
});

describe('configuration is checked before any side effect', () => {
  it('JWT_KEYS=nope: exit 1 with a message naming it, and no migration touched the database', async () => {
    const empty = await createScratchDatabase();
    scratches.push(empty);
    const server = spawnServer({ ...productionEnv(), JWT_KEYS: 'nope', DATABASE_URL: empty.url, PORT: String(await freePort()) });
    expect(await server.waitForExit()).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toMatch(/JWT_KEYS: .*not valid JSON/);
    expect(server.stderr()).toContain('pnpm keys:generate');
    expect(server.output()).not.toMatch(/migrations|database:/);
    expect(await tableExists(empty.url, '_prisma_migrations')).toBe(false);
  });
});

describe('the first admin from ADMIN_EMAIL/ADMIN_PASSWORD in production', () => {
  it('two instances starting at once on an empty database: one admin, one seed line each; PUBLIC_URL in the served document', async () => {
    const empty = await createScratchDatabase();
    scratches.push(empty);
    const env = {
      ...productionEnv(),
      DATABASE_URL: empty.url,
      LOG_LEVEL: 'info',
      SHUTDOWN_DRAIN_MS: '0',
      ADMIN_EMAIL: 'Ops@Example.test',
      ADMIN_PASSWORD: 'a long operator passphrase',
      PUBLIC_URL: 'https://api.example.test/',
    };
    const servers = [spawnServer({ ...env, PORT: String(await freePort()) }), spawnServer({ ...env, PORT: String(await freePort()) })];
    const urls = await Promise.all(servers.map((s) => waitUntilListening(s)));

    const seedLines = servers.map((s) =>
      s
        .logs()
        .filter((l) => l.msg.startsWith('seed: '))
        .map((l) => l.msg),
    );
    for (const lines of seedLines) expect(lines).toHaveLength(1);
    expect(seedLines.flat().sort()).toEqual(['seed: admin ops@example.test already present', 'seed: created admin ops@example.test']);

    const client = new pg.Client({ connectionString: empty.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ email: string; role: string }>('select email, role::text from users');
      expect(rows).toEqual([{ email: 'ops@example.test', role: 'ADMIN' }]);
    } finally {
      await client.end();
    }

    const login = await fetch(`${urls[0]}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ops@example.test', password: 'a long operator passphrase' }),
    });
    expect(login.status).toBe(200);

    const document = (await (await fetch(`${urls[0]}/openapi.json`)).json()) as { servers: { url: string }[] };
    expect(document.servers.map((s) => s.url)).toEqual(['https://api.example.test/api']);
    for (const server of servers) {
      server.kill('SIGTERM');
      expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
    }
  }, 120_000);
});
