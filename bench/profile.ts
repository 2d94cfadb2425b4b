/**
 * `pnpm bench:profile [scenario] [--heap]`: the built server under load with V8's CPU profiler on,
 * and where its main thread's time went during the load, by package and by function (self time,
 * and time with callees). `--heap`: V8's sampling heap profiler instead, counting collected objects
 * too: where the bytes a request allocates come from. For finding what to change; `pnpm bench`
 * measures the result. Scenarios: list (default, as bench (b)), rest, create, health, batch, login, flood (200
 * connections of wrong-password logins, nearly all shed).
 * Writes the profile under bench/results/profile/ (open it in Chrome DevTools for the call tree).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import superjson from 'superjson';
import { benchDatabase } from './lib/database.js';
import { runLoad } from './lib/load.js';
import { measureProcess, PROBE_MODULE } from './lib/process-stats.js';
import { fmt, printTable, type Row } from './lib/report.js';
import { productionEnv, REPO_ROOT, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcMutation } from './lib/trpc.js';

const log = (message: string) => process.stdout.write(`[bench:profile] ${message}\n`);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  startTime: number;
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Which bucket a frame belongs to: a package, Node itself, GC, or Keel's own code. */
function bucketOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') return functionName;
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`;
  if (url.includes('/server/dist/') || url.includes('/server/src/')) return `keel: ${url.split(/server\/(?:dist|src)\//)[1]}`;
  return url;
}

const functionOf = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'}${frame.url === '' ? '' : ` ${bucketOf(frame)}:${frame.lineNumber + 1}`}`;

/** A table of the largest entries of `totals`, as shares of `all` (and `inclusive`, when given). */
function top(totals: Map<string, number>, all: number, inclusive?: Map<string, number>, per?: (value: number) => string): Row[] {
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map(([name, value]) => ({
      measure: name,
      value: `${fmt((100 * value) / all, 1)} %`,
      note: [inclusive ? `${fmt((100 * (inclusive.get(name) ?? 0)) / all, 1)} % with callees` : '', per ? per(value) : '']
        .filter(Boolean)
        .join(', '),
    }));
}

function reportCpu(profile: CpuProfile, window: { start: number; end: number }): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const buckets = new Map<string, number>();
  const inclusive = new Map<string, number>();
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
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + dt);
    // What a bucket costs with its callees: time with a frame of it anywhere on the stack.
    const onStack = new Set<string>();
    for (let frame: number | undefined = id; frame !== undefined; frame = parentOf.get(frame)) {
      const callFrame = byId.get(frame)?.callFrame;
      if (callFrame) onStack.add(bucketOf(callFrame));
    }
    for (const b of onStack) inclusive.set(b, (inclusive.get(b) ?? 0) + dt);
    const name = functionOf(node.callFrame);
    functions.set(name, (functions.get(name) ?? 0) + dt);
  });
  printTable(top(buckets, all, inclusive));
  process.stdout.write('\n');
  printTable(top(functions, all));
  log(`main thread busy ${fmt(all / 1000, 0)} ms in the ${SECONDS} s window`);
}

function reportHeap(root: HeapNode, requests: number): void {
  const buckets = new Map<string, number>();
  const functions = new Map<string, number>();
  let all = 0;
  const visit = (node: HeapNode) => {
    if (node.selfSize > 0) {
      all += node.selfSize;
      const bucket = bucketOf(node.callFrame);
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + node.selfSize);
      const name = functionOf(node.callFrame);
      functions.set(name, (functions.get(name) ?? 0) + node.selfSize);
    }
    for (const child of node.children) visit(child);
  };
  visit(root);
  const perRequest = (bytes: number) => `${fmt(bytes / 1024 / Math.max(1, requests), 1)} KB/request`;
  printTable(top(buckets, all, undefined, perRequest));
  process.stdout.write('\n');
  printTable(top(functions, all, undefined, perRequest));
  log(`sampled ${fmt(all / 1024 / Math.max(1, requests), 1)} KB allocated per request over ${requests} requests`);
}

