/**
 * `pnpm bench`: builds the server, starts it in production mode (as `pnpm start` runs it) on a
 * seeded database (embedded PostgreSQL unless DATABASE_URL is given), and loads it with autocannon
 * from this process, next to a raw baseline server doing the same work with nothing in between:
 *
 *   raw  node:http + pg + jose + JSON.stringify answering (b) (bench/baseline-server.ts)
 *   a.   system.health over tRPC
 *   b.   authenticated projects.list returning 20 rows, 64 connections: measured in rounds that
 *        alternate with the raw baseline, so that both see the same machine
 *   c.   ten projects.list in one batched request (identical, then different) vs ten requests
 *   e.   the REST twin of (b): GET /api/projects
 *   f.   an authenticated write: projects.create
 *   d.   auth.login (argon2id; the main thread's share is what the request path costs)
 *
 * For each: req/s, p50/p99, and per request the server's CPU time (event-loop thread and all
 * threads, µs), the bytes its JavaScript heap allocated (KB) and young-generation collections,
 * read from /proc and V8's GC profiler (bench/lib/probe.mjs). CPU and allocation per request move
 * far less than req/s on a shared machine; ratios against the raw baseline are taken within the
 * same round. Prints tables and writes bench/results/latest.json. Bounded, loopback only.
 *
 *   pnpm bench                          # all scenarios, ~2 minutes
 *   BENCH_SECONDS=4 BENCH_ROUNDS=2 pnpm bench
 *   DATABASE_URL=postgresql://... pnpm bench
 *   pnpm bench -- --no-build            # reuse server/dist
 *   pnpm bench -- --only b              # the paired (b)/raw rounds only
 */
import { spawnSync } from 'node:child_process';
import superjson from 'superjson';
import { envSchema } from '../server/src/config.js';
import { startBaseline } from './lib/baseline-process.js';
import { benchDatabase } from './lib/database.js';
import { type LoadOptions, type LoadResult, runLoad } from './lib/load.js';
import { measureProcess, median, memoryOf, PROBE_MODULE, probeFileFor, type WindowStats } from './lib/process-stats.js';
import { fmt, machine, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, REPO_ROOT, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcMutation } from './lib/trpc.js';

/** argon2id's memory per hash (MiB) and the hashing slots, as the server's defaults set them on this machine. */
const ARGON2_MIB = Math.round(envSchema.shape.ARGON2_MEMORY_KIB.parse(undefined) / 1024);
const HASHING_SLOTS = envSchema.shape.PASSWORD_HASH_CONCURRENCY.parse(undefined);

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 64;
const log = (message: string) => process.stdout.write(`[bench] ${message}\n`);

/** A process under load: its pid and the file its probe writes to. */
interface Target {
  url: string;
  pid: number;
  probeFile: string;
}

/** One scenario's figures (medians over its rounds when it ran several). */
interface Scenario {
  name: string;
  okPerSecond: number;
  callsPerRequest: number;
  p50: number;
  p99: number;
  errors: number;
  rssPeakMiB: number;
  perRequest: { mainCpuUs: number; allCpuUs: number; allocatedKB: number; youngGCsPer1000: number; gcUs: number };
  /** (b) only: the median over rounds of (b) req/s divided by the raw baseline's in the same round. */
  ratioToRaw?: number;
}

