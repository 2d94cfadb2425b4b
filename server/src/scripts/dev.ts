/**
 * `pnpm dev`: the development supervisor. It owns what must outlive a restart and restarts what
 * must not:
 * - the embedded PostgreSQL (when DATABASE_URL is unset): started once, in its own process group,
 *   on the port it had last time, so the URL it prints and a running Prisma Studio keep working
 *   across every rebuild; stopped last, after the server has drained;
 * - the server (`node --import tsx server/src/main.ts`), in its own process group too, restarted
 *   when a file under server/src changes (SIGTERM, its drain, then a new one).
 * Ctrl-C reaches the supervisor (and pnpm) only; the supervisor passes each signal on to the
 * server, so a second Ctrl-C still goes through the server's own shutdown and prints its lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type FSWatcher, watch } from 'node:fs';
import { join } from 'node:path';
import { loadConfigOrExit, PROJECT_ROOT } from '../config.js';
import { type DatabaseHandle, ensureDatabase } from '../db/embedded.js';
import { redactUrl } from '../db/wait.js';
import { createLogger, exitWhenLogged } from '../logger.js';

const SERVER_SOURCES = join(PROJECT_ROOT, 'server/src');
const SERVER_ENTRY = join(SERVER_SOURCES, 'main.ts');
/** Files whose change restarts the server: sources, not tests. */
const RESTARTS = (file: string) => /\.(ts|json)$/.test(file) && !/\.test\.ts$/.test(file);
const DEBOUNCE_MS = 150;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config).child({ name: 'dev' });
  const log = (message: string) => logger.info(message);

  let stopping: NodeJS.Signals | undefined;
  let server: ChildProcess | undefined;
  let serverExited: Promise<void> = Promise.resolve();
  let database: DatabaseHandle | undefined;
  let watcher: FSWatcher | undefined;

  const stop = async (signal: NodeJS.Signals) => {
    // The signal goes on first: a log write that fails (the terminal gone) must not keep it back.
    server?.kill(signal);
    if (stopping) {
      log(`${signal} again: still stopping (the server first, then PostgreSQL)`);
      return;
    }
    stopping = signal;
    watcher?.close();
    log(`${signal}: stopping the server${database?.owned ? ', then the embedded PostgreSQL' : ''}`);
    await serverExited;
    if (database?.owned) {
      log('stopping embedded PostgreSQL');
      try {
        await database.stop();
        log('embedded PostgreSQL stopped');
      } catch (error) {
        logger.warn(`embedded PostgreSQL did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    log('dev: stopped');
    exitWhenLogged(0);
  };
  process.on('SIGINT', (signal) => void stop(signal));
  process.on('SIGTERM', (signal) => void stop(signal));

  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!config.database.url) {
    database = await ensureDatabase({ dir: config.database.embeddedDir, detached: true, keepPort: true, log });
    log(`database: ${redactUrl(database.url)} (embedded; this port is kept across restarts)`);
    log('Prisma Studio on this database: pnpm studio');
    env.DATABASE_URL = database.url;
    if (stopping) return;
  }

  const startServer = () => {
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER_ENTRY], {
      cwd: PROJECT_ROOT,
      env,
      // Its own process group: Ctrl-C reaches it once, from here. The IPC channel tells it when the
      // supervisor is gone (killed), so no server outlives its supervisor.
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    server = child;
    serverExited = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        if (server === child) server = undefined;
        if (!stopping && !restarting && code !== 0) {
          log(`server exited (${signal ?? `code ${code}`}): fix the error, it restarts on the next change`);
        }
        resolveExit();
      });
    });
  };

  let restarting = false;
  let pending: NodeJS.Timeout | undefined;
  const restart = async (file: string) => {
    if (stopping || restarting) return;
    restarting = true;
    log(`${file} changed: restarting the server`);
    server?.kill('SIGTERM');
    await serverExited;
    restarting = false;
    if (!stopping) startServer();
  };
  watcher = watch(SERVER_SOURCES, { recursive: true }, (_event, file) => {
    if (!file || !RESTARTS(file)) return;
    clearTimeout(pending);
    pending = setTimeout(() => void restart(file), DEBOUNCE_MS);
  });
  startServer();
}

void main().catch((error: unknown) => {
  process.stderr.write(`[keel] dev failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
