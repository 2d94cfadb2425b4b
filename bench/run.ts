/**
 * `pnpm bench`: builds the server, starts it in production mode on a seeded database (embedded
 * PostgreSQL unless DATABASE_URL is given), and loads it with autocannon from this process:
 *
 *   a. system.health over tRPC
 *   b. authenticated projects.list returning 20 rows (JWT verify + Prisma + superjson), 64 connections
 *   c. ten projects.list calls in one batched request vs ten separate requests (identical calls,
 *      which a request shares, and ten different ones, which it cannot)
 *   d. auth.login (argon2-bound)
 *   e. the REST twin of (b): GET /api/projects
 *   raw baseline: node:http + pg + jose + JSON.stringify doing the SQL of (b), in its own process
 *
 * Prints a table (req/s, p50, p99, errors, server RSS), writes bench/results/latest.json.
 * Every run is bounded (BENCH_SECONDS per scenario, default 10) and targets loopback only.
 *
 *   pnpm bench                      # all scenarios
 *   BENCH_SECONDS=5 pnpm bench      # shorter
 *   DATABASE_URL=postgresql://... pnpm bench
 *   pnpm bench -- --no-build        # reuse server/dist
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import superjson from 'superjson';
import { freePort } from '../server/src/db/embedded.js';
import { benchDatabase } from './lib/database.js';
import { type LoadResult, runLoad } from './lib/load.js';
import { fmt, machine, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, REPO_ROOT, type ServerProcess, startServerProcess } from './lib/server-process.js';
import { trpcMutation } from './lib/trpc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 64;
const log = (message: string) => process.stdout.write(`[bench] ${message}\n`);

interface Scenario {
  name: string;
  result: LoadResult;
  rssMiB: number;
  /** Server CPU time (user + system) per answered request, in ms. */
  cpuMsPerRequest: number;
  /** Calls per second when one request carries several calls. */
  callsPerSecond?: number;
}

/** Resident set size and its peak (MiB) of a process, from /proc. */
function memoryOf(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/**
 * CPU time (user + system) the process has used so far, in ms; NaN off Linux. Per request, it is a
 * steadier figure than req/s on a machine whose other work comes and goes.
 */
function cpuMsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime: clock ticks of 10 ms
    return ticks * 10;
  } catch {
    return Number.NaN;
  }
}

