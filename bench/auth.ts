/**
 * Auth benchmark: `pnpm bench:auth [--users 64] [--duration 10] [--connections 8] [--flood 200]
 * [--flood-addresses 4] [--built]`.
 *
 * The server runs as a child process in production mode (rate limits off, logs at warn) on
 * DATABASE_URL if set, else on a fresh embedded PostgreSQL in a temp directory. Load comes from
 * this process over loopback. Measured, and printed as a table and to bench/results/auth.json:
 *   1. the raw argon2id verify rate of this machine (same library and parameters): with as many
 *      verifies in flight as the server has hashing slots (PASSWORD_HASH_CONCURRENCY, one core
 *      fewer than the machine has: one stays for everything else), the ceiling for logins; and
 *      with one per libuv thread-pool thread, the machine's;
 *   2. auth.login throughput (autocannon), and its ratio to (1) at the server's slots (goal >= 0.9);
 *   3. p50/p99 latency of auth.me (a cheap authenticated query) sampled at a steady pace while a
 *      flood of `--flood` concurrent wrong-password logins from `--flood-addresses` client
 *      addresses runs (goal p99 <= 50 ms), next to the same sample on an idle server; twice: with
 *      the limits off (load shedding alone refuses the excess) and on a second server with the
 *      production limits on. The flood never waits between answers (a 429 is followed at once by
 *      the next attempt, as an attacker does); the server sheds what its hashing queue cannot take
 *      and holds its refusals (REFUSAL_DELAY_MS). The sampler runs in a process of its own, so the
 *      load generator's event loop is not in its figures; the server's CPU per flood answer is read
 *      from /proc;
 *   4. auth.refresh throughput. Every refresh needs a live refresh token: the run signs in a pool
 *      of sessions first (4 per connection), each request takes a token from the pool and its
 *      answer puts the rotated successor back, so no token is ever presented twice (no reuse).
 * It asserts nothing; every phase is bounded, and the whole run is stopped after a deadline.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseConfig } from '../server/src/config.js';
import { measureVerifyRate } from './lib/argon2.js';
import { type BenchDatabase, benchDatabase } from './lib/database.js';
import { type LatencySample, type LoadRequest, type LoadResult, loadAutocannon, mapConcurrent, runLoad } from './lib/load.js';
import { measureProcess, type WindowStats } from './lib/process-stats.js';
import { fmt, machine, printTable, type Row, writeResults } from './lib/report.js';
import { sampleLatencyInChild } from './lib/sampler-process.js';
import { productionEnv, type ServerProcess, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcData, trpcMutation } from './lib/trpc.js';

const GOAL_LOGIN_RATIO = 0.9;
const GOAL_ME_P99_MS = 50;
const PASSWORD = 'a sturdy bench passphrase';

const log = (message: string) => process.stderr.write(`[bench:auth] ${message}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '64' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '8' },
      flood: { type: 'string', default: '200' },
      'flood-addresses': { type: 'string', default: '4' },
      'argon2-seconds': { type: 'string', default: '5' },
      built: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, value: string, min: number, max: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
  return {
    users: int('users', values.users, 1, 10_000),
    duration: int('duration', values.duration, 1, 120),
    connections: int('connections', values.connections, 1, 256),
    flood: int('flood', values.flood, 1, 1_000),
    floodAddresses: int('flood-addresses', values['flood-addresses'], 1, 250),
    argon2Seconds: int('argon2-seconds', values['argon2-seconds'], 1, 60),
    entry: values.built ? ('built' as const) : ('tsx' as const),
  };
}

interface AuthAnswer {
  accessToken: string;
  refreshToken?: string;
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof options>;
  try {
    opts = options();
    loadAutocannon(); // fail now, not after the set-up, when it is missing
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
    return;
  }
  const threadpool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  // Generous: set-up, five measured phases of `duration` s each, two servers, and the argon2 runs.
  const deadlineSeconds = 180 + opts.duration * 6 + 2 * opts.argon2Seconds + Math.ceil(opts.users / 10);

  let database: BenchDatabase | undefined;
  let server: ServerProcess | undefined;
  const cleanup = async () => {
    await server?.stop().catch(() => {});
    await database?.stop().catch(() => {});
  };
  const abort = (why: string) => {
    log(why);
    void cleanup().finally(() => process.exit(1));
  };
  const deadline = setTimeout(() => abort(`stopped: the run took longer than its ${deadlineSeconds} s deadline`), deadlineSeconds * 1000);
  deadline.unref();
  process.once('SIGINT', () => abort('interrupted'));
  process.once('SIGTERM', () => abort('terminated'));

  const before = machine();
  if ((before.loadAverage[0] ?? 0) > before.cpus / 2) {
    log(`warning: the machine is busy (1-minute load ${before.loadAverage[0]} on ${before.cpus} CPUs): the figures will be low and noisy`);
  }
  try {
    database = await benchDatabase({ url: process.env.DATABASE_URL, log });
    // Behind a trusted proxy on loopback, so the flood comes from a few client addresses (in the logs).
    const env = await productionEnv({ databaseUrl: database.url, extra: { TRUST_PROXY: 'loopback' } });
    const config = parseConfig(env);
    const passwords = config.passwords;

    log(
      `1/5 raw argon2id verify (m=${passwords.memoryKib}, t=${passwords.iterations}, p=${passwords.parallelism}): ` +
        `${passwords.concurrency} in flight (the server's hashing slots), then ${threadpool} (the thread pool), ${opts.argon2Seconds} s each`,
    );
    const raw = await measureVerifyRate(passwords, passwords.concurrency, opts.argon2Seconds * 1000);
    const rawMachine =
      threadpool === passwords.concurrency ? raw : await measureVerifyRate(passwords, threadpool, opts.argon2Seconds * 1000);

    log(`starting the server (${opts.entry}, production, limits off) on ${database.description}`);
    server = await startServerProcess({ env, entry: opts.entry });
    const base = server.url;
    log(`server ready at ${base} (pid ${server.pid})`);

    // Seed users through the API (registration hashes: a few at a time).
    const run = randomBytes(3).toString('hex');
    const emails = Array.from({ length: opts.users }, (_, i) => `bench-${run}-${i}@example.test`);
    const seedStarted = Date.now();
    await mapConcurrent(emails, threadpool, (email) => trpcMutation(base, 'auth.register', { email, password: PASSWORD }));
    log(`seeded ${emails.length} users in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);
    const loginBodies = emails.map((email) => trpcBody({ email, password: PASSWORD }));
    // Warm-up: connections in the pool, JIT, the dummy hash.
    await mapConcurrent(emails.slice(0, 2 * threadpool), threadpool, (email) =>
      trpcMutation(base, 'auth.login', { email, password: PASSWORD }),
    );

    const loginRequest = loginLoad(loginBodies, []);

    log(`2/5 auth.login: ${opts.connections} connections for ${opts.duration} s`);
    const login = await runLoad({ url: base, connections: opts.connections, duration: opts.duration, requests: [loginRequest] });
    const loginRatio = login.okPerSecond / raw.verifiesPerSecond;

    const me = await trpcMutation<AuthAnswer>(base, 'auth.login', { email: emails[0], password: PASSWORD });
    const floodBodies = emails.map((email) => trpcBody({ email, password: 'not the password' }));
    const flood = (url: string, pid: number) =>
      floodPhase({
        url,
        pid,
        accessToken: me.accessToken,
        bodies: floodBodies,
        connections: opts.flood,
        addresses: opts.floodAddresses,
        seconds: opts.duration,
      });

    log(
      `3/5 auth.me latency: idle, then during a flood of ${opts.flood} concurrent wrong-password logins from ${opts.floodAddresses} addresses (limits off)`,
    );
    const meIdle = await sampleLatencyInChild({
      url: `${base}/trpc/auth.me`,
      headers: { authorization: `Bearer ${me.accessToken}` },
      intervalMs: 20,
      durationMs: 3_000,
    });
    const shedOnly = await flood(base, server.pid);

    // A pool of live refresh tokens: each request takes one, its answer returns the successor.
    const poolSize = Math.max(32, 4 * opts.connections);
    const pool = (
      await mapConcurrent(
        Array.from({ length: poolSize }, (_, i) => emails[i % emails.length] as string),
        threadpool,
        (email) => trpcMutation<AuthAnswer>(base, 'auth.login', { email, password: PASSWORD }),
      )
    ).map((a) => a.refreshToken as string);
    let starved = 0;
    const refreshRequest: LoadRequest = {
      method: 'POST',
      path: '/trpc/auth.refresh',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => {
        const token = pool.pop();
        if (token === undefined) starved += 1; // answered 401, counted as non-2xx
        return { ...request, body: trpcBody({ refreshToken: token ?? 'A'.repeat(43) }) };
      },
      onResponse: (status, body) => {
        const next = status === 200 ? trpcData<AuthAnswer>(body)?.refreshToken : undefined;
        if (next) pool.push(next);
      },
    };
    log(`4/5 auth.refresh: ${opts.connections} connections for ${opts.duration} s (pool of ${poolSize} sessions)`);
    const refresh = await runLoad({ url: base, connections: opts.connections, duration: opts.duration, requests: [refreshRequest] });

    await server.stop();
    server = undefined;
    log('5/5 the same flood on a server with the production limits on (per address, per account, the general limit)');
    server = await startServerProcess({ env: { ...env, RATE_LIMIT_ENABLED: 'true' }, entry: opts.entry });
    const limited = await flood(server.url, server.pid);
    await server.stop();
    server = undefined;

    const floodRows = (label: string, phase: FloodPhase): Row[] => {
      const { result, stats, me: sample } = phase;
      const answers = Object.values(result.statuses).reduce((sum, n) => sum + n, 0);
      const per = (status: string) => fmt((result.statuses[status] ?? 0) / result.durationSeconds);
      return [
        {
          measure: `auth.me p50, login flood (${label})`,
          value: `${fmt(sample.p50, 2)} ms`,
          note: `p90 ${fmt(sample.p90, 2)} ms, ${sample.samples} samples, ${sample.failures} failed`,
        },
        {
          measure: `auth.me p99, login flood (${label})`,
          value: `${fmt(sample.p99, 2)} ms`,
          goal: `<= ${GOAL_ME_P99_MS} ms`,
          verdict: sample.p99 <= GOAL_ME_P99_MS ? 'met' : 'missed',
          note: `max ${fmt(sample.max, 2)} ms`,
        },
        {
          measure: `login flood (${label}): answers`,
          value: `${fmt(answers / result.durationSeconds)} /s`,
          note: `checked (401) ${per('401')} /s, refused (429) ${per('429')} /s; ${result.errors} errors, ${result.timeouts} timeouts; p50 ${result.latencyP50} ms, p99 ${result.latencyP99} ms`,
        },
        {
          measure: `login flood (${label}): server CPU per answer`,
          value: `${fmt(stats.allCpuUs / Math.max(1, answers), 0)} µs`,
          note: `event loop ${fmt(stats.mainCpuUs / Math.max(1, answers), 0)} µs; the server used ${fmt(stats.allCpuUs / 1e6 / result.durationSeconds, 2)} cores`,
        },
      ];
    };

    const rows: Row[] = [
      {
        measure: `argon2id verify, raw, ${raw.concurrency} in flight`,
        value: `${fmt(raw.verifiesPerSecond)} /s`,
        note: `${raw.verifies} verifies in ${fmt(raw.seconds)} s: the server's hashing slots`,
      },
      {
        measure: `argon2id verify, raw, ${rawMachine.concurrency} in flight`,
        value: `${fmt(rawMachine.verifiesPerSecond)} /s`,
        note: `${rawMachine.verifies} verifies in ${fmt(rawMachine.seconds)} s: the whole machine`,
      },
      {
        measure: 'auth.login',
        value: `${fmt(login.okPerSecond)} /s`,
        note: `p50 ${login.latencyP50} ms, p99 ${login.latencyP99} ms, ${login.ok} ok, ${login.non2xx} non-2xx, ${login.errors} errors`,
      },
      {
        measure: `auth.login / raw verify (${raw.concurrency} in flight)`,
        value: fmt(loginRatio, 2),
        goal: `>= ${GOAL_LOGIN_RATIO}`,
        verdict: loginRatio >= GOAL_LOGIN_RATIO ? 'met' : 'missed',
        note: `${fmt(login.okPerSecond / rawMachine.verifiesPerSecond, 2)} of the whole machine's`,
      },
      {
        measure: 'auth.me p50, idle server',
        value: `${fmt(meIdle.p50, 2)} ms`,
        note: `p99 ${fmt(meIdle.p99, 2)} ms, ${meIdle.samples} samples`,
      },
      ...floodRows('limits off', shedOnly),
      ...floodRows('production limits', limited),
      {
        measure: 'auth.refresh',
        value: `${fmt(refresh.okPerSecond)} /s`,
        note: `p50 ${refresh.latencyP50} ms, p99 ${refresh.latencyP99} ms, ${refresh.ok} ok, ${refresh.non2xx} non-2xx, ${refresh.errors} errors`,
      },
    ];
    const after = machine();
    process.stdout.write(
      `\nKeel auth benchmark (${after.cpus} CPUs, Node ${process.version}, server: ${opts.entry}, ${database.description}; ` +
        `load average ${before.loadAverage.join(' ')} before, ${after.loadAverage.join(' ')} after)\n\n`,
    );
    printTable(rows);

    const floodResults = (phase: FloodPhase) => ({
      ...phase.me,
      goalP99Ms: GOAL_ME_P99_MS,
      met: phase.me.p99 <= GOAL_ME_P99_MS,
      flood: phase.result,
      serverStats: phase.stats,
    });
    const file = writeResults('auth', {
      benchmark: 'auth',
      finishedAt: new Date().toISOString(),
      machine: { ...after, loadAverageBefore: before.loadAverage },
      setup: {
        server: {
          entry: opts.entry,
          mode: 'production',
          rateLimits: 'off, then on for the second flood',
          logLevel: 'warn',
          refusalDelayMs: config.http.refusalDelayMs,
        },
        database: database.description,
        users: opts.users,
        connections: opts.connections,
        flood: { connections: opts.flood, addresses: opts.floodAddresses, password: 'wrong', samplerInOwnProcess: true },
        durationSeconds: opts.duration,
        argon2: passwords,
        refreshMethod: `pool of ${poolSize} sessions signed in before the run; each request takes a live token, its answer returns the rotated successor to the pool`,
      },
      results: {
        argon2RawVerify: raw,
        argon2RawVerifyMachine: rawMachine,
        login: { ...login, ratioToRawVerify: loginRatio, goal: `>= ${GOAL_LOGIN_RATIO}`, met: loginRatio >= GOAL_LOGIN_RATIO },
        meIdle,
        meDuringLoginFlood: floodResults(shedOnly),
        meDuringLoginFloodWithLimits: floodResults(limited),
        refresh: { ...refresh, poolSize, starvedRequests: starved },
      },
    });
    process.stdout.write(`\nresults: ${file}\n`);
  } catch (error) {
    const output = server?.output();
    log(`failed: ${error instanceof Error ? error.message : String(error)}`);
    if (output) log(`server output (last lines):\n${output}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    await cleanup();
  }
}

/** auth.login calls, each with the next of `bodies` and, when there are any, the next of `addresses` as X-Forwarded-For. */
function loginLoad(bodies: string[], addresses: string[]): LoadRequest {
  let next = 0;
  return {
    method: 'POST',
    path: '/trpc/auth.login',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request) => {
      next += 1;
      const address = addresses[next % Math.max(1, addresses.length)];
      return {
        ...request,
        headers: address === undefined ? request.headers : { ...request.headers, 'x-forwarded-for': address },
        body: bodies[next % bodies.length] as string,
      };
    },
  };
}

