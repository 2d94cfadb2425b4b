/**
 * Live-updates benchmark: `pnpm bench:live [--streams 50] [--writes 100]`.
 *
 * Two server processes (production mode, one signing key) on one database (DATABASE_URL, or a
 * fresh embedded PostgreSQL). `--streams` subscriptions to `projects.onChange` through the SDK
 * (`@keel/client-sdk/live`) on instance A; one writer creates projects through instance B, one at
 * a time, and waits until every stream has the event. Printed: the time from sending the write
 * to each stream's receipt (commit, NOTIFY, LISTEN on A, SSE), p50/p99/max, beside the write's own
 * round trip. Writes to bench/results/live.json. It asserts nothing; every phase is bounded.
 */
import { parseArgs } from 'node:util';
import { createKeelClient } from '../client-sdk/src/index.js';
import { keelSubscriptions } from '../client-sdk/src/live.js';
import { benchDatabase } from './lib/database.js';
import { fmt, machine, printTable, writeResults } from './lib/report.js';
import { productionEnv, startServerProcess } from './lib/server-process.js';

const log = (message: string) => process.stderr.write(`[bench:live] ${message}\n`);
const { values } = parseArgs({ options: { streams: { type: 'string', default: '50' }, writes: { type: 'string', default: '100' } } });
const STREAMS = Number(values.streams);
const WRITES = Number(values.writes);
const PASSWORD = 'a sturdy bench passphrase';
const deadline = setTimeout(() => {
  log('gave up after 5 minutes');
  process.exit(1);
}, 300_000);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

const database = await benchDatabase({ url: process.env.DATABASE_URL, log });
const env = await productionEnv({ databaseUrl: database.url, extra: { LIVE_MAX_STREAMS_PER_USER: String(STREAMS) } });
const a = await startServerProcess({ env });
const b = await startServerProcess({ env });
log(`instances ${a.url} and ${b.url}; ${database.description}`);
try {
  const email = `live-${Date.now()}@bench.test`;
  const writer = createKeelClient({ url: b.url });
  await writer.register({ email, password: PASSWORD });
  const reader = createKeelClient({ url: a.url, subscriptions: keelSubscriptions() });
  await reader.login({ email, password: PASSWORD });

  /** For each stream: project id -> receipt time. */
  const received: Map<string, number>[] = [];
  let waiting: (() => void) | undefined;
  const ready: Promise<void>[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const seen = new Map<string, number>();
    received.push(seen);
    ready.push(
      new Promise<void>((resolve, reject) => {
        reader.projects.onChange.subscribe(undefined, {
          onData: ({ data }) => {
            if (data.type === 'ready') resolve();
            if (data.type === 'project' && data.op === 'created') {
              seen.set(data.projectId, performance.now());
              waiting?.();
            }
          },
          onError: reject,
        });
      }),
    );
  }
  await Promise.all(ready);
  log(`${STREAMS} streams open on A; ${WRITES} writes through B`);

  const latencies: number[] = [];
  const roundTrips: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const started = performance.now();
    const project = await writer.projects.create.mutate({ name: `bench ${i}` });
    roundTrips.push(performance.now() - started);
    while (!received.every((seen) => seen.has(project.id))) await new Promise<void>((resolve) => (waiting = resolve));
    for (const seen of received) latencies.push((seen.get(project.id) as number) - started);
  }
  latencies.sort((x, y) => x - y);
  roundTrips.sort((x, y) => x - y);
  const results = {
    machine: machine(),
    streams: STREAMS,
    writes: WRITES,
    deliveryMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) },
    writeRoundTripMs: { p50: percentile(roundTrips, 50), p99: percentile(roundTrips, 99) },
  };
  printTable([
    { measure: `write sent on B -> event on each of ${STREAMS} streams on A, p50`, value: `${fmt(results.deliveryMs.p50)} ms` },
    { measure: 'same, p99', value: `${fmt(results.deliveryMs.p99)} ms` },
    { measure: 'same, max', value: `${fmt(results.deliveryMs.max ?? Number.NaN)} ms` },
    { measure: 'the write alone (projects.create round trip), p50', value: `${fmt(results.writeRoundTripMs.p50)} ms` },
    { measure: 'the write alone, p99', value: `${fmt(results.writeRoundTripMs.p99)} ms` },
  ]);
  log(`results in ${writeResults('live', results)}`);
} finally {
  clearTimeout(deadline);
  await Promise.all([a.stop(), b.stop()]);
  await database.stop();
}
process.exit(0);
