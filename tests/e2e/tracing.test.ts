/**
 * OpenTelemetry traces end to end: a real server process exporting with the official OTLP/HTTP
 * exporter to a receiver started here (tests/support/otlp-receiver.ts), called by the SDK from
 * inside a span of this process's own tracer, so the trace starts here and continues there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AlwaysOnSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeelClient, isKeelError } from '../../client-sdk/src/index.js';
import { freePort } from '../../server/src/db/embedded.js';
import { createScratchDatabase } from '../support/database.js';
import { type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnServer, stopAllProcesses, waitUntilListening } from '../support/process.js';

const root = mkdtempSync(join(tmpdir(), 'keel-tracing-'));
const receiver = await startOtlpReceiver();
const database = await createScratchDatabase({ migrated: true });
const server = spawnServer({
  DATABASE_URL: database.url,
  PORT: String(await freePort()),
  LOG_LEVEL: 'debug',
  JWT_KEYS_FILE: join(root, 'jwt-keys.json'),
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_SERVICE_NAME: 'keel-under-test',
  OTEL_BSP_SCHEDULE_DELAY: '50',
});
const url = await waitUntilListening(server);
afterAll(async () => {
  await stopAllProcesses();
  await receiver.close();
  await database.drop();
  rmSync(root, { recursive: true, force: true });
});

// This process plays the frontend: its own tracer, context manager and W3C propagator.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(new TracerProvider({ sampler: new AlwaysOnSampler() }));
const tracer = trace.getTracer('frontend');

const keel = createKeelClient({ url });
await keel.register({ email: 'traced@example.test', password: 'a sturdy passphrase', name: 'Traced' });
const project = await keel.projects.create.mutate({ name: 'Traced project' });

const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);

describe('traces', () => {
  it('continues the caller trace: a batch gets one HTTP span, a span per call, Prisma and SQL spans under them; a failing call is an error', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const { traceId, spanId, results } = await tracer.startActiveSpan('frontend.page', async (span) => {
      const settled = await Promise.allSettled([
        keel.projects.list.query(),
        keel.auth.me.query(),
        keel.projects.byId.query({ id: missing }),
      ]);
      span.end();
      return { ...span.spanContext(), results: settled };
    });
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const failure = (results[2] as PromiseRejectedResult).reason;
    expect(isKeelError(failure) && failure.data?.code).toBe('NOT_FOUND');

    const spans = (
      await receiver.waitFor((all) =>
        ['projects.list', 'auth.me', 'projects.byId'].every((n) => all.some((s) => s.traceId === traceId && s.name === n)),
      )
    ).filter((s) => s.traceId === traceId);

    // One HTTP server span for the batch, child of the frontend's span.
    const http = spans.filter((s) => s.kind === 2);
    expect(http).toHaveLength(1);
    const request = http[0] as ReceivedSpan;
    expect(request.parentSpanId).toBe(spanId);
    expect(request.name).toBe('GET /trpc/:path');
    expect(request.attributes['http.response.status_code']).toBe(207);
    expect(request.serviceName).toBe('keel-under-test');

    // One span per call of the batch, children of the HTTP span, with path, type, code and user.
    const calls = childrenOf(spans, request);
    expect(calls.map((s) => s.name).sort()).toEqual(['auth.me', 'projects.byId', 'projects.list']);
    const byName = (name: string) => calls.find((s) => s.name === name) as ReceivedSpan;
    for (const call of calls) {
      expect(call.attributes['rpc.system']).toBe('trpc');
      expect(call.attributes['trpc.type']).toBe('query');
      expect(call.attributes['enduser.id']).toEqual(expect.any(String));
    }
    expect(byName('projects.list').attributes['trpc.code']).toBe('OK');
    expect(byName('projects.list').statusCode).not.toBe(2);
    expect(byName('projects.byId').attributes['trpc.code']).toBe('NOT_FOUND');
    expect(byName('projects.byId').statusCode).toBe(2);
    expect(byName('projects.byId').statusMessage).toBe('NOT_FOUND');

    // Beneath the calls: Prisma's spans and the SQL statements (pg), all in the same trace.
    const below = (parent: ReceivedSpan): ReceivedSpan[] => childrenOf(spans, parent).flatMap((c) => [c, ...below(c)]);
    const underMe = below(byName('auth.me'));
    expect(underMe.some((s) => s.name.startsWith('prisma:'))).toBe(true);
    const sql = underMe.filter((s) => s.attributes['db.system.name'] === 'postgresql');
    expect(sql.length).toBeGreaterThan(0);
    expect(sql.every((s) => typeof s.attributes['db.query.text'] === 'string')).toBe(true);
    // The typed-SQL list goes to pg directly: its statement is under its call.
    expect(below(byName('projects.list')).some((s) => String(s.attributes['db.query.text']).toLowerCase().includes('project'))).toBe(true);
  });

  it('puts trace_id and span_id on every log line of a traced request', async () => {
    const traceId = await tracer.startActiveSpan('frontend.click', async (span) => {
      await keel.projects.byId.query({ id: project.id });
      await keel.projects.byId.query({ id: '00000000-0000-4000-8000-000000000001' }).catch(() => undefined);
      span.end();
      return span.spanContext().traceId;
    });
    // The second request's own line comes last (written once its answer is sent).
    await server.waitForLog((l) => l.msg === 'request' && l.trace_id === traceId && l.status === 404);
    const lines = server.logs().filter((l) => l.trace_id === traceId);
    // Both request lines (written by the host) and the procedure's own line carry the ids.
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(2);
    for (const line of lines) expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
    // The rejection is logged by the transport once the call is over: under the request's server span.
    const rejected = { span_id: String(lines.find((l) => l.msg === 'procedure rejected')?.span_id) };
    const spans = await receiver.waitFor((all) => all.some((s) => s.spanId === rejected.span_id));
    const logged = spans.find((s) => s.spanId === rejected.span_id) as ReceivedSpan;
    expect(logged.traceId).toBe(traceId);
    expect(logged.name).toBe('GET /trpc/:path');
    expect(childrenOf(spans, logged).map((s) => s.name)).toEqual(['projects.byId']);
  });

  it('traces argon2 and the REST twin of a procedure', async () => {
    const login = await tracer.startActiveSpan('frontend.login', async (span) => {
      const client = createKeelClient({ url });
      await client.login({ email: 'traced@example.test', password: 'a sturdy passphrase' });
      span.end();
      return span.spanContext().traceId;
    });
    // The call's span ends after the hash's: it may come in a later export.
    const spans = await receiver.waitFor((all) =>
      ['argon2.verify', 'auth.login'].every((name) => all.some((s) => s.traceId === login && s.name === name)),
    );
    const verify = spans.find((s) => s.traceId === login && s.name === 'argon2.verify') as ReceivedSpan;
    const loginCall = spans.find((s) => s.traceId === login && s.name === 'auth.login') as ReceivedSpan;
    expect(verify.parentSpanId).toBe(loginCall.spanId);

    const accessToken = (await keel.getTokens())?.accessToken;
    const traceparent = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    const response = await fetch(`${url}/api/projects`, { headers: { authorization: `Bearer ${accessToken}`, traceparent } });
    expect(response.status).toBe(200);
    const rest = await receiver.waitFor((all) => all.some((s) => s.traceId === 'ab'.repeat(16) && s.name === 'projects.list'));
    const restHttp = rest.find((s) => s.traceId === 'ab'.repeat(16) && s.kind === 2) as ReceivedSpan;
    expect(restHttp.parentSpanId).toBe('cd'.repeat(8));
    expect(rest.find((s) => s.traceId === 'ab'.repeat(16) && s.name === 'projects.list')?.parentSpanId).toBe(restHttp.spanId);
    expect(receiver.rejected).toEqual([]);
  });

  it('follows the caller sampling decision (head sampling): a request marked not sampled exports nothing', async () => {
    const accessToken = (await keel.getTokens())?.accessToken;
    const unsampled = '12'.repeat(16);
    const sampled = '34'.repeat(16);
    const call = (traceId: string, flags: string) =>
      fetch(`${url}/api/projects`, {
        headers: { authorization: `Bearer ${accessToken}`, traceparent: `00-${traceId}-${'ef'.repeat(8)}-${flags}` },
      });
    expect((await call(unsampled, '00')).status).toBe(200);
    expect((await call(sampled, '01')).status).toBe(200);
    // Spans are exported in the order they end: once the later request's have arrived, the earlier ones would have too.
    await receiver.waitFor((all) => all.some((s) => s.traceId === sampled && s.kind === 2));
    expect(receiver.spans.filter((s) => s.traceId === unsampled)).toEqual([]);
  });

  it('traces mail delivery (the verification mail of the registration above)', async () => {
    const spans = await receiver.waitFor((all) => all.some((s) => s.name === 'mail.send'));
    const send = spans.find((s) => s.name === 'mail.send') as ReceivedSpan;
    expect(send.attributes['mail.attempt']).toBe(1);
    expect(send.statusCode).not.toBe(2);
  });

  it('starts no trace for queries outside a request (the mail poller), and serves no /metrics when metrics are not configured', async () => {
    await receiver.waitFor((all) => all.length > 0);
    expect(receiver.spans.filter((s) => s.name.startsWith('prisma:') && s.parentSpanId === undefined)).toEqual([]);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});
