/**
 * `pnpm bench:heap`: what the young generation's size costs and buys. For each semi-space size the
 * built server runs (b) of `pnpm bench` (the authenticated 20-row list, 64 connections) and then a
 * burst of logins (argon2id holds 19 MiB per hash in flight), and the table shows CPU and GC time
 * per request beside the RSS peak. `pnpm start` takes its `--max-semi-space-size` from this.
 *
 *   pnpm bench:heap                       # semi-spaces of 8, 16, 32 and 64 MiB (old space 192 MiB)
 *   pnpm bench:heap -- 8 16 16:160        # these; `semi:old` sets the old space's cap too
 *   BENCH_SECONDS=10 pnpm bench:heap
 *
 * Each size runs in rounds alternating with the others, so that machine drift hits all alike.
 */
import superjson from 'superjson';
import { benchDatabase } from './lib/database.js';
import { runLoad } from './lib/load.js';
import { measureProcess, median, memoryOf, PROBE_MODULE, probeFileFor } from './lib/process-stats.js';
import { fmt, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, type ServerProcess, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcMutation } from './lib/trpc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DEFAULT_OLD_SPACE_MIB = 192;
const log = (message: string) => process.stdout.write(`[bench:heap] ${message}\n`);

interface Sample {
  okPerSecond: number;
  mainCpuUs: number;
  gcUs: number;
  scavengesPer1000: number;
  p99: number;
}

async function main(): Promise<void> {
  const given = process.argv.slice(2).filter((arg) => /^\d+(:\d+)?$/.test(arg));
  const semiSpaces = given.length > 0 ? given : ['8', '16', '32', '64'];
  const flagsOf = (size: string) => {
    const [semi, old = String(DEFAULT_OLD_SPACE_MIB)] = size.split(':');
    return [`--max-semi-space-size=${semi}`, `--max-old-space-size=${old}`];
  };
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const servers = new Map<string, { server: ServerProcess; probe: string }>();
  const samples = new Map<string, Sample[]>(semiSpaces.map((size) => [size, []]));
  try {
    const base = await productionEnv({ databaseUrl: database.url, logLevel: 'info', rateLimitEnabled: false });
    for (const size of semiSpaces) {
      const probe = probeFileFor(`heap-${size.replace(':', '-')}`);
      log(`starting a server with ${flagsOf(size).join(' ')}`);
      const server = await startServerProcess({
        env: { ...base, KEEL_BENCH_PROBE: probe },
        entry: 'built',
        nodeArgs: ['--import', PROBE_MODULE],
        startFlags: flagsOf(size),
      });
      servers.set(size, { server, probe });
    }
    // All servers share one database: one reader with 25 projects, signed in once (the key is shared).
    const first = servers.values().next().value as { server: ServerProcess };
    const password = 'a benchmark passphrase';
    const email = `heap-${Date.now()}@example.test`;
    const auth = await trpcMutation<{ accessToken: string }>(first.server.url, 'auth.register', { email, password });
    const headers = { authorization: `Bearer ${auth.accessToken}` };
    for (let i = 0; i < 25; i++)
      await trpcMutation(first.server.url, 'projects.create', { name: `P${i}`, description: 'x'.repeat(80) }, headers);
    const path = `/trpc/projects.list?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 20 })))}`;
    for (const { server } of servers.values()) await runLoad({ url: `${server.url}${path}`, connections: 8, duration: 2, headers });

    for (let round = 1; round <= ROUNDS; round++) {
      for (const [size, { server, probe }] of servers) {
        log(`round ${round}/${ROUNDS}, ${flagsOf(size).join(' ')}: (b) ${SECONDS} s, then logins ${SECONDS} s`);
        const { result, stats } = await measureProcess(server.pid, probe, () =>
          runLoad({ url: `${server.url}${path}`, connections: 64, duration: SECONDS, headers }),
        );
        const n = Math.max(1, result.ok);
        samples.get(size)?.push({
          okPerSecond: result.okPerSecond,
          mainCpuUs: stats.mainCpuUs / n,
          gcUs: stats.gcMicros / n,
          scavengesPer1000: (stats.scavenges * 1000) / n,
          p99: result.latencyP99,
        });
        await runLoad({
          url: `${server.url}/trpc/auth.login`,
          connections: 16,
          duration: SECONDS,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: trpcBody({ email, password }),
        });
      }
    }
    const rows: Row[] = semiSpaces.map((size) => {
      const list = samples.get(size) ?? [];
      const pid = servers.get(size)?.server.pid ?? 0;
      const pick = (f: (s: Sample) => number) => median(list.map(f));
      return {
        measure: flagsOf(size).join(' '),
        value: `${fmt(
          pick((s) => s.mainCpuUs),
          0,
        )} µs CPU/req`,
        note: `GC ${fmt(
          pick((s) => s.gcUs),
          0,
        )} µs/req, ${fmt(
          pick((s) => s.scavengesPer1000),
          0,
        )} young GCs/1000, ${fmt(
          pick((s) => s.okPerSecond),
          0,
        )} req/s, p99 ${pick((s) => s.p99)} ms, RSS peak ${fmt(memoryOf(pid).peak, 0)} MiB`,
      };
    });
    process.stdout.write('\n');
    printTable(rows);
    const file = writeResults('heap', { when: new Date().toISOString(), secondsPerWindow: SECONDS, rounds: ROUNDS, rows });
    log(`results written to ${file}`);
  } finally {
    for (const { server } of servers.values()) await server.stop();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:heap] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
