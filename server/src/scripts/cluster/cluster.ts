/**
 * A Keel cluster on the loopback, as users run one in production: PostgreSQL (embedded, or the
 * server at `databaseUrl`), PgBouncer in transaction mode, N Keel instances, HAProxy in front,
 * each from deploy/'s configuration files. `pnpm cluster` runs it for trying; the long e2e tests
 * and `pnpm bench:cluster` start it with their own database and settings.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { envSchema, PROJECT_ROOT } from '../../config.js';
import { type DatabaseHandle, ensureDatabase, freePort } from '../../db/embedded.js';
import { redactUrl } from '../../db/wait.js';
import { generateJwkSet } from '../../modules/auth/keys.js';
import {
  HAPROXY_TEMPLATE,
  PGBOUNCER_TEMPLATE,
  POOLED_DATABASE,
  readTemplate,
  renderHaproxyConfig,
  renderPgbouncerConfig,
} from './configs.js';
import { type ExitInfo, type Managed, startProcess } from './processes.js';

export interface ClusterOptions {
  instances: number;
  /** HAProxy's port on 127.0.0.1; unset: any free port. */
  port?: number;
  /** PostgreSQL itself; unset: the embedded server under `dir`/postgres. */
  databaseUrl?: string;
  /** Logs, configurations and the embedded database. Default `.data/cluster`. */
  dir?: string;
  /** Keel variables for every instance, over the cluster's own (see `instanceEnv`). */
  env?: Record<string, string>;
  /** `built`: `node server/dist/main.js` (run `pnpm build` first); default: the sources through tsx. */
  entry?: 'tsx' | 'built';
  /** Extra node flags for every instance. */
  nodeArgs?: string[];
  log: (message: string) => void;
}

export interface Instance {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** The running process (the last one started). */
  process(): Managed;
  /** Starts it (again, after `stop`) on the same port; resolves once its /readyz answers 200. */
  start(): Promise<void>;
  /** SIGTERM (drain, then close) by default; SIGKILL for a crash. */
  stop(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

export interface ServerStat {
  name: string;
  /** HAProxy's view: UP, DOWN, MAINT, `UP 1/2` (going down), `DOWN 1/2` (going up), ... */
  status: string;
  /** Requests sent to it so far. */
  sessions: number;
}

export interface Cluster {
  /** HAProxy: what clients use. */
  url: string;
  /** PostgreSQL itself (DIRECT_DATABASE_URL of the instances). */
  directUrl: string;
  /** Through PgBouncer (DATABASE_URL of the instances). */
  pooledUrl: string;
  dir: string;
  instances: Instance[];
  haproxy: Managed;
  pgbouncer: Managed;
  /** Each backend server as HAProxy sees it (through its admin socket). */
  serverStats(): Promise<ServerStat[]>;
  /** Resolves when HAProxy logs that `instance` went UP or DOWN (from `from`, a `haproxy.lineCount()`). */
  waitForState(instance: Instance, state: 'UP' | 'DOWN', from: number, timeoutMs?: number): Promise<void>;
  /** Stops everything: HAProxy, the instances (drained), PgBouncer, then an embedded PostgreSQL. */
  stop(): Promise<void>;
}

/** PgBouncer's server pool per database (deploy/pgbouncer.ini: default_pool_size). */
export const PGBOUNCER_SERVER_POOL = 20;

/** instances x DATABASE_POOL_SIZE <= PgBouncer's server pool, and never more than Keel's default of 10. */
export const poolSizeFor = (instances: number): number => Math.max(1, Math.min(10, Math.floor(PGBOUNCER_SERVER_POOL / instances)));

/** The keel.service settings that matter behind HAProxy, and a development mode that needs no SMTP. */
function instanceEnv(options: {
  pooledUrl: string;
  directUrl: string;
  port: number;
  instances: number;
  jwtKeys: string;
  twoFactorKeys: string;
}) {
  return {
    NODE_ENV: 'development',
    LOG_PRETTY: 'false',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: String(options.port),
    DATABASE_URL: options.pooledUrl,
    DIRECT_DATABASE_URL: options.directUrl,
    DATABASE_PREPARED_STATEMENTS: 'false',
    DATABASE_POOL_SIZE: String(poolSizeFor(options.instances)),
    TRUST_PROXY: 'loopback',
    KEEP_ALIVE_TIMEOUT_MS: '65000',
    SHUTDOWN_DRAIN_MS: '5000',
    SHUTDOWN_TIMEOUT_MS: '10000',
    JWT_KEYS: options.jwtKeys,
    // One key for every instance: a secret sealed by one must open on the others (each instance
    // would otherwise make its own in development, racing for one key file).
    TWO_FACTOR_ENCRYPTION_KEYS: options.twoFactorKeys,
    MAIL_TRANSPORT: 'log',
  };
}

/** What a child needs of our environment; Keel's variables blank (= unset) unless given, so no `.env` leaks in. */
function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ', 'UV_THREADPOOL_SIZE']) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  for (const key of Object.keys(envSchema.shape)) base[key] = '';
  return { ...base, ...env };
}

/** PgBouncer refuses to run as root: as root, it runs as the `postgres` user (postgresql-common creates it). */
function pgbouncerUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error('PgBouncer will not run as root and there is no `postgres` user to run it as: `apt-get install pgbouncer` creates one');
  }
  return { name: 'postgres', uid: Number(uid), gid: Number(gid) };
}