function buildServer(): void {
  log('building the server (pnpm --filter @keel/server build)');
  const result = spawnSync('pnpm', ['--filter', '@keel/server', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error('the server build failed: run `pnpm --filter @keel/server build` to see why');
}

interface Window {
  result: LoadResult;
  stats: WindowStats;
}

/** One load window against `target`, measured. */
async function loadWindow(target: Target, options: Omit<LoadOptions, 'url' | 'duration'> & { path: string }): Promise<Window> {
  const { path, ...rest } = options;
  return measureProcess(target.pid, target.probeFile, () => runLoad({ ...rest, url: `${target.url}${path}`, duration: SECONDS }));
}

/** A scenario's figures from its windows (one, or one per round). */
function summarise(name: string, target: Target, windows: Window[], callsPerRequest = 1): Scenario {
  const per = (pick: (w: Window) => number) => median(windows.map((w) => pick(w) / Math.max(1, w.result.ok)));
  return {
    name,
    okPerSecond: median(windows.map((w) => w.result.okPerSecond)),
    callsPerRequest,
    p50: median(windows.map((w) => w.result.latencyP50)),
    p99: median(windows.map((w) => w.result.latencyP99)),
    errors: windows.reduce((n, w) => n + w.result.errors + w.result.non2xx + w.result.timeouts, 0),
    rssPeakMiB: memoryOf(target.pid).peak,
    perRequest: {
      mainCpuUs: per((w) => w.stats.mainCpuUs),
      allCpuUs: per((w) => w.stats.allCpuUs),
      allocatedKB: per((w) => w.stats.allocatedBytes / 1024),
      youngGCsPer1000: per((w) => w.stats.scavenges * 1000),
      gcUs: per((w) => w.stats.gcMicros),
    },
  };
}

/** tRPC GET `?input=` of one call, and of a batch (an object of per-call superjson envelopes). */
const query = (input: unknown) => encodeURIComponent(JSON.stringify(superjson.serialize(input)));
const batchOf = (inputs: unknown[]) =>
  encodeURIComponent(JSON.stringify(Object.fromEntries(inputs.map((input, i) => [i, superjson.serialize(input)]))));

async function main(): Promise<void> {
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  if (!process.argv.includes('--no-build')) buildServer();
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const probeFile = probeFileFor('server');
  let server: Awaited<ReturnType<typeof startServerProcess>> | undefined;
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  try {
    const env = await productionEnv({
      databaseUrl: database.url,
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      // Every limit on, as in production, with budgets no scenario reaches: their cost is measured.
      rateLimitEnabled: true,
      extra: {
        KEEL_BENCH_PROBE: probeFile,
        RATE_LIMIT_API_PER_IP: '1000000',
        RATE_LIMIT_API_PER_USER: '1000000',
        RATE_LIMIT_LOGIN_PER_IP: '100000',
        RATE_LIMIT_REGISTER_PER_IP: '100000',
      },
    });
    log(`starting the server as \`pnpm start\` runs it, production mode, on ${database.description} (LOG_LEVEL=${env.LOG_LEVEL})`);
    server = await startServerProcess({ env, entry: 'built', nodeArgs: ['--import', PROBE_MODULE] });
    const keel: Target = { url: server.url, pid: server.pid, probeFile };

    log('seeding: a reader with 25 projects, a writer');
    const password = 'a benchmark passphrase';
    const email = `bench-${Date.now()}@example.test`;
    const reader = await trpcMutation<{ accessToken: string }>(server.url, 'auth.register', { email, password });
    const bearer = { authorization: `Bearer ${reader.accessToken}` };
    for (let i = 0; i < 25; i++)
      await trpcMutation(server.url, 'projects.create', { name: `Project ${i}`, description: 'x'.repeat(80) }, bearer);
    const writer = await trpcMutation<{ accessToken: string }>(server.url, 'auth.register', {
      email: `writer-${Date.now()}@example.test`,
      password,
    });
    // One account per login connection: an account checks its passwords one at a time beyond its
    // free attempts (decision 0007), so concurrent sign-ins of one account are refused by design.
    const loginEmails = Array.from({ length: 8 }, (_, i) => `login-${i}-${Date.now()}@example.test`);
    for (const loginEmail of loginEmails) await trpcMutation(server.url, 'auth.register', { email: loginEmail, password });

    baseline = await startBaseline({
      DATABASE_URL: database.url,
      JWT_KEYS: env.JWT_KEYS as string,
      JWT_ISSUER: 'keel',
      JWT_AUDIENCE: 'keel-api',
    });
    const raw: Target = { url: baseline.url, pid: baseline.pid, probeFile: baseline.probeFile };

    const list = { path: `/trpc/projects.list?input=${query({ limit: 20 })}`, connections: CONNECTIONS, headers: bearer };
    log('warming up both servers');
    await runLoad({ url: `${server.url}${list.path}`, connections: 8, duration: 3, headers: bearer });
    await runLoad({ url: `${raw.url}/`, connections: 8, duration: 3, headers: bearer });

    const scenarios: Scenario[] = [];
    const rawWindows: Window[] = [];
    const listWindows: Window[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}/${ROUNDS}: raw baseline, then (b) projects.list, ${SECONDS} s each`);
      rawWindows.push(await loadWindow(raw, { path: '/', connections: CONNECTIONS, headers: bearer }));
      listWindows.push(await loadWindow(keel, list));
    }
    scenarios.push(summarise('raw baseline (node:http + pg + jose)', raw, rawWindows));
    scenarios.push({
      ...summarise('b. projects.list, 20 rows (tRPC)', keel, listWindows),
      ratioToRaw: median(listWindows.map((w, i) => w.result.okPerSecond / (rawWindows[i] as Window).result.okPerSecond)),
    });

    if (only !== 'b') {
      const once = async (name: string, options: Parameters<typeof loadWindow>[1], callsPerRequest = 1) => {
        log(`${name}: ${SECONDS} s`);
        scenarios.push(summarise(name, keel, [await loadWindow(keel, options)], callsPerRequest));
      };
      const batchPath = Array.from({ length: 10 }, () => 'projects.list').join(',');
      await once('a. system.health (tRPC)', { path: '/trpc/system.health', connections: CONNECTIONS });
      await once('c1. 10 x projects.list, separate requests', { ...list, connections: 16 });
      await once(
        'c2. 10 x projects.list, one batched request',
        {
          path: `/trpc/${batchPath}?batch=1&input=${batchOf(Array.from({ length: 10 }, () => ({ limit: 20 })))}`,
          connections: 16,
          headers: bearer,
        },
        10,
      );
      await once(
        'c3. 10 different projects.list, one batched request',
        // Limits 11..20: no two calls of the batch are the same query, so none is shared.
        {
          path: `/trpc/${batchPath}?batch=1&input=${batchOf(Array.from({ length: 10 }, (_, i) => ({ limit: 11 + i })))}`,
          connections: 16,
          headers: bearer,
        },
        10,
      );
      await once('e. GET /api/projects, 20 rows (REST)', { path: '/api/projects?limit=20', connections: CONNECTIONS, headers: bearer });
      let created = 0;
      await once('f. projects.create (tRPC, authenticated write)', {
        path: '/trpc/projects.create',
        connections: CONNECTIONS,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${writer.accessToken}` },
            setupRequest: (request) => ({ ...request, body: trpcBody({ name: `Written ${created++}`, description: 'y'.repeat(80) }) }),
          },
        ],
      });
      let signIns = 0;
      await once('d. auth.login (argon2id)', {
        path: '/trpc/auth.login',
        connections: 8,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            setupRequest: (request) => ({ ...request, body: trpcBody({ email: loginEmails[signIns++ % loginEmails.length], password }) }),
          },
        ],
      });
    }
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
  const raw = find('raw') as Scenario;
  const rows: Row[] = scenarios.map((s) => {
    const calls = s.callsPerRequest > 1 ? ` (${fmt(s.okPerSecond * s.callsPerRequest, 0)} calls/s)` : '';
    const ratio = s.ratioToRaw ?? s.okPerSecond / raw.okPerSecond;
    const p = s.perRequest;
    return {
      measure: s.name,
      value: `${fmt(s.okPerSecond, 0)} req/s${calls}`,
      note:
        `${s === raw ? '' : `x${fmt(ratio, 2)} raw, `}CPU ${fmt(p.mainCpuUs, 0)} µs main / ${fmt(p.allCpuUs, 0)} µs all threads, ` +
        `${fmt(p.allocatedKB, 0)} KB, ${fmt(p.youngGCsPer1000, 0)} young GCs/1000, ` +
        `p50 ${s.p50} ms, p99 ${s.p99} ms, errors ${s.errors}, RSS peak ${fmt(s.rssPeakMiB, 0)} MiB`,
    };
  });
  const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
  const goals: Row[] = [];
  const list = find('b.');
  if (list?.ratioToRaw !== undefined) {
    goals.push({
      measure: '(b) / raw req/s, same rounds',
      value: fmt(list.ratioToRaw, 2),
      goal: '>= 0.70',
      verdict: verdict(list.ratioToRaw >= 0.7),
    });
    goals.push({
      measure: '(b) CPU per request / raw',
      value: fmt(list.perRequest.allCpuUs / raw.perRequest.allCpuUs, 2),
      note: `${fmt(list.perRequest.allCpuUs, 0)} vs ${fmt(raw.perRequest.allCpuUs, 0)} µs, all threads`,
    });
    goals.push({
      measure: '(b) KB allocated per request / raw',
      value: fmt(list.perRequest.allocatedKB / raw.perRequest.allocatedKB, 2),
      note: `${fmt(list.perRequest.allocatedKB, 0)} vs ${fmt(raw.perRequest.allocatedKB, 0)} KB`,
    });
    goals.push({
      measure: '(b) p99 / raw p99 at 64 connections',
      value: fmt(list.p99 / raw.p99, 2),
      goal: '<= 2',
      verdict: verdict(list.p99 <= 2 * raw.p99),
      note: `${list.p99} vs ${raw.p99} ms`,
    });
  }
  const errors = scenarios.reduce((n, s) => n + s.errors, 0);
  goals.push({ measure: 'errors, all scenarios', value: String(errors), goal: '0', verdict: verdict(errors === 0) });
  // Peaks are the process's high-water mark when each scenario ended; logins run last.
  const logins = find('d.');
  const peak = Math.max(...scenarios.filter((s) => s !== raw && s !== logins).map((s) => s.rssPeakMiB));
  goals.push({
    measure: 'server RSS peak, request scenarios',
    value: `${fmt(peak, 0)} MiB`,
    goal: '<= 200 MiB',
    verdict: verdict(peak <= 200),
  });
  if (logins) {
    // Each hashing slot holds argon2id's memory (OWASP's minimum, 19 MiB) while its hash runs: a
    // cost per slot, and slots follow the cores (PASSWORD_HASH_CONCURRENCY), so no flat figure holds.
    const allowance = 200 + HASHING_SLOTS * ARGON2_MIB;
    goals.push({
      measure: 'server RSS peak, logins included',
      value: `${fmt(logins.rssPeakMiB, 0)} MiB`,
      goal: `<= ${allowance} MiB`,
      verdict: verdict(logins.rssPeakMiB <= allowance),
      note: `200 MiB + ${HASHING_SLOTS} hashing slot(s) x ${ARGON2_MIB} MiB of argon2id memory, held only while a hash runs`,
    });
  }
  const singles = find('c1.');
  const batched = find('c2.');
  const distinct = find('c3.');
  if (singles && batched) {
    const gain = (batched.okPerSecond * batched.callsPerRequest) / singles.okPerSecond;
    goals.push({ measure: '(c) batched / separate calls/s', value: fmt(gain, 2), goal: '>= 4', verdict: verdict(gain >= 4) });
  }
  if (singles && distinct) {
    goals.push({
      measure: '(c) ten different calls batched / separate',
      value: fmt((distinct.okPerSecond * distinct.callsPerRequest) / singles.okPerSecond, 2),
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
    secondsPerWindow: SECONDS,
    rounds: ROUNDS,
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
