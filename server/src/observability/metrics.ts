/**
 * Prometheus metrics through prom-client, loaded only when METRICS_TOKEN or METRICS_PORT is set.
 * One registry per server (not prom-client's global one), so tests can run servers side by side.
 *
 * Per-call metrics look their label children up in nested maps (path, then type, then code):
 * prom-client's `labels()` would join the label values into a key string on every call.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { passwordWork } from '../lib/password.js';

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Pair {
  count: Counter.Internal;
  duration: Histogram.Internal<string>;
}

/** Children of a counter and a histogram with the same labels, made once per label set. */
class PairCache {
  readonly #root = new Map<string, Map<string, Map<string, Pair>>>();
  constructor(
    private readonly counter: Counter,
    private readonly histogram: Histogram,
  ) {}

  get(a: string, b: string, c: string): Pair {
    let level1 = this.#root.get(a);
    if (!level1) {
      level1 = new Map();
      this.#root.set(a, level1);
    }
    let level2 = level1.get(b);
    if (!level2) {
      level2 = new Map();
      level1.set(b, level2);
    }
    let pair = level2.get(c);
    if (!pair) {
      pair = { count: this.counter.labels(a, b, c), duration: this.histogram.labels(a, b, c) };
      level2.set(c, pair);
    }
    return pair;
  }
}