async function main(): Promise<void> {
  const scenario = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? 'list';
  const heap = process.argv.includes('--heap');
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const dir = join(REPO_ROOT, 'bench/results/profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const probeFile = join(dir, 'probe.json');
  const heapFile = join(dir, 'allocations.heapprofile');
  const env = await productionEnv({
    databaseUrl: database.url,
    logLevel: 'info',
    rateLimitEnabled: false,
    extra: heap ? { KEEL_BENCH_PROBE: probeFile, KEEL_BENCH_HEAP_PROFILE: heapFile } : {},
  });
  const nodeArgs = heap ? ['--import', PROBE_MODULE] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const server = await startServerProcess({ env, entry: 'built', nodeArgs });
  const window = { start: 0, end: Number.POSITIVE_INFINITY };
  let requests = 0;
  try {
    const email = `profile-${Date.now()}@example.test`;
    const auth = await trpcMutation<{ accessToken: string }>(server.url, 'auth.register', { email, password: 'a profiling passphrase' });
    const headers = { authorization: `Bearer ${auth.accessToken}` };
    for (let i = 0; i < 25; i++) await trpcMutation(server.url, 'projects.create', { name: `P${i}`, description: 'x'.repeat(80) }, headers);
    const input = encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 20 })));
    const batchInput = encodeURIComponent(
      JSON.stringify(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, superjson.serialize({ limit: 11 + i })]))),
    );
    let n = 0;
    const load = {
      list: { url: `${server.url}/trpc/projects.list?input=${input}`, headers },
      batch: { url: `${server.url}/trpc/${Array(10).fill('projects.list').join(',')}?batch=1&input=${batchInput}`, headers },
      rest: { url: `${server.url}/api/projects?limit=20`, headers },
      health: { url: `${server.url}/trpc/system.health` },
      login: {
        url: `${server.url}/trpc/auth.login`,
        method: 'POST' as const,
        headers: { 'content-type': 'application/json' },
        body: trpcBody({ email, password: 'a profiling passphrase' }),
      },
      // Wrong-password logins from 200 connections: nearly all shed (429) before any query.
      flood: {
        url: `${server.url}/trpc/auth.login`,
        method: 'POST' as const,
        headers: { 'content-type': 'application/json' },
        body: trpcBody({ email, password: 'not the password' }),
      },
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
    if (!load) throw new Error(`unknown scenario ${scenario}: list, batch, rest, create, health, login or flood`);
    log('warming up');
    await runLoad({ ...load, connections: 8, duration: 3 });
    // Logins beyond the hashing queue are refused (429): profile the ones that are served.
    const connections = scenario === 'login' ? 8 : scenario === 'flood' ? 200 : 32;
    log(`${scenario}: ${SECONDS} s at ${connections} connections${heap ? ', sampling allocations' : ''}`);
    // The CPU profile's clock is the machine's monotonic clock, as hrtime's: only the load window counts.
    window.start = Number(process.hrtime.bigint() / 1000n);
    const { result } = await measureProcess(server.pid, heap ? probeFile : undefined, () =>
      runLoad({ ...load, connections, duration: SECONDS }),
    );
    window.end = Number(process.hrtime.bigint() / 1000n);
    requests = scenario === 'flood' ? result.ok + result.non2xx : result.ok;
    log(`${fmt(result.okPerSecond, 0)} req/s, ${result.non2xx + result.errors} errors`);
    if (heap) {
      const deadline = Date.now() + 30_000;
      while (!existsSync(heapFile) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await server.stop();
    await database.stop();
  }
  if (heap) {
    if (!existsSync(heapFile)) throw new Error('the server wrote no heap profile');
    reportHeap((JSON.parse(readFileSync(heapFile, 'utf8')) as { head: HeapNode }).head, requests);
  } else {
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the server wrote no CPU profile');
    reportCpu(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, window);
  }
  log(`profile in ${dir}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:profile] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
