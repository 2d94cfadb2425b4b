/**
 * `pnpm bench:observe`: what observability costs. The built server runs (as `pnpm start` does,
 * production mode, one seeded database) in five configurations side by side, next to the raw
 * baseline (bench/baseline-server.ts):
 *
 *   off         no OTEL_* endpoint, no METRICS_*, no slow logs (the default)
 *   metrics     METRICS_TOKEN set (every call counted and timed; nobody scrapes during the load)
 *   slow logs   SLOW_PROCEDURE_MS and SLOW_QUERY_MS set (thresholds no call reaches: the timing and attribution alone)
 *   trace 10%   OTLP/HTTP protobuf export, OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG 0.1
 *   trace 100%  the same, every request sampled
 *
 * The spans go to a sink in this process that reads and drops each export (a collector's cost
 * is not Keel's). Each round loads raw and every configuration in turn with the same request,
 * so all see the same machine: (b) authenticated projects.list, 20 rows, and (c2) ten of them in
 * one batched request (ten procedure spans per HTTP span). Per request: the server's CPU time
 * (all threads, µs) and the bytes its heap allocated (KB), medians over rounds, and the ratios
 * against `off` and raw in the same rounds. Writes bench/results/observe.json. Loopback only.
 *
 *   pnpm bench:observe
 *   BENCH_SECONDS=4 BENCH_ROUNDS=2 pnpm bench:observe -- --no-build
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import superjson from 'superjson';
import { type BaselineProcess, startBaseline } from './lib/baseline-process.js';
import { benchDatabase } from './lib/database.js';
import { runLoad } from './lib/load.js';
import { measureProcess, median, PROBE_MODULE, probeFileFor, type WindowStats } from './lib/process-stats.js';
import { fmt, machine, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, REPO_ROOT, type ServerProcess, startServerProcess } from './lib/server-process.js';
import { trpcMutation } from './lib/trpc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 32;
const log = (message: string) => process.stdout.write(`[bench:observe] ${message}\n`);

interface Variant {
  name: string;
  env: Record<string, string>;
}

interface Target {
  name: string;
  url: string;
  pid: number;
  probeFile: string;
}

interface Sample {
  okPerSecond: number;
  cpuUs: number;
  mainCpuUs: number;
  allocatedKB: number;
  errors: number;
}

/** An OTLP/HTTP endpoint that accepts and drops every export: Keel's side of the cost only. */
async function startSink(): Promise<{ url: string; exports: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, exports: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function window(target: Target, path: string, headers: Record<string, string>): Promise<Sample> {
  const { result, stats } = await measureProcess(target.pid, target.probeFile, () =>
    runLoad({ url: `${target.url}${path}`, connections: CONNECTIONS, duration: SECONDS, headers }),
  );
  const per = (value: number) => value / Math.max(1, result.ok);
  const s: WindowStats = stats;
  return {
    okPerSecond: result.okPerSecond,
    cpuUs: per(s.allCpuUs),
    mainCpuUs: per(s.mainCpuUs),
    allocatedKB: per(s.allocatedBytes / 1024),
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

const query = (input: unknown) => encodeURIComponent(JSON.stringify(superjson.serialize(input)));
const batchOf = (inputs: unknown[]) =>
  encodeURIComponent(JSON.stringify(Object.fromEntries(inputs.map((input, i) => [i, superjson.serialize(input)]))));

async function main(): Promise<void> {
  if (!process.argv.includes('--no-build')) {
    log('building the server (pnpm --filter @keel/server build)');
    const built = spawnSync('pnpm', ['--filter', '@keel/server', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (built.status !== 0) throw new Error('the server build failed: run `pnpm --filter @keel/server build` to see why');
  }
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const sink = await startSink();
  const servers: ServerProcess[] = [];
  let baseline: BaselineProcess | undefined;
  try {
    const common = await productionEnv({ databaseUrl: database.url, logLevel: 'warn', rateLimitEnabled: false });
    const tracing = (ratio: string) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: ratio,
    });
    const variants: Variant[] = [
      { name: 'off', env: {} },
      { name: 'metrics', env: { METRICS_TOKEN: 'bench-metrics-token-0123456789' } },
      { name: 'slow logs', env: { SLOW_PROCEDURE_MS: '10000', SLOW_QUERY_MS: '10000' } },
      { name: 'trace 10%', env: tracing('0.1') },
      { name: 'trace 100%', env: tracing('1') },
    ];
    const targets: Target[] = [];
    for (const [i, variant] of variants.entries()) {
      const probeFile = probeFileFor(`observe-${i}`);
      log(`starting the server: ${variant.name}`);
      const server = await startServerProcess({
        env: { ...common, ...variant.env, KEEL_BENCH_PROBE: probeFile, ...(i > 0 ? { MIGRATE_ON_START: 'false' } : {}) },
        entry: 'built',
        nodeArgs: ['--import', PROBE_MODULE],
      });
      servers.push(server);
      targets.push({ name: variant.name, url: server.url, pid: server.pid, probeFile });
    }
    const first = targets[0] as Target;
    log('seeding a reader with 25 projects');
    const reader = await trpcMutation<{ accessToken: string }>(first.url, 'auth.register', {
      email: `observe-${Date.now()}@example.test`,
      password: 'a benchmark passphrase',
    });
    const bearer = { authorization: `Bearer ${reader.accessToken}` };
    for (let i = 0; i < 25; i++) await trpcMutation(first.url, 'projects.create', { name: `Project ${i}` }, bearer);
    baseline = await startBaseline({
      DATABASE_URL: database.url,
      JWT_KEYS: common.JWT_KEYS as string,
      JWT_ISSUER: 'keel',
      JWT_AUDIENCE: 'keel-api',
    });
    const raw: Target = { name: 'raw', url: baseline.url, pid: baseline.pid, probeFile: baseline.probeFile };

    const single = `/trpc/projects.list?input=${query({ limit: 20 })}`;
    const batch = `/trpc/${Array.from({ length: 10 }, () => 'projects.list').join(',')}?batch=1&input=${batchOf(Array.from({ length: 10 }, (_, i) => ({ limit: 11 + i })))}`;
    log('warming up');
    for (const target of targets) await runLoad({ url: `${target.url}${single}`, connections: 8, duration: 2, headers: bearer });
    await runLoad({ url: `${raw.url}/`, connections: 8, duration: 2, headers: bearer });

    const samples = new Map<string, Sample[]>();
    const add = (key: string, sample: Sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}/${ROUNDS}: raw, then each configuration with (b) and (c2), ${SECONDS} s each`);
      add('raw', await window(raw, '/', bearer));
      for (const target of targets) {
        add(`b|${target.name}`, await window(target, single, bearer));
        add(`c2|${target.name}`, await window(target, batch, bearer));
      }
    }
    const med = (key: string, pick: (s: Sample) => number) => median((samples.get(key) ?? []).map(pick));
    const rows: Row[] = [];
    const rawCpu = med('raw', (s) => s.cpuUs);
    const rawKB = med('raw', (s) => s.allocatedKB);
    rows.push({
      measure: 'raw baseline',
      value: `${fmt(
        med('raw', (s) => s.okPerSecond),
        0,
      )} req/s`,
      note: `CPU ${fmt(rawCpu, 0)} µs, ${fmt(rawKB, 1)} KB per request`,
    });
    const summary: Record<string, unknown> = {};
    for (const scenario of ['b', 'c2']) {
      const offCpu = med(`${scenario}|off`, (s) => s.cpuUs);
      const offKB = med(`${scenario}|off`, (s) => s.allocatedKB);
      for (const target of targets) {
        const key = `${scenario}|${target.name}`;
        const cpu = med(key, (s) => s.cpuUs);
        const kb = med(key, (s) => s.allocatedKB);
        const errors = (samples.get(key) ?? []).reduce((n, s) => n + s.errors, 0);
        summary[key] = {
          okPerSecond: med(key, (s) => s.okPerSecond),
          cpuUs: cpu,
          mainCpuUs: med(key, (s) => s.mainCpuUs),
          allocatedKB: kb,
          errors,
          cpuVsOff: cpu / offCpu,
          cpuVsRaw: cpu / rawCpu,
          kbVsRaw: kb / rawKB,
        };
        rows.push({
          measure: `${scenario === 'b' ? '(b) projects.list' : '(c2) 10 calls batched'}, ${target.name}`,
          value: `${fmt(
            med(key, (s) => s.okPerSecond),
            0,
          )} req/s`,
          note:
            `CPU ${fmt(cpu, 0)} µs (${target.name === 'off' ? 'reference' : `${fmt((cpu / offCpu - 1) * 100, 1)}% vs off`}, x${fmt(cpu / rawCpu, 2)} raw), ` +
            `${fmt(kb, 1)} KB (${target.name === 'off' ? '' : `${fmt(kb - offKB, 1)} KB more than off, `}x${fmt(kb / rawKB, 2)} raw), errors ${errors}`,
        });
      }
    }
    const over = (scenario: string, name: string) => ((summary[`${scenario}|${name}`] as { cpuVsOff: number }).cpuVsOff - 1) * 100;
    const goals: Row[] = [
      {
        measure: 'metrics: CPU per request over off, (b)',
        value: `${fmt(over('b', 'metrics'), 1)}%`,
        goal: '< 3%',
        verdict: over('b', 'metrics') < 3 ? 'met' : 'missed',
      },
      {
        measure: 'tracing 10%: CPU per request over off, (b)',
        value: `${fmt(over('b', 'trace 10%'), 1)}%`,
        goal: '< 8%',
        verdict: over('b', 'trace 10%') < 8 ? 'met' : 'missed',
      },
      { measure: 'slow logs: CPU per request over off, (b)', value: `${fmt(over('b', 'slow logs'), 1)}%` },
      { measure: 'tracing 100%: CPU per request over off, (b)', value: `${fmt(over('b', 'trace 100%'), 1)}%` },
      { measure: 'tracing 100%: CPU per request over off, (c2)', value: `${fmt(over('c2', 'trace 100%'), 1)}%` },
      { measure: 'OTLP exports received by the sink', value: String(sink.exports()) },
    ];
    process.stdout.write('\n');
    printTable(rows);
    process.stdout.write('\n');
    printTable(goals);
    const file = writeResults('observe', {
      when: new Date().toISOString(),
      machine: machine(),
      secondsPerWindow: SECONDS,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      summary,
      goals,
    });
    log(`results written to ${file}`);
  } catch (error) {
    for (const server of servers) log(`server output:\n${server.output()}`);
    throw error;
  } finally {
    await baseline?.stop();
    for (const server of servers) await server.stop();
    await sink.close();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:observe] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
