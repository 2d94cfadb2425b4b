/**
 * `pnpm bench:cluster`: the authenticated projects.list (20 rows) through the cluster of
 * `pnpm cluster` (HAProxy, N built Keel instances in production mode, PgBouncer in transaction
 * mode, PostgreSQL), with 1, 2 and 3 instances in rotation (the others set to maintenance through
 * HAProxy's admin socket), and directly on one instance, bypassing HAProxy, in one run.
 *
 * For each: req/s, p50/p99, and CPU per request (µs) of the Keel instances together, of HAProxy
 * and of PgBouncer (from /proc), and how busy the whole machine was (PostgreSQL and the load
 * generator included). On a machine with few cores the instances share them with everything
 * else: the figures show where the time goes, not a linear gain. Bounded, loopback only.
 *
 *   pnpm bench:cluster                     # ~1 minute after the build
 *   BENCH_SECONDS=5 pnpm bench:cluster
 *   DATABASE_URL=postgresql://... pnpm bench:cluster
 *   pnpm bench:cluster -- --no-build       # reuse server/dist
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import superjson from 'superjson';
import { type Cluster, haproxyCommand, startCluster } from '../server/src/scripts/cluster/cluster.js';
import { benchDatabase } from './lib/database.js';
import { runLoad } from './lib/load.js';
import { fmt, machine, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, REPO_ROOT } from './lib/server-process.js';
import { trpcMutation } from './lib/trpc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const INSTANCES = 3;
const log = (message: string) => process.stdout.write(`[bench:cluster] ${message}\n`);

/** CPU time (user + system) of a process so far, in µs; 0 once it is gone. */
function cpuMicros(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100);
  } catch {
    return 0;
  }
}

/** The whole machine's busy and total jiffies (every core), for "how busy was it". */
function machineJiffies(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { busy: total - idle, total };
}

interface Figures {
  scenario: string;
  reqPerSecond: number;
  p50: number;
  p99: number;
  failed: number;
  keelCpuUs: number;
  haproxyCpuUs: number;
  pgbouncerCpuUs: number;
  machineBusyPercent: number;
}

async function measure(cluster: Cluster, scenario: string, url: string, headers: Record<string, string>): Promise<Figures> {
  await runLoad({ url, connections: 8, duration: 2, headers });
  const pids = {
    keel: cluster.instances.map((i) => i.process().pid),
    haproxy: cluster.haproxy.pid,
    pgbouncer: cluster.pgbouncer.pid,
  };
  const sum = (list: number[]) => list.reduce((total, pid) => total + cpuMicros(pid), 0);
  const before = {
    keel: sum(pids.keel),
    haproxy: cpuMicros(pids.haproxy),
    pgbouncer: cpuMicros(pids.pgbouncer),
    machine: machineJiffies(),
  };
  const result = await runLoad({ url, connections: CONNECTIONS, duration: SECONDS, headers });
  const after = { keel: sum(pids.keel), haproxy: cpuMicros(pids.haproxy), pgbouncer: cpuMicros(pids.pgbouncer), machine: machineJiffies() };
  const per = (delta: number) => (result.ok > 0 ? delta / result.ok : Number.NaN);
  return {
    scenario,
    reqPerSecond: result.okPerSecond,
    p50: result.latencyP50,
    p99: result.latencyP99,
    failed: result.non2xx + result.errors + result.timeouts,
    keelCpuUs: per(after.keel - before.keel),
    haproxyCpuUs: per(after.haproxy - before.haproxy),
    pgbouncerCpuUs: per(after.pgbouncer - before.pgbouncer),
    machineBusyPercent: (100 * (after.machine.busy - before.machine.busy)) / Math.max(1, after.machine.total - before.machine.total),
  };
}

