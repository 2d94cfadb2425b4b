/**
 * Tracing inside one process, through the real HTTP host, Prisma and the pg client: the span tree
 * of a call that queries through Prisma, a failing call's error status, a sampler that drops the
 * trace, and the last spans flushed when observability stops (SIGTERM's path).
 */
import { TRPCError } from '@trpc/server';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../server/src/db/client.js';
import { createAppDeps, stopAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import { startObservability } from '../../server/src/observability/index.js';
import { publicProcedure, router } from '../../server/src/trpc/init.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';

const db = await useTestDatabase();
const receiver = await startOtlpReceiver();
const config = testConfig(db.url, {
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_TRACES_SAMPLER: 'always_on',
  OTEL_BSP_SCHEDULE_DELAY: '60000',
});
const logger = createLogger(config);
const observability = await startObservability(config, logger);
if (!observability) throw new Error('observability should be on');
const database = createDatabase(db.url, config.database, logger, { query: observability.query });
const testRouter = router({
  users: publicProcedure.query(async () => ({ count: await database.prisma.user.count() })),
  missing: publicProcedure.query((): string => {
    throw new TRPCError({ code: 'NOT_FOUND', message: 'Nothing here.' });
  }),
});
const deps = createAppDeps({ config, database, logger, keys: db.keys, observability });
const server = await startTestServer(deps, { router: testRouter });
afterAll(async () => {
  await server.close();
  await stopAppDeps(deps);
  await database.close();
  await receiver.close();
});

describe('tracing in process', () => {
  it('exports, when it stops, the spans of a batch: HTTP, each call, Prisma, SQL; the failing call in error', async () => {
    const response = await fetch(`${server.url}/trpc/users,missing?batch=1&input=${encodeURIComponent('{}')}`);
    expect(response.status).toBe(207);
    // The batch processor would wait a minute: stopping flushes what it holds.
    await observability.stop();
    const spans = await receiver.waitFor((all) => all.some((s) => s.kind === 2));
    const request = spans.find((s) => s.kind === 2) as ReceivedSpan;
    const calls = spans.filter((s) => s.parentSpanId === request.spanId);
    expect(calls.map((s) => s.name).sort()).toEqual(['missing', 'users']);
    const users = calls.find((s) => s.name === 'users') as ReceivedSpan;
    const missing = calls.find((s) => s.name === 'missing') as ReceivedSpan;
    expect(users.attributes['trpc.code']).toBe('OK');
    expect(missing).toMatchObject({ statusCode: 2, statusMessage: 'NOT_FOUND' });
    const under = (parent: ReceivedSpan): ReceivedSpan[] =>
      spans.filter((s) => s.parentSpanId === parent.spanId).flatMap((child) => [child, ...under(child)]);
    const below = under(users);
    expect(below.some((s) => s.name.startsWith('prisma:'))).toBe(true);
    expect(
      below.some((s) => s.attributes['db.system.name'] === 'postgresql' && String(s.attributes['db.query.text']).includes('users')),
    ).toBe(true);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
  });
});
