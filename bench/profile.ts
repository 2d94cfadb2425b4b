/**
 * `pnpm bench:profile [scenario]`: the built server under load with V8's CPU profiler on, and where
 * its main thread's time went, by package (self time). For finding what to change; `pnpm bench`
 * measures the result. Scenarios: list (default, as bench (b)), rest, create, health.
 * Writes the .cpuprofile under bench/results/ (open it in Chrome DevTools for the call tree).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import superjson from 'superjson';
import { benchDatabase } from './lib/database.js';
import { runLoad } from './lib/load.js';
import { fmt, printTable } from './lib/report.js';
import { productionEnv, REPO_ROOT, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcMutation } from './lib/trpc.js';

const log = (message: string) => process.stdout.write(`[bench:profile] ${message}\n`);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Which bucket a frame's self time goes to: a package, Node itself, GC, or Keel's own code. */
function bucketOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)' || functionName === '(program)') return functionName;
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`;
  if (url.includes('/server/dist/') || url.includes('/server/src/')) return `keel: ${url.split(/server\/(?:dist|src)\//)[1]}`;
  return url;
}

async function main(): Promise<void> {
  const scenario = process.argv[2] ?? 'list';
  const window = { start: 0, end: Number.POSITIVE_INFINITY };
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const dir = join(REPO_ROOT, 'bench/results/profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const env = await productionEnv({ databaseUrl: database.url, logLevel: 'info', rateLimitEnabled: false });
  const server = await startServerProcess({ env, entry: 'built', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  try {
    const auth = await trpcMutation<{ accessToken: string }>(server.url, 'auth.register', {
      email: `profile-${Date.now()}@example.test`,
      password: 'a profiling passphrase',
    });
    const headers = { authorization: `Bearer ${auth.accessToken}` };
    for (let i = 0; i < 25; i++) await trpcMutation(server.url, 'projects.create', { name: `P${i}`, description: 'x'.repeat(80) }, headers);
    const input = encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 20 })));
    let n = 0;
    const load = {
      list: { url: `${server.url}/trpc/projects.list?input=${input}`, headers },
      rest: { url: `${server.url}/api/projects?limit=20`, headers },
      health: { url: `${server.url}/trpc/system.health` },
      create: {
        url: `${server.url}/trpc/projects.create`,
        requests: [
          {
            method: 'POST' as const,
            headers: { ...headers, 'content-type': 'application/json' },
            setupRequest: (r: object) => ({ ...r, body: trpcBody({ name: `c${n++}` }) }),
          },
        ],
      },
    }[scenario];
    if (!load) throw new Error(`unknown scenario ${scenario}: list, rest, create or health`);
    log('warming up');
    await runLoad({ ...load, connections: 8, duration: 3 });
    log(`${scenario}: ${SECONDS} s at 32 connections`);
    // The profile's clock is the machine's monotonic clock, as hrtime's: only the load window counts.
    window.start = Number(process.hrtime.bigint() / 1000n);
    const result = await runLoad({ ...load, connections: 32, duration: SECONDS });
    window.end = Number(process.hrtime.bigint() / 1000n);
    log(`${fmt(result.okPerSecond, 0)} req/s, ${result.non2xx + result.errors} errors`);
  } finally {
    await server.stop();
    await database.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  /** Time with a frame of the bucket anywhere on the stack (what the bucket costs, callees included). */
  const inclusive = new Map<string, number>();
  const totals = new Map<string, number>();
  const functions = new Map<string, number>();
  let all = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (!node || at < window.start || at > window.end) return;
    const bucket = bucketOf(node.callFrame);
    if (bucket === '(idle)') return;
    all += dt;
    totals.set(bucket, (totals.get(bucket) ?? 0) + dt);
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at);
      if (frame) onStack.add(bucketOf(frame.callFrame));
    }
    for (const b of onStack) inclusive.set(b, (inclusive.get(b) ?? 0) + dt);
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : ` ${bucket}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + dt);
  });
  const rows = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map(([bucket, us]) => ({
      measure: bucket,
      value: `${fmt((100 * us) / all, 1)} %`,
      note: `${fmt((100 * (inclusive.get(bucket) ?? 0)) / all, 1)} % with callees`,
    }));
  printTable(rows);
  process.stdout.write('\n');
  printTable(
    [...functions.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 30)
      .map(([name, us]) => ({ measure: name, value: `${fmt((100 * us) / all, 1)} %` })),
  );
  log(`main thread busy ${fmt(all / 1000, 0)} ms in the ${SECONDS} s window`);
  log(`profile: ${join(dir, file)}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:profile] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