/** Waits (bounded) until HAProxy has exactly the first `count` instances UP: a re-enabled one passes its checks first. */
async function inRotation(cluster: Cluster, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const stats = await cluster.serverStats();
    if (stats.filter((s) => s.status === 'UP').length === count) return;
    if (Date.now() > deadline) throw new Error(`HAProxy did not get ${count} instances UP: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<void> {
  if (!process.argv.includes('--no-build')) {
    log('building the server (pnpm --filter @keel/server build)');
    const build = spawnSync('pnpm', ['--filter', '@keel/server', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (build.status !== 0) throw new Error('the server build failed: run `pnpm --filter @keel/server build` to see why');
  }
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  let cluster: Cluster | undefined;
  try {
    const { DATABASE_URL: _direct, ...env } = await productionEnv({
      databaseUrl: database.url,
      rateLimitEnabled: true,
      extra: { RATE_LIMIT_API_PER_IP: '1000000', RATE_LIMIT_API_PER_USER: '1000000', RATE_LIMIT_REGISTER_PER_IP: '100000' },
    });
    const start = JSON.parse(readFileSync(join(REPO_ROOT, 'server/package.json'), 'utf8')) as { scripts: { start: string } };
    cluster = await startCluster({
      instances: INSTANCES,
      databaseUrl: database.url,
      dir: join(tmpdir(), `keel-bench-cluster-${process.pid}`),
      entry: 'built',
      // pnpm start's heap sizing, as in `pnpm bench`.
      nodeArgs: start.scripts.start.split(/\s+/).filter((arg) => arg.startsWith('--')),
      env,
      log,
    });
    log('seeding: a reader with 25 projects');
    const reader = await trpcMutation<{ accessToken: string }>(cluster.url, 'auth.register', {
      email: `bench-${Date.now()}@example.test`,
      password: 'a benchmark passphrase',
    });
    const headers = { authorization: `Bearer ${reader.accessToken}` };
    for (let i = 0; i < 25; i++)
      await trpcMutation(cluster.url, 'projects.create', { name: `Project ${i}`, description: 'x'.repeat(80) }, headers);
    const path = `/trpc/projects.list?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 20 })))}`;
    const socket = join(cluster.dir, 'haproxy.sock');
    const figures: Figures[] = [];

    const first = cluster.instances[0];
    if (!first) throw new Error('no instance');
    // Every instance's JIT warm before anything is measured (the first scenario measured otherwise paid for it).
    log('warming up all instances through HAProxy');
    await runLoad({ url: `${cluster.url}${path}`, connections: CONNECTIONS, duration: 5, headers });
    for (let active = 1; active <= INSTANCES; active++) {
      for (const [index, instance] of cluster.instances.entries()) {
        await haproxyCommand(socket, `${index < active ? 'enable' : 'disable'} server keel/${instance.name}`);
      }
      await inRotation(cluster, active);
      log(`HAProxy with ${active} instance${active > 1 ? 's' : ''} in rotation: ${CONNECTIONS} connections, ${SECONDS} s`);
      figures.push(await measure(cluster, `HAProxy, ${active} instance${active > 1 ? 's' : ''}`, `${cluster.url}${path}`, headers));
    }
    log(`direct: ${CONNECTIONS} connections to ${first.name} itself (no HAProxy), ${SECONDS} s`);
    figures.push(await measure(cluster, 'direct to one instance', `${first.url}${path}`, headers));

    const rows: Row[] = figures.map((f) => ({
      measure: f.scenario,
      value: `${fmt(f.reqPerSecond, 0)} req/s`,
      note: `p50 ${f.p50} ms, p99 ${f.p99} ms, CPU/req: Keel ${fmt(f.keelCpuUs, 0)} µs + HAProxy ${fmt(f.haproxyCpuUs, 0)} µs + PgBouncer ${fmt(
        f.pgbouncerCpuUs,
        0,
      )} µs; machine ${fmt(f.machineBusyPercent, 0)}% busy${f.failed > 0 ? `; ${f.failed} failed` : ''}`,
    }));
    process.stdout.write('\n');
    printTable(rows);
    log(`load average (1, 5, 15 min) at the end: ${machine().loadAverage.join(', ')}: other work on the machine moves every figure`);
    const file = writeResults('cluster', {
      machine: machine(),
      seconds: SECONDS,
      connections: CONNECTIONS,
      database: database.description,
      figures,
    });
    log(`figures written to ${file}`);
  } finally {
    await cluster?.stop();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:cluster] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
