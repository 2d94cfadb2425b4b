/**
 * `pnpm bench:soak`: a long, bounded run of mixed traffic against the built server (production
 * mode, every limit on with budgets the run does not reach), to see what drifts: errors, memory,
 * latency. Each client loops over a weighted mix of calls as an app makes them:
 *
 *   60% projects.list · 12% projects.create · 8% projects.update · 10% auth.refresh (rotating
 *   refresh tokens, each used once) · 5% auth.login · 5% tasks.create then tasks.list
 *
 * Every minute it prints calls/s, errors by kind, p50/p99, the server's RSS and live heap, and CPU
 * per call; at the end the drift from the first to the last minute. It asserts nothing.
 *
 *   pnpm bench:soak                       # 10 minutes, 16 clients
 *   pnpm bench:soak -- --minutes 2 --clients 8
 *   DATABASE_URL=postgresql://... pnpm bench:soak
 */
import { parseArgs } from 'node:util';
import superjson from 'superjson';
import { benchDatabase } from './lib/database.js';
import { percentile } from './lib/load.js';
import { measureProcess, memoryOf, PROBE_MODULE, probeFileFor, type WindowStats } from './lib/process-stats.js';
import { fmt, printTable, type Row, writeResults } from './lib/report.js';
import { productionEnv, startServerProcess } from './lib/server-process.js';
import { trpcBody, trpcData } from './lib/trpc.js';

const log = (message: string) => process.stdout.write(`[bench:soak] ${message}\n`);
const PASSWORD = 'a soak test passphrase';

function options() {
  // `pnpm bench:soak -- --minutes 2` passes the `--` on.
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const { values } = parseArgs({
    args,
    options: { minutes: { type: 'string', default: '10' }, clients: { type: 'string', default: '16' } },
  });
  const minutes = Number(values.minutes);
  const clients = Number(values.clients);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 120) throw new Error('--minutes: an integer from 1 to 120');
  if (!Number.isInteger(clients) || clients < 1 || clients > 256) throw new Error('--clients: an integer from 1 to 256');
  return { minutes, clients };
}

interface Auth {
  accessToken: string;
  refreshToken?: string;
  user: { id: string };
}

interface Minute {
  calls: number;
  latencies: number[];
  errors: Map<string, number>;
}

const newMinute = (): Minute => ({ calls: 0, latencies: [], errors: new Map() });