function buildServer(): void {
  log('building the server (pnpm --filter @keel/server build)');
  const result = spawnSync('pnpm', ['--filter', '@keel/server', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error('the server build failed: run `pnpm --filter @keel/server build` to see why');
}

/** The raw baseline as a child process; resolves once it listens. */
async function startBaseline(env: Record<string, string>): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench/baseline-server.ts')], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the baseline server did not start within 30 s:\n${output}`)), 30_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('baseline ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code) => reject(new Error(`the baseline server exited (${code}):\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

const query = (input: unknown) => encodeURIComponent(JSON.stringify(superjson.serialize(input)));

async function main(): Promise<void> {
  if (!process.argv.includes('--no-build')) buildServer();
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  let server: ServerProcess | undefined;
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  try {
    const env = await productionEnv({
      databaseUrl: database.url,
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      rateLimitEnabled: false,
    });
    log(`starting the server in production mode on ${database.description} (LOG_LEVEL=${env.LOG_LEVEL})`);
    server = await startServerProcess({ env, entry: 'built' });

    log('seeding: one user with 25 projects');
    const email = `bench-${Date.now()}@example.test`;
    const password = 'a benchmark passphrase';
    const auth = await trpcMutation<{ accessToken: string }>(server.url, 'auth.register', { email, password });
    const bearer = { authorization: `Bearer ${auth.accessToken}` };
    for (let i = 0; i < 25; i++)
      await trpcMutation(server.url, 'projects.create', { name: `Project ${i}`, description: 'x'.repeat(80) }, bearer);

    baseline = await startBaseline({
      DATABASE_URL: database.url,
      JWT_KEYS: env.JWT_KEYS as string,
      JWT_ISSUER: 'keel',
      JWT_AUDIENCE: 'keel-api',
    });
    const scenarios: Scenario[] = [];
    const measure = async (name: string, pid: number, load: () => Promise<LoadResult>, callsPerRequest = 1) => {
      log(`${name}: ${SECONDS} s`);
      const cpuBefore = cpuMsOf(pid);
      const result = await load();
      scenarios.push({
        name,
        result,
        rssMiB: memoryOf(pid).peak,
        cpuMsPerRequest: (cpuMsOf(pid) - cpuBefore) / Math.max(1, result.ok),
        ...(callsPerRequest > 1 ? { callsPerSecond: result.okPerSecond * callsPerRequest } : {}),
      });
    };
    const listInput = query({ limit: 20 });
    // A batch's input is an object of per-call superjson envelopes (not itself superjson-encoded).
    const batchOf = (inputs: unknown[]) =>
      encodeURIComponent(JSON.stringify(Object.fromEntries(inputs.map((input, i) => [i, superjson.serialize(input)]))));
    const batchInput = batchOf(Array.from({ length: 10 }, () => ({ limit: 20 })));
    // Ten different lists (limits 11..20): no two calls of the batch are the same query.
    const distinctInput = batchOf(Array.from({ length: 10 }, (_, i) => ({ limit: 11 + i })));
    const s = server;
    const b = baseline;

    // Warm both up so JIT and pools are not part of the first scenario.
    await runLoad({ url: `${s.url}/trpc/projects.list?input=${listInput}`, connections: 8, duration: 2, headers: bearer });
    await runLoad({ url: `${b.url}/`, connections: 8, duration: 2, headers: bearer });

    await measure('raw baseline (node:http + pg + jose)', b.pid, () =>
      runLoad({ url: `${b.url}/`, connections: CONNECTIONS, duration: SECONDS, headers: bearer }),
    );
    await measure('a. system.health (tRPC)', s.pid, () =>
      runLoad({ url: `${s.url}/trpc/system.health`, connections: CONNECTIONS, duration: SECONDS }),
    );
    await measure('b. projects.list, 20 rows (tRPC)', s.pid, () =>
      runLoad({ url: `${s.url}/trpc/projects.list?input=${listInput}`, connections: CONNECTIONS, duration: SECONDS, headers: bearer }),
    );
    await measure('c1. 10 x projects.list, separate requests', s.pid, () =>
      runLoad({ url: `${s.url}/trpc/projects.list?input=${listInput}`, connections: 16, duration: SECONDS, headers: bearer }),
    );
    const batchPath = Array.from({ length: 10 }, () => 'projects.list').join(',');
    await measure(
      'c2. 10 x projects.list, one batched request',
      s.pid,
      () => runLoad({ url: `${s.url}/trpc/${batchPath}?batch=1&input=${batchInput}`, connections: 16, duration: SECONDS, headers: bearer }),
      10,
    );
    await measure(
      'c3. 10 different projects.list, one batched request',
      s.pid,
      () =>
        runLoad({ url: `${s.url}/trpc/${batchPath}?batch=1&input=${distinctInput}`, connections: 16, duration: SECONDS, headers: bearer }),
      10,
    );
    await measure('d. auth.login (argon2id)', s.pid, () =>
      runLoad({
        url: `${s.url}/trpc/auth.login`,
        connections: 8,
        duration: SECONDS,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(superjson.serialize({ email, password })),
      }),
    );
    await measure('e. GET /api/projects, 20 rows (REST)', s.pid, () =>
      runLoad({ url: `${s.url}/api/projects?limit=20`, connections: CONNECTIONS, duration: SECONDS, headers: bearer }),
    );

    report(scenarios, { database: database.description, logLevel: env.LOG_LEVEL as string });
  } catch (error) {
    if (server) log(`server output:\n${server.output()}`);
    throw error;
  } finally {
    await baseline?.stop();
    await server?.stop();
    await database.stop();
  }
}

function report(scenarios: Scenario[], context: { database: string; logLevel: string }): void {
  const find = (prefix: string) => scenarios.find((s) => s.name.startsWith(prefix));
  const rawBaseline = find('raw');
  const list = find('b.');
  const singles = find('c1.');
  const batched = find('c2.');
  const distinct = find('c3.');
  const rows: Row[] = scenarios.map((s) => ({
    measure: s.name,
    value: `${fmt(s.result.okPerSecond, 0)} req/s${s.callsPerSecond ? ` (${fmt(s.callsPerSecond, 0)} calls/s)` : ''}`,
    note: `p50 ${s.result.latencyP50} ms, p99 ${s.result.latencyP99} ms, errors ${s.result.errors + s.result.non2xx + s.result.timeouts}, RSS peak ${fmt(s.rssMiB, 0)} MiB, server CPU ${fmt(s.cpuMsPerRequest, 2)} ms/req`,
  }));
  const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
  const goals: Row[] = [];
  if (list && rawBaseline) {
    const ratio = list.result.okPerSecond / rawBaseline.result.okPerSecond;
    goals.push({ measure: '(b) / baseline req/s', value: fmt(ratio, 2), goal: '>= 0.70', verdict: verdict(ratio >= 0.7) });
    goals.push({
      measure: '(b) p99 at 64 connections',
      value: `${list.result.latencyP99} ms`,
      goal: '<= 25 ms',
      verdict: verdict(list.result.latencyP99 <= 25),
    });
  }
  const errors = scenarios.reduce((n, s) => n + s.result.errors + s.result.non2xx + s.result.timeouts, 0);
  goals.push({ measure: 'errors, all scenarios', value: String(errors), goal: '0', verdict: verdict(errors === 0) });
  const peak = Math.max(...scenarios.filter((s) => !s.name.startsWith('raw')).map((s) => s.rssMiB));
  goals.push({ measure: 'server RSS peak', value: `${fmt(peak, 0)} MiB`, goal: '<= 200 MiB', verdict: verdict(peak <= 200) });
  if (singles && batched?.callsPerSecond) {
    const gain = batched.callsPerSecond / singles.result.okPerSecond;
    goals.push({ measure: '(c) batched / separate calls/s', value: fmt(gain, 2), goal: '>= 4', verdict: verdict(gain >= 4) });
  }
  if (singles && distinct?.callsPerSecond) {
    const gain = distinct.callsPerSecond / singles.result.okPerSecond;
    goals.push({
      measure: '(c) ten different calls batched / separate',
      value: fmt(gain, 2),
      note: 'no sharing possible: the cost of the calls themselves',
    });
  }
  process.stdout.write('\n');
  printTable(rows);
  process.stdout.write('\n');
  printTable(goals);
  const file = writeResults('latest', {
    when: new Date().toISOString(),
    machine: machine(),
    secondsPerScenario: SECONDS,
    ...context,
    scenarios,
    goals,
  });
  log(`results written to ${file}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
