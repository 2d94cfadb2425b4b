/**
 * Real processes for end-to-end tests: the server (`node --import tsx server/src/main.ts`) or any
 * other entry point, with an explicit environment, captured output, bounded waits, and cleanup.
 *
 * Every wait here is event-driven (a line of output, the exit event) and bounded by a deadline:
 * nothing sleeps. Call `stopAllProcesses()` in `afterAll`; a worker that dies anyway SIGKILLs its
 * children on exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envSchema } from '../../server/src/config.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER_ENTRY = join(REPO_ROOT, 'server/src/main.ts');

/**
 * Backstops, not budgets: how long a wait for a server's "listening" line (embedded PostgreSQL,
 * migrations and seed included) or for an exit may last before the test gives up with the output so
 * far. Generous, so that a loaded machine only makes a test slower, never red.
 */
export const START_TIMEOUT_MS = 150_000;
export const EXIT_TIMEOUT_MS = 60_000;

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One JSON line the server logged (pino), with the fields Keel writes. */
export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface SpawnedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves once, when the process has exited (never rejects). */
  readonly exited: Promise<ExitResult>;
  /** Whether the exit event has been seen. */
  hasExited(): boolean;
  stdout(): string;
  stderr(): string;
  /** Both streams, in the order their chunks arrived. */
  output(): string;
  /** stdout's JSON lines (the server's pino logs); other lines are skipped. */
  logs(): LogLine[];
  /** Resolves with the first output line that matches; rejects on timeout or if the process exits first. */
  waitForLine(pattern: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Resolves with the first JSON log line that satisfies `predicate`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process exits; rejects if it has not exited within `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<ExitResult>;
  /** Sends a signal (no-op once exited). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if still running after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<ExitResult>;
}

export interface SpawnOptions {
  /** A label for messages. */
  name?: string;
  /** Variables for the child. Keel's own variables that are not given are set empty (= unset), so a developer's `.env` cannot leak in. */
  env?: Record<string, string>;
  /** Arguments for `node` before the script (e.g. extra `--import`s). */
  nodeArgs?: string[];
  cwd?: string;
}

const running = new Set<SpawnedProcess>();

process.once('exit', () => {
  for (const p of running) if (!p.hasExited()) p.child.kill('SIGKILL');
});

/**
 * The child's environment: only what a process needs to run (PATH, HOME, locale, temp dir), every
 * Keel variable blank unless given, then the given ones. Blank variables count as unset for
 * `loadConfig` and keep `.env` from filling them.
 */
export function childEnv(env: Record<string, string> = {}): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ']) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  for (const key of Object.keys(envSchema.shape)) base[key] = '';
  return { ...base, ...env };
}

/** Runs `node --import tsx <script> ...args` from the repository root. */
export function spawnTsx(script: string, args: string[], options: SpawnOptions = {}): SpawnedProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(options.name ?? script, child);
}

/**
 * Runs `argv` as given (no tsx), from the repository root, in its own process group (so a test can
 * check that nothing of the group outlives it: `groupAlive`).
 */
export function spawnCommand(argv: [string, ...string[]], options: SpawnOptions = {}): SpawnedProcess {
  const [command, ...args] = argv;
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  return track(options.name ?? argv.join(' '), child);
}

/** Whether any process of the process group `pgid` is still alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Any executable (a Debian tool such as prometheus), tracked and stopped like the rest. */
export function spawnProgram(command: string, args: string[], options: SpawnOptions = {}): SpawnedProcess {
  const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  return track(options.name ?? command, child);
}

/**
 * Waits until no process of group `pgid` is left (helpers such as tsx's esbuild service exit a
 * moment after their parent); checks every 50 ms, up to `timeoutMs`.
 */
export async function waitForGroupGone(pgid: number, timeoutMs = EXIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) throw new Error(`process group ${pgid} still has processes after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The Keel server as `pnpm start` runs it, with JSON logs on stdout. */
export function spawnServer(env: Record<string, string>, options: Omit<SpawnOptions, 'env'> = {}): SpawnedProcess {
  return spawnTsx(SERVER_ENTRY, [], { name: 'server', ...options, env: { LOG_PRETTY: 'false', ...env } });
}

/** Waits for the server's "listening on <url>" line and returns the URL. */
export async function waitUntilListening(server: SpawnedProcess, timeoutMs = START_TIMEOUT_MS): Promise<string> {
  const line = await server.waitForLog((l) => l.msg.startsWith('listening on '), timeoutMs);
  const url = /^listening on (\S+)/.exec(line.msg)?.[1];
  if (!url) throw new Error(`unexpected listening line: ${line.msg}`);
  return url;
}

/**
 * Waits until `/readyz` answers 200: right after "listening", a loaded machine can take longer than
 * the probe's 1 s database ping, which then answers 503 (as a balancer's probe would see it). Asks
 * again every 100 ms, up to `timeoutMs`.
 */
export async function waitUntilReady(url: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const response = await fetch(`${url}/readyz`);
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`${url}/readyz: not ready within ${timeoutMs} ms (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Stops every process spawned by this file that is still running (for `afterAll`). */
export async function stopAllProcesses(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(graceMs)));
}

function track(name: string, child: ChildProcess): SpawnedProcess {
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  const pid = child.pid;
  let out = '';
  let err = '';
  let all = '';
  let exit: ExitResult | undefined;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    all += chunk;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    all += chunk;
    notify();
  });
  const exited = new Promise<ExitResult>((resolve) => {
    // 'close' (not 'exit'): both pipes are drained, so the output is complete.
    child.once('close', (code, signal) => {
      exit = { code, signal };
      running.delete(handle);
      resolve(exit);
      notify();
    });
  });

  const tail = () => all.split('\n').slice(-40).join('\n');

  /** Resolves when `check` returns a value; rejects on timeout, or on exit without a value when `untilExit` is false. */
  function waitFor<T>(what: string, check: () => T | undefined, timeoutMs: number, untilExit = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (error?: Error, value?: T) => {
        clearTimeout(timer);
        listeners.delete(listener);
        if (error) reject(error);
        else resolve(value as T);
      };
      const listener = () => {
        const value = check();
        if (value !== undefined) return finish(undefined, value);
        if (exit && !untilExit) {
          finish(new Error(`${name} (pid ${pid}) exited (code ${exit.code}, signal ${exit.signal}) before ${what}. Output:\n${tail()}`));
        }
      };
      const timer = setTimeout(
        () => finish(new Error(`${name} (pid ${pid}): no ${what} within ${timeoutMs} ms. Output so far:\n${tail()}`)),
        timeoutMs,
      );
      listeners.add(listener);
      listener();
    });
  }

  const lines = () => all.split('\n');
  const parseLogs = (): LogLine[] =>
    out.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const parsed = JSON.parse(line) as LogLine;
        return typeof parsed.msg === 'string' ? [parsed] : [];
      } catch {
        return [];
      }
    });

  const handle: SpawnedProcess = {
    name,
    child,
    pid,
    exited,
    hasExited: () => exit !== undefined,
    stdout: () => out,
    stderr: () => err,
    output: () => all,
    logs: parseLogs,
    waitForLine(pattern, timeoutMs = START_TIMEOUT_MS) {
      const test = typeof pattern === 'function' ? pattern : (line: string) => pattern.test(line);
      return waitFor(`output line matching ${String(pattern)}`, () => lines().find(test), timeoutMs);
    },
    waitForLog(predicate, timeoutMs = START_TIMEOUT_MS) {
      return waitFor('matching log line', () => parseLogs().find(predicate), timeoutMs);
    },
    waitForExit(timeoutMs = EXIT_TIMEOUT_MS) {
      return waitFor('exit', () => exit, timeoutMs, true);
    },
    kill(signal = 'SIGTERM') {
      if (!exit) child.kill(signal);
    },
    async stop(graceMs = 10_000) {
      if (exit) return exit;
      child.kill('SIGTERM');
      try {
        return await handle.waitForExit(graceMs);
      } catch {
        child.kill('SIGKILL');
        return handle.waitForExit(EXIT_TIMEOUT_MS);
      }
    },
  };
  running.add(handle);
  return handle;
}

/** The pid in a PostgreSQL data directory's `postmaster.pid`, if the file exists. */
export function postmasterPid(dataDir: string): number | undefined {
  const lock = join(dataDir, 'postmaster.pid');
  if (!existsSync(lock)) return undefined;
  const pid = Number(readFileSync(lock, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by whoever inherited it) does not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return !existsSync('/proc/self/stat'); // gone meanwhile; without procfs, trust kill(0)
  }
}

/** The direct children of `pid`, from procfs (Linux). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Waits until none of `pids` is alive. They are not our children (a postmaster and its workers),
 * so there is no exit event to await: this checks every 50 ms, up to `timeoutMs`.
 */
export async function waitForPidsGone(pids: number[], timeoutMs = EXIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) throw new Error(`processes still alive after ${timeoutMs} ms: ${pids.filter(isAlive).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Stops a PostgreSQL left running under `dataDir` (its server was killed): fast shutdown, then
 * SIGKILL if it does not go. For `afterAll` after tests that kill servers.
 */
export async function stopOrphanedPostgres(dataDir: string): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid === undefined || !isAlive(pid)) return;
  const workers = childPids(pid);
  process.kill(pid, 'SIGINT');
  try {
    await waitForPidsGone([pid, ...workers], 10_000);
  } catch {
    for (const p of [pid, ...workers]) if (isAlive(p)) process.kill(p, 'SIGKILL');
    await waitForPidsGone([pid, ...workers], 5_000);
  }
}