async function main(): Promise<void> {
  const { minutes, clients } = options();
  const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
  const probe = probeFileFor('soak');
  const env = await productionEnv({
    databaseUrl: database.url,
    logLevel: 'warn',
    rateLimitEnabled: true,
    extra: {
      KEEL_BENCH_PROBE: probe,
      RATE_LIMIT_API_PER_IP: '1000000',
      RATE_LIMIT_API_PER_USER: '1000000',
      RATE_LIMIT_LOGIN_PER_IP: '100000',
      RATE_LIMIT_REGISTER_PER_IP: '100000',
      RATE_LIMIT_LOGIN_FAILURES_PER_IP: '100000',
    },
  });
  log(`starting the built server (production mode, ${database.description})`);
  const server = await startServerProcess({ env, entry: 'built', nodeArgs: ['--import', PROBE_MODULE] });
  let current = newMinute();
  const call = async (path: string, input: unknown, auth?: Auth, method: 'GET' | 'POST' = 'POST'): Promise<unknown> => {
    const started = performance.now();
    const headers: Record<string, string> = auth ? { authorization: `Bearer ${auth.accessToken}` } : {};
    let response: Response;
    try {
      response =
        method === 'GET'
          ? await fetch(`${server.url}/trpc/${path}?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`, { headers })
          : await fetch(`${server.url}/trpc/${path}`, {
              method: 'POST',
              headers: { ...headers, 'content-type': 'application/json' },
              body: trpcBody(input),
            });
    } catch {
      current.errors.set('network', (current.errors.get('network') ?? 0) + 1);
      return undefined;
    }
    const text = await response.text();
    current.calls += 1;
    current.latencies.push(performance.now() - started);
    if (!response.ok) {
      const kind = `${path} ${response.status}`;
      current.errors.set(kind, (current.errors.get(kind) ?? 0) + 1);
      return undefined;
    }
    return trpcData(text);
  };

  try {
    log(`seeding ${clients} users`);
    const sessions: { email: string; auth: Auth; projects: { id: string; version: number }[] }[] = [];
    for (let i = 0; i < clients; i++) {
      const email = `soak-${i}-${Date.now()}@example.test`;
      const auth = (await call('auth.register', { email, password: PASSWORD })) as Auth | undefined;
      if (!auth) throw new Error(`could not register ${email}: the server output was\n${server.output()}`);
      sessions.push({ email, auth, projects: [] });
    }
    current = newMinute();

    const deadline = Date.now() + minutes * 60_000;
    let created = 0;
    const worker = async (session: (typeof sessions)[number]) => {
      while (Date.now() < deadline) {
        const roll = Math.random();
        if (roll < 0.6) {
          await call('projects.list', { limit: 20 }, session.auth, 'GET');
        } else if (roll < 0.72) {
          const project = (await call('projects.create', { name: `Soak ${created++}`, description: 'x'.repeat(80) }, session.auth)) as
            | { id: string; version: number }
            | undefined;
          if (project) session.projects.push({ id: project.id, version: project.version });
          if (session.projects.length > 50) session.projects.shift();
        } else if (roll < 0.8) {
          const project = session.projects.at(-1);
          if (!project) continue;
          const updated = (await call(
            'projects.update',
            { id: project.id, version: project.version, description: `at ${Date.now()}` },
            session.auth,
          )) as { version: number } | undefined;
          if (updated) project.version = updated.version;
        } else if (roll < 0.9) {
          const refreshed = (await call('auth.refresh', { refreshToken: session.auth.refreshToken })) as Auth | undefined;
          if (refreshed) session.auth = refreshed;
        } else if (roll < 0.95) {
          const signedIn = (await call('auth.login', { email: session.email, password: PASSWORD })) as Auth | undefined;
          if (signedIn) session.auth = signedIn;
        } else {
          const project = session.projects.at(-1);
          if (!project) continue;
          await call('tasks.create', { projectId: project.id, title: 'a task' }, session.auth);
          await call('tasks.list', { projectId: project.id, limit: 20 }, session.auth, 'GET');
        }
      }
    };

    log(`${clients} clients for ${minutes} minute(s); one line a minute`);
    const rows: (Row & { stats: WindowStats; minute: Minute; rss: number })[] = [];
    const workers = Promise.all(sessions.map(worker));
    for (let m = 1; m <= minutes; m++) {
      const { stats } = await measureProcess(
        server.pid,
        probe,
        () => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, Math.min(60_000, deadline - Date.now())))),
      );
      const minute = current;
      current = newMinute();
      minute.latencies.sort((a, b) => a - b);
      const errors = [...minute.errors.entries()].map(([kind, n]) => `${kind}: ${n}`).join(', ') || 'none';
      const rss = memoryOf(server.pid).rss;
      const row = {
        measure: `minute ${m}`,
        value: `${fmt(minute.calls / 60, 0)} calls/s`,
        note: `p50 ${fmt(percentile(minute.latencies, 50), 1)} ms, p99 ${fmt(percentile(minute.latencies, 99), 1)} ms, RSS ${fmt(rss, 0)} MiB, heap ${fmt(stats.heapUsedBytes / 2 ** 20, 0)} MiB, CPU ${fmt(stats.allCpuUs / Math.max(1, minute.calls), 0)} µs/call, errors: ${errors}`,
        stats,
        minute,
        rss,
      };
      rows.push(row);
      log(`${row.measure}: ${row.value}, ${row.note}`);
    }
    await workers;
    const first = rows[0];
    const last = rows.at(-1);
    const table: Row[] = rows.map(({ measure, value, note }) => ({ measure, value, note }));
    if (first && last && rows.length > 1) {
      const drift = (a: number, b: number, unit: string, digits = 0) =>
        `${fmt(a, digits)} -> ${fmt(b, digits)} ${unit} (${b >= a ? '+' : ''}${fmt(b - a, digits)})`;
      table.push({ measure: 'drift, RSS', value: drift(first.rss, last.rss, 'MiB') });
      table.push({
        measure: 'drift, live heap',
        value: drift(first.stats.heapUsedBytes / 2 ** 20, last.stats.heapUsedBytes / 2 ** 20, 'MiB', 1),
      });
      table.push({
        measure: 'drift, p99',
        value: drift(percentile(first.minute.latencies, 99), percentile(last.minute.latencies, 99), 'ms', 1),
      });
      table.push({ measure: 'drift, calls/s', value: drift(first.minute.calls / 60, last.minute.calls / 60, '') });
    }
    const errors = rows.reduce((n, r) => n + [...r.minute.errors.values()].reduce((a, b) => a + b, 0), 0);
    table.push({ measure: 'errors, whole run', value: String(errors) });
    process.stdout.write('\n');
    printTable(table);
    const file = writeResults('soak', { when: new Date().toISOString(), minutes, clients, rows: table });
    log(`results written to ${file}`);
  } finally {
    await server.stop();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench:soak] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