interface FloodPhase {
  result: LoadResult;
  stats: WindowStats;
  me: LatencySample;
}

/**
 * `connections` wrong-password logins that never pause, from `addresses` client addresses, for
 * `seconds` (+1), with auth.me sampled beside them from its own process after half a second; the
 * server's CPU over the whole flood.
 */
async function floodPhase(options: {
  url: string;
  pid: number;
  accessToken: string;
  bodies: string[];
  connections: number;
  addresses: number;
  seconds: number;
}): Promise<FloodPhase> {
  const addresses = Array.from({ length: options.addresses }, (_, i) => `198.18.0.${i + 1}`);
  const request = loginLoad(options.bodies, addresses);
  const { result, stats } = await measureProcess(options.pid, undefined, async () => {
    const flood = runLoad({ url: options.url, connections: options.connections, duration: options.seconds + 1, requests: [request] });
    // Warm-up, not a measurement: the flood's connections are open and sending before sampling starts.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const me = await sampleLatencyInChild({
      url: `${options.url}/trpc/auth.me`,
      headers: { authorization: `Bearer ${options.accessToken}` },
      intervalMs: 20,
      durationMs: options.seconds * 1000,
    });
    return { me, flood: await flood };
  });
  return { result: result.flood, stats, me: result.me };
}

await main();