/** Sends one command to HAProxy's admin socket and returns its answer. */
export function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const connection = createConnection(socket);
    connection.setEncoding('utf8');
    connection.on('data', (chunk: string) => {
      answer += chunk;
    });
    connection.on('error', reject);
    connection.on('end', () => resolve(answer));
    connection.on('connect', () => connection.end(`${command}\n`));
  });
}

/** Resolves once `url` answers 200; each attempt bounded, the whole wait bounded by `timeoutMs`. */
async function waitForHttp(url: string, timeoutMs: number, what: string, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (let delay = 20; Date.now() < deadline; delay = Math.min(delay * 2, 250)) {
    if (!alive()) throw new Error(`${what} exited`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/**
 * PgBouncer on a free loopback port in front of `serverUrl`, configured from `template` (default
 * deploy/pgbouncer.ini); resolves once it accepts connections, with the URL clients use.
 */
export async function startPgbouncer(options: {
  dir: string;
  serverUrl: string;
  template?: string;
  name?: string;
}): Promise<{ process: Managed; pooledUrl: string }> {
  const name = options.name ?? 'pgbouncer';
  const bouncerDir = join(options.dir, name);
  mkdirSync(bouncerDir, { recursive: true });
  const port = await freePort();
  const serverUser = decodeURIComponent(new URL(options.serverUrl).username) || 'postgres';
  const authFile = join(bouncerDir, 'userlist.txt');
  writeFileSync(authFile, `"${serverUser}" ""\n`);
  const config = join(bouncerDir, 'pgbouncer.ini');
  const template = options.template ?? readTemplate(PGBOUNCER_TEMPLATE);
  // 0600: the database line holds the server's password.
  writeFileSync(config, renderPgbouncerConfig(template, { port, serverUrl: options.serverUrl, authFile }), { mode: 0o600 });
  const runAs = pgbouncerUser();
  if (runAs) for (const file of [bouncerDir, authFile, config]) chownSync(file, runAs.uid, runAs.gid);
  const spawned = startProcess(name, 'pgbouncer', [...(runAs ? ['-u', runAs.name] : []), config], {
    env: childEnv({}),
    cwd: bouncerDir,
    logFile: join(options.dir, `${name}.log`),
  });
  try {
    await spawned.waitForLine(/process up/, { timeoutMs: 15_000 });
  } catch (error) {
    await spawned.stop();
    throw error;
  }
  return { process: spawned, pooledUrl: `postgresql://${encodeURIComponent(serverUser)}@127.0.0.1:${port}/${POOLED_DATABASE}` };
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { log } = options;
  const count = options.instances;
  if (!Number.isInteger(count) || count < 1 || count > 16) throw new Error(`instances: expected 1 to 16, got ${count}`);
  const dir = resolve(PROJECT_ROOT, options.dir ?? '.data/cluster');
  mkdirSync(dir, { recursive: true });
  const started: { stop(): Promise<unknown> }[] = [];
  let database: DatabaseHandle | undefined;
  try {
    // 1. PostgreSQL
    database = await ensureDatabase({ url: options.databaseUrl, dir: join(dir, 'postgres'), database: 'keel', log });
    const directUrl = database.url;
    log(`PostgreSQL: ${redactUrl(directUrl)}${options.databaseUrl ? '' : ' (embedded)'}`);

    // 2. PgBouncer, transaction mode, deploy/pgbouncer.ini
    const { process: pgbouncer, pooledUrl } = await startPgbouncer({ dir, serverUrl: directUrl });
    started.push(pgbouncer);
    log(`PgBouncer (transaction mode): ${pooledUrl} -> ${redactUrl(directUrl)}`);

    // 3. Keel instances, all at once (migrations are applied once, under their lock, on the direct URL)
    const jwtKeys = JSON.stringify(await generateJwkSet('EdDSA'));
    const twoFactorKeys = randomBytes(32).toString('base64');
    const entry = options.entry ?? 'tsx';
    const script = entry === 'built' ? join(PROJECT_ROOT, 'server/dist/main.js') : join(PROJECT_ROOT, 'server/src/main.ts');
    const instances: Instance[] = [];
    for (let i = 1; i <= count; i++) {
      const name = `keel${i}`;
      const port = await freePort();
      const env = childEnv({
        ...instanceEnv({ pooledUrl, directUrl, port, instances: count, jwtKeys, twoFactorKeys }),
        ...options.env,
        PORT: String(port),
      });
      const args = [...(options.nodeArgs ?? []), ...(entry === 'built' ? [script] : ['--import', 'tsx', script])];
      let current: Managed | undefined;
      const instance: Instance = {
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        process() {
          if (!current) throw new Error(`${name} was never started`);
          return current;
        },
        async start() {
          if (current?.running()) throw new Error(`${name} is already running`);
          const spawned = startProcess(name, process.execPath, args, { env, cwd: PROJECT_ROOT, logFile: join(dir, `${name}.log`) });
          current = spawned;
          // Ready, not just listening (and whatever LOG_LEVEL says): what HAProxy will check.
          await waitForHttp(`http://127.0.0.1:${port}/readyz`, 90_000, name, () => spawned.running()).catch((error: Error) => {
            throw new Error(`${error.message}\n${spawned.tail()}`);
          });
        },
        stop(signal = 'SIGTERM') {
          return current ? current.stop({ signal }) : Promise.resolve({ code: null, signal: null });
        },
      };
      instances.push(instance);
      started.push(instance);
    }
    await Promise.all(instances.map((instance) => instance.start()));
    log(
      `Keel: ${count} instance${count > 1 ? 's' : ''} listening (${instances.map((i) => `${i.name} :${i.port}`).join(', ')}), logs in ${dir}`,
    );

    // 4. HAProxy, deploy/haproxy.cfg
    const port = options.port ?? (await freePort());
    const statsSocket = join(dir, 'haproxy.sock');
    const haproxyConfig = join(dir, 'haproxy.cfg');
    writeFileSync(
      haproxyConfig,
      renderHaproxyConfig(readTemplate(HAPROXY_TEMPLATE), {
        port,
        statsSocket,
        servers: instances.map((i) => ({ name: i.name, port: i.port })),
      }),
    );
    const haproxy = startProcess('haproxy', 'haproxy', ['-db', '-f', haproxyConfig], {
      env: childEnv({}),
      cwd: dir,
      logFile: join(dir, 'haproxy.log'),
    });
    started.unshift(haproxy);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, 15_000, 'haproxy', () => haproxy.running());
    log(`HAProxy: ${url} -> ${count} instance${count > 1 ? 's' : ''} (health checks on /readyz)`);

    const ownedDatabase = database;
    let stopping: Promise<void> | undefined;
    return {
      url,
      directUrl,
      pooledUrl,
      dir,
      instances,
      haproxy,
      pgbouncer,
      async serverStats() {
        const csv = await haproxyCommand(statsSocket, 'show stat');
        const [header, ...rows] = csv.trim().split('\n');
        const columns = (header ?? '').replace(/^# /, '').split(',');
        const at = (name: string) => columns.indexOf(name);
        return rows
          .map((row) => row.split(','))
          .filter((cells) => cells[at('pxname')] === 'keel' && /^keel\d+$/.test(cells[at('svname')] ?? ''))
          .map((cells) => ({
            name: cells[at('svname')] as string,
            status: cells[at('status')] as string,
            sessions: Number(cells[at('stot')]),
          }));
      },
      async waitForState(instance, state, from, timeoutMs = 60_000) {
        await haproxy.waitForLine(new RegExp(`Server keel/${instance.name} is ${state}\\b`), { from, timeoutMs });
      },
      stop() {
        stopping ??= (async () => {
          log('stopping HAProxy');
          await haproxy.stop({ graceMs: 5_000 });
          log(`stopping ${count} Keel instance${count > 1 ? 's' : ''}`);
          await Promise.all(instances.map((i) => i.stop()));
          log('stopping PgBouncer');
          await pgbouncer.stop({ graceMs: 5_000 });
          if (ownedDatabase.owned) {
            log('stopping the embedded PostgreSQL');
            await ownedDatabase.stop();
          }
        })();
        return stopping;
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => p.stop().catch(() => {})));
    if (database?.owned) await database.stop().catch(() => {});
    throw error;
  }
}
