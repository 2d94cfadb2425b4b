/**
 * The Keel server as a child process, for benchmarks: production mode on a given database, a
 * known loopback port, output kept in memory (shown only when something goes wrong), readiness
 * by polling /readyz, and a stop that always ends the process.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envSchema } from '../../server/src/config.js';
import { freePort } from '../../server/src/db/embedded.js';
import { generateJwkSet } from '../../server/src/modules/auth/keys.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX_ENTRY = join(REPO_ROOT, 'server/src/main.ts');
const BUILT_ENTRY = join(REPO_ROOT, 'server/dist/main.js');

/**
 * The node flags of `pnpm start` (server/package.json), so a benchmark of the built server runs
 * exactly what production runs (heap sizing included).
 */
function startScriptFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'server/package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(/\s+/).filter((arg) => arg.startsWith('--'));
}

/** `tsx`: the sources as `pnpm dev` runs them; `built`: `node server/dist/main.js` with the flags of `pnpm start`. */
export type ServerEntry = 'tsx' | 'built';

export interface ProductionEnvOptions {
  databaseUrl: string;
  /** Defaults to warn: request lines at info would measure the logger as much as the server. */
  logLevel?: string;
  rateLimitEnabled?: boolean;
  /** Any other Keel variables. */
  extra?: Record<string, string>;
}

/**
 * A complete production environment (what `parseConfig` demands there): a freshly generated
 * signing key, SMTP to a loopback port nothing listens on (mails fail and are retried later,
 * which a benchmark never waits for), no browser origins.
 */
export async function productionEnv(options: ProductionEnvOptions): Promise<Record<string, string>> {
  const smtpPort = await freePort();
  return {
    NODE_ENV: 'production',
    DATABASE_URL: options.databaseUrl,
    JWT_KEYS: JSON.stringify(await generateJwkSet('EdDSA')),
    MAIL_TRANSPORT: 'smtp',
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    APP_URL: 'https://app.example.com',
    TWO_FACTOR_ENCRYPTION_KEYS: randomBytes(32).toString('base64'),
    SERVICE_SECRET_HASH_KEY: randomBytes(32).toString('base64url'),
    CORS_ORIGINS: 'none',
    LOG_LEVEL: options.logLevel ?? 'warn',
    LOG_PRETTY: 'false',
    RATE_LIMIT_ENABLED: options.rateLimitEnabled === true ? 'true' : 'false',
    ...options.extra,
  };
}

export interface ServerProcess {
  url: string;
  pid: number;
  entry: ServerEntry;
  /** The last lines the server wrote (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartServerOptions {
  env: Record<string, string>;
  entry?: ServerEntry;
  /** From spawn to /readyz answering 200 (migrations included). */
  readyTimeoutMs?: number;
  /** Extra node flags (e.g. --cpu-prof, which NODE_OPTIONS does not accept). */
  nodeArgs?: string[];
  /** Node flags instead of `pnpm start`'s (heap sizing), for the built entry. */
  startFlags?: string[];
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * The child's environment: what a process needs (PATH, HOME, locale, temp dir, thread pool size),
 * every Keel variable blank unless given (blank = unset for `loadConfig`, and keeps a developer's
 * `.env` out), then the given ones.
 */
function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ', 'UV_THREADPOOL_SIZE']) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  for (const key of Object.keys(envSchema.shape)) base[key] = '';
  return { ...base, ...env };
}

export async function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const entry = options.entry ?? 'tsx';
  const script = entry === 'built' ? BUILT_ENTRY : TSX_ENTRY;
  if (!existsSync(script)) {
    throw new Error(
      entry === 'built' ? `${script} does not exist: run \`pnpm build\` first, or use the tsx entry.` : `${script} does not exist.`,
    );
  }
  const port = options.env.PORT ? Number(options.env.PORT) : await freePort();
  const args = [
    ...(options.nodeArgs ?? []),
    ...(entry === 'built' ? [...(options.startFlags ?? startScriptFlags()), script] : ['--import', 'tsx', script]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: childEnv({ HOST: '127.0.0.1', ...options.env, PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('could not spawn the server process');
  running.add(child);

  const lines: string[] = [];
  const keep = (chunk: string) => {
    lines.push(...chunk.split('\n').filter((l) => l.trim() !== ''));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code) => {
      exitCode = code;
      running.delete(child);
      resolve();
    });
  });
  const output = () => lines.slice(-40).join('\n');

  const stop = async (graceMs = 10_000) => {
    if (exitCode !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`the server exited (code ${exitCode}) before it was ready. Its output:\n${output()}`);
    if (Date.now() > deadline) {
      await stop(2_000);
      throw new Error(`the server was not ready within ${options.readyTimeoutMs ?? 60_000} ms. Its output:\n${output()}`);
    }
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid, entry, output, stop };
}
