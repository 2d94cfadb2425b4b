/**
 * Slow-procedure and slow-SQL log lines, and the metrics that count calls, refusals and HTTP
 * answers, through the real HTTP host and the real pg client (db/connections.ts) on this file's
 * database: a procedure that runs `pg_sleep` is slow at both levels.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createDatabase } from '../../server/src/db/client.js';
import { createAppDeps, stopAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import { startObservability } from '../../server/src/observability/index.js';
import { publicProcedure, router } from '../../server/src/trpc/init.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { captureLogs } from '../support/log-capture.js';

const TOKEN = 'a-metrics-token-of-the-test-42';
const db = await useTestDatabase();
const config = testConfig(db.url, {
  LOG_LEVEL: 'info',
  SLOW_PROCEDURE_MS: '40',
  SLOW_QUERY_MS: '40',
  METRICS_TOKEN: TOKEN,
  RATE_LIMIT_API_PER_IP: '3',
});
const logs = captureLogs();
const logger = createLogger(config, logs.stream);
const observability = await startObservability(config, logger);
if (!observability) throw new Error('observability should be on');
const database = createDatabase(db.url, config.database, logger, { query: observability.query });
observability.watchDatabase(database.pool, '_prisma_migrations');

const testRouter = router({
  slow: publicProcedure.input(z.object({ secret: z.string() })).query(async ({ input }) => {
    await database.pool.query('select pg_sleep(0.06), $1::text as secret', [input.secret]);
    return 'done';
  }),
  fast: publicProcedure.query(() => 'quick'),
});
const deps = createAppDeps({ config, database, logger, keys: db.keys, observability });
const server = await startTestServer(deps, { router: testRouter });
afterAll(async () => {
  await server.close();
  await stopAppDeps(deps);
  await database.close();
  await observability.stop();
});

const input = (value: unknown) => encodeURIComponent(JSON.stringify({ json: value }));

describe('slow logs and metrics', () => {
  it('logs a slow procedure and its slow statement (text without values, duration, procedure, request id)', async () => {
    const response = await fetch(`${server.url}/trpc/slow?input=${input({ secret: 'hunter2-value' })}`);
    expect(response.status).toBe(200);
    const reqId = response.headers.get('x-request-id');
    const query = await logs.waitFor((l) => l.msg === 'slow query');
    expect(query).toMatchObject({ level: 'warn', procedure: 'slow', reqId });
    expect(query.statement).toBe('select pg_sleep(0.06), $1::text as secret');
    expect(query.durationMs).toBeGreaterThanOrEqual(40);
    const procedure = await logs.waitFor((l) => l.msg === 'slow procedure');
    expect(procedure).toMatchObject({ level: 'warn', procedure: 'slow', type: 'query', code: 'OK', reqId });
    expect(procedure.durationMs as number).toBeGreaterThanOrEqual(query.durationMs as number);
    expect(logs.text()).not.toContain('hunter2-value');
    // A fast call logs nothing of the kind.
    await fetch(`${server.url}/trpc/fast`);
    expect(logs.lines().filter((l) => l.msg === 'slow procedure')).toHaveLength(1);
  });

  it('counts calls by path and code, refusals by limit, HTTP answers by route and status', async () => {
    // Two calls made above; the per-address limit (3 a minute) refuses the fourth.
    await fetch(`${server.url}/trpc/fast`);
    const refused = await fetch(`${server.url}/trpc/fast`);
    expect(refused.status).toBe(429);

    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const scrape = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toContain('keel_procedure_calls_total{path="slow",type="query",code="OK"} 1');
    expect(text).toContain('keel_procedure_calls_total{path="fast",type="query",code="OK"} 2');
    expect(text).toContain('keel_procedure_calls_total{path="fast",type="query",code="TOO_MANY_REQUESTS"} 1');
    expect(text).toContain('keel_rate_limit_refusals_total{limit="api-ip"} 1');
    expect(text).toContain('keel_refusals_held 0'); // tests send refusals at once (REFUSAL_DELAY_MS=0)
    expect(text).toContain('keel_http_requests_total{route="/trpc/:path",method="GET",status="429"} 1');
    expect(text).toContain('keel_http_requests_total{route="/trpc/:path",method="GET",status="200"} 3');
    expect(text).toMatch(/keel_db_pool_connections\{state="total"\} [1-9]/);
    expect(text).toMatch(/keel_migrations_applied [1-9]/);
    expect(text).toContain('keel_mail_outbox_backlog 0');
  });

  it('has every metric the Grafana dashboard (docs/grafana/keel-dashboard.json) queries', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana/keel-dashboard.json', import.meta.url), 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const queried = new Set(
      dashboard.panels
        .flatMap((panel) => panel.targets.map((target) => target.expr))
        .flatMap((expr) => expr.match(/\b(?:keel|nodejs|process)_[a-z0-9_]+/g) ?? [])
        .map((name) => name.replace(/_(bucket|sum|count)$/, '')),
    );
    expect(queried.size).toBeGreaterThan(15);
    const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const served = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1]));
    expect([...queried].filter((name) => !served.has(name))).toEqual([]);
  });
});