export interface Metrics {
  readonly registry: Registry;
  procedure(path: string, type: string, code: string, seconds: number): void;
  http(route: string, method: string, status: number, seconds: number): void;
  hashWaited(seconds: number): void;
  audit(event: string, fields: Readonly<Record<string, unknown>>): void;
  migrationsAppliedAtStart(count: number): void;
  /** Where the gauge of held 429 answers reads its value (the app's refusal pacer). */
  watchHeldRefusals(held: () => number): void;
  /** Pool gauges and acquire times, outbox backlog, migrations in the database. */
  watchDatabase(pool: pg.Pool, migrationsTable: string): void;
  /** The text of a scrape. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** True when `authorization` carries the configured bearer token (constant time). */
  authorized(authorization: string | undefined): boolean;
  /** Serves GET /metrics alone on its own listener; resolves with its URL. */
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

export function createMetrics(token: string | undefined): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const procedures = new PairCache(
    new Counter({
      name: 'keel_procedure_calls_total',
      help: 'Procedure calls (tRPC, each call of a batch, REST), by path, type and tRPC code.',
      labelNames: ['path', 'type', 'code'],
      registers: [registry],
    }),
    new Histogram({
      name: 'keel_procedure_duration_seconds',
      help: 'Procedure call duration, by path, type and tRPC code.',
      labelNames: ['path', 'type', 'code'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  );
  const http = new PairCache(
    new Counter({
      name: 'keel_http_requests_total',
      help: 'HTTP requests by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    new Histogram({
      name: 'keel_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  );
  const hashWait = new Histogram({
    name: 'keel_password_hash_wait_seconds',
    help: 'How long an argon2 hash or verify waited for a hashing slot.',
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'keel_password_hash_queue',
    help: 'argon2 work: hashing now (state="active"), waiting for a slot (state="waiting"), password operations admitted (state="admitted").',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const work = passwordWork();
      this.set({ state: 'active' }, work.active);
      this.set({ state: 'waiting' }, work.waiting);
      this.set({ state: 'admitted' }, work.admitted);
    },
  });
  const refusals = new Counter({
    name: 'keel_rate_limit_refusals_total',
    help: 'Requests refused by a rate limit or by load shedding, by limit.',
    labelNames: ['limit'],
    registers: [registry],
  });
  let heldRefusals: () => number = () => 0;
  new Gauge({
    name: 'keel_refusals_held',
    help: '429 answers held before they are sent (REFUSAL_DELAY_MS); at REFUSAL_DELAY_MAX_HELD, the rest go at once.',
    registers: [registry],
    collect() {
      this.set(heldRefusals());
    },
  });
  const reuse = new Counter({
    name: 'keel_refresh_token_reuse_detected_total',
    help: 'Refresh tokens presented again after rotation (the session family is revoked).',
    registers: [registry],
  });
  const migrationsAtStart = new Gauge({
    name: 'keel_migrations_applied_at_start',
    help: 'Migrations this process applied when it started.',
    registers: [registry],
  });

  let server: Server | undefined;
  const expected = token === undefined ? undefined : digest(`Bearer ${token}`);

  const metrics: Metrics = {
    registry,
    procedure(path, type, code, seconds) {
      const pair = procedures.get(path, type, code);
      pair.count.inc();
      pair.duration.observe(seconds);
    },
    http(route, method, status, seconds) {
      const pair = http.get(route, method, statusText(status));
      pair.count.inc();
      pair.duration.observe(seconds);
    },
    hashWaited: (seconds) => hashWait.observe(seconds),
    audit(event, fields) {
      if (event === 'auth.refresh.reuse_detected') reuse.inc();
      else if (event === 'auth.rate_limited') refusals.inc({ limit: limitName(fields) });
      else if (event === 'auth.shed') refusals.inc({ limit: 'password-shed' });
    },
    migrationsAppliedAtStart: (count) => migrationsAtStart.set(count),
    watchHeldRefusals(held) {
      heldRefusals = held;
    },
    watchDatabase(pool, migrationsTable) {
      watchPool(pool, registry);
      watchDatabaseTables(pool, registry, migrationsTable);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    authorized(authorization) {
      if (expected === undefined || authorization === undefined) return false;
      return timingSafeEqual(digest(authorization), expected);
    },
    listen(host, port) {
      server = createServer((req, res) => {
        const path = req.url?.split('?', 1)[0];
        if (req.method !== 'GET' || path !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Only GET /metrics is served here.\n');
          return;
        }
        if (expected !== undefined && !metrics.authorized(req.headers.authorization)) {
          res
            .writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="keel-metrics"' })
            .end('A bearer METRICS_TOKEN is required.\n');
          return;
        }
        metrics.scrape().then(
          ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
          () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Collecting the metrics failed.\n'),
        );
      });
      const listening = server;
      return new Promise((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, host, () => {
          const address = listening.address();
          const bound = typeof address === 'object' && address !== null ? address.port : port;
          resolve(`http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`);
        });
      });
    },
    close() {
      const listening = server;
      server = undefined;
      return new Promise((resolve) => (listening ? listening.close(() => resolve()) : resolve()));
    },
  };
  return metrics;
}

/** 2xx..5xx keep their exact code: a bounded set (Fastify only sends codes it knows). */
const statusText = (status: number): string => String(status);

/** The limit a refusal names (`api-ip`, `api-user`), or the procedure whose own limit refused. */
function limitName(fields: Readonly<Record<string, unknown>>): string {
  if (typeof fields.limit === 'string') return fields.limit;
  if (typeof fields.operation === 'string') return fields.operation;
  return 'other';
}

/** Pool size, idle and waiting clients at scrape time; how long each checkout waited. */
function watchPool(pool: pg.Pool, registry: Registry): void {
  new Gauge({
    name: 'keel_db_pool_connections',
    help: 'Database pool connections: open (state="total"), idle (state="idle"), requests waiting for one (state="waiting").',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
    },
  });
  const acquire = new Histogram({
    name: 'keel_db_pool_acquire_seconds',
    help: 'How long a query or transaction waited for a pool connection.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  // pg-pool's query() checks out through connect() too, so one wrapper sees every checkout.
  type Connect = (callback?: (error: Error | undefined, client: unknown, done: unknown) => void) => Promise<unknown> | undefined;
  const connect = (pool.connect as unknown as Connect).bind(pool);
  const timed: Connect = (callback) => {
    const started = performance.now();
    if (callback) {
      return connect((error, client, done) => {
        if (!error) acquire.observe((performance.now() - started) / 1000);
        callback(error, client, done);
      });
    }
    return (connect() as Promise<unknown>).then((client) => {
      acquire.observe((performance.now() - started) / 1000);
      return client;
    });
  };
  (pool as unknown as { connect: Connect }).connect = timed;
}

/** Mail outbox backlog and the age of its oldest mail, migrations recorded: one query per scrape. */
function watchDatabaseTables(pool: pg.Pool, registry: Registry, migrationsTable: string): void {
  let pending: Promise<{ backlog: number; oldest: number; migrations: number } | undefined> | undefined;
  // The three gauges share one round trip per scrape.
  const read = () => {
    pending ??= pool
      .query<{ backlog: string; oldest: number | null; migrations: string }>(
        `SELECT (SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL) AS backlog,
                (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL) AS oldest,
                (SELECT count(*) FROM "${migrationsTable}" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL) AS migrations`,
      )
      .then(
        ({ rows: [row] }) =>
          row ? { backlog: Number(row.backlog), oldest: row.oldest ?? 0, migrations: Number(row.migrations) } : undefined,
        () => undefined,
      )
      .finally(() => {
        setImmediate(() => {
          pending = undefined;
        });
      });
    return pending;
  };
  new Gauge({
    name: 'keel_mail_outbox_backlog',
    help: 'Mails waiting to be sent (not sent, not given up).',
    registers: [registry],
    async collect() {
      const row = await read();
      if (row) this.set(row.backlog);
    },
  });
  new Gauge({
    name: 'keel_mail_outbox_oldest_age_seconds',
    help: 'Age of the oldest mail waiting to be sent (0 when none waits).',
    registers: [registry],
    async collect() {
      const row = await read();
      if (row) this.set(row.oldest);
    },
  });
  new Gauge({
    name: 'keel_migrations_applied',
    help: 'Migrations recorded as applied in the database.',
    registers: [registry],
    async collect() {
      const row = await read();
      if (row) this.set(row.migrations);
    },
  });
}
