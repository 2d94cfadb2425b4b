/**
 * Prometheus metrics as an operator gets them: a real server process with METRICS_TOKEN and
 * METRICS_PORT, scraped every second by a real Prometheus (Debian's `prometheus`, installed by
 * .ci/run) started here on a free loopback port; its HTTP API answers PromQL about the calls made.
 * Under long/: Prometheus takes seconds to start and to scrape twice on a busy machine.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeelClient } from '../../../client-sdk/src/index.js';
import { freePort } from '../../../server/src/db/embedded.js';
import { createScratchDatabase } from '../../support/database.js';
import { spawnProgram, spawnServer, stopAllProcesses, waitUntilListening } from '../../support/process.js';

const TOKEN = 'metrics-token-for-the-test-0123456789';
const root = mkdtempSync(join(tmpdir(), 'keel-prometheus-'));
const database = await createScratchDatabase({ migrated: true });
const metricsPort = await freePort();
const server = spawnServer({
  DATABASE_URL: database.url,
  PORT: String(await freePort()),
  LOG_LEVEL: 'info',
  JWT_KEYS_FILE: join(root, 'jwt-keys.json'),
  METRICS_TOKEN: TOKEN,
  METRICS_PORT: String(metricsPort),
  REFRESH_REUSE_GRACE_SECONDS: '0',
});
const url = await waitUntilListening(server);
afterAll(async () => {
  await stopAllProcesses();
  await database.drop();
  rmSync(root, { recursive: true, force: true });
});

/** Prometheus' instant query answer: one sample's value, or undefined when the result is empty. */
async function query(promUrl: string, promql: string): Promise<number | undefined> {
  const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
  expect(body.status).toBe('success');
  const sample = body.data.result[0];
  return sample ? Number(sample.value[1]) : undefined;
}

/** Asks until Prometheus' answer (refreshed at each 1 s scrape) is `expected`; bounded. */
async function eventually(promUrl: string, promql: string, accept: (value: number | undefined) => boolean): Promise<number | undefined> {
  const deadline = Date.now() + 60_000;
  let last: number | undefined;
  while (Date.now() < deadline) {
    last = await query(promUrl, promql);
    if (accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${promql}: last answer ${last}`);
}

describe('metrics', () => {
  it('serves /metrics only to bearers of METRICS_TOKEN on the main port, and on METRICS_PORT', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer not-the-token-at-all-0000' } })).status).toBe(401);
    const ok = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
    const text = await ok.text();
    for (const name of [
      'keel_db_pool_connections',
      'keel_password_hash_queue',
      'keel_mail_outbox_backlog',
      'keel_mail_outbox_oldest_age_seconds',
      'keel_migrations_applied',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds',
      'nodejs_heap_size_used_bytes',
      'process_resident_memory_bytes',
    ])
      expect(text).toContain(`# TYPE ${name}`);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('is scraped by a real Prometheus, which answers PromQL about the calls made', async () => {
    const promPort = await freePort();
    const config = join(root, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: keel',
        '    authorization:',
        `      credentials: ${TOKEN}`,
        '    static_configs:',
        `      - targets: ['127.0.0.1:${metricsPort}']`,
        '',
      ].join('\n'),
    );
    const promUrl = `http://127.0.0.1:${promPort}`;
    const prom = spawnProgram(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(root, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { name: 'prometheus' },
    );
    await prom.waitForLine(/Server is ready to receive web requests/, 60_000);

    const keel = createKeelClient({ url });
    const registered = await keel.register({ email: 'metrics@example.test', password: 'a sturdy passphrase', name: 'Metrics' });
    for (let i = 0; i < 12; i++) await keel.projects.list.query();
    await keel.projects.byId.query({ id: '00000000-0000-4000-8000-000000000000' }).catch(() => undefined);
    // A rotated refresh token presented again: reuse detected.
    const refresh = (refreshToken: string) =>
      fetch(`${url}/trpc/auth.refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ json: { refreshToken } }),
      });
    expect((await refresh(registered.refreshToken as string)).status).toBe(200);
    expect((await refresh(registered.refreshToken as string)).status).toBe(401);

    expect(await eventually(promUrl, 'sum(keel_procedure_calls_total{path="projects.list",type="query",code="OK"})', (v) => v === 12)).toBe(
      12,
    );
    expect(await query(promUrl, 'sum(keel_procedure_calls_total{path="projects.byId",code="NOT_FOUND"})')).toBe(1);
    expect(await query(promUrl, 'sum(keel_procedure_duration_seconds_count{path="projects.list"})')).toBe(12);
    expect(await query(promUrl, 'sum(keel_refresh_token_reuse_detected_total)')).toBe(1);
    expect(await query(promUrl, 'sum(keel_http_requests_total{route="/trpc/:path",method="GET",status="200"})')).toBeGreaterThanOrEqual(12);
    expect(await query(promUrl, 'keel_db_pool_connections{state="total"}')).toBeGreaterThan(0);
    expect(await query(promUrl, 'keel_migrations_applied')).toBeGreaterThan(0);
    expect(await query(promUrl, 'sum(keel_password_hash_wait_seconds_count)')).toBeGreaterThanOrEqual(1);
    // More calls after that scrape: the rate over the last minute (of the calls Prometheus saw arrive) is positive.
    for (let i = 0; i < 12; i++) await keel.projects.list.query();
    expect(await eventually(promUrl, 'sum(keel_procedure_calls_total{path="projects.list"})', (v) => v === 24)).toBe(24);
    expect(
      await eventually(promUrl, 'sum(rate(keel_procedure_calls_total{path="projects.list"}[1m]))', (v) => v !== undefined && v > 0),
    ).toBeGreaterThan(0);
  });
});
