/**
 * The HTTP host as a client sees it: real sockets, real Fastify, real tRPC, this file's own
 * migrated database. Logs are captured as JSON lines to check what an operator would read.
 */
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../server/src/db/client.js';
import { createAppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';
import { VERSION } from '../../server/src/version.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { withCapturedLogs } from '../support/log-capture.js';
import { decodeTrpcError, type SuperJsonEnvelope, type TrpcErrorShape } from '../support/trpc-http.js';
import { LEAKY_MESSAGE, productionEnv, superjsonInput, testRouterFor } from './fixtures.js';

const ALLOWED_ORIGIN = 'https://app.example.com';

const db = await useTestDatabase();

/** The real app router, as deployed, with a CORS allow-list and logs at info level. */
const main = withCapturedLogs(db.deps({ config: { CORS_ORIGINS: ALLOWED_ORIGIN, LOG_LEVEL: 'info' } }));
const mainServer = await startTestServer(main.deps);
/** The failing test router under a production config. */
const prod = withCapturedLogs(db.deps({ config: { ...productionEnv(), LOG_LEVEL: 'info' } }));
const testRouter = testRouterFor(db.database.prisma);
const prodServer = await startTestServer(prod.deps, { router: testRouter });
/** The failing test router in test mode (the default), with the default 1 MiB body limit. */
const testModeServer = await startTestServer(db.deps({ config: { NODE_ENV: 'test' } }), { router: testRouter });
const devModeServer = await startTestServer(db.deps({ config: { NODE_ENV: 'development' } }), { router: testRouter });
/** A configured 2 KiB body limit. */
const smallServer = await startTestServer(db.deps({ config: { BODY_LIMIT_BYTES: '2048' } }), { router: testRouter });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Reads a tRPC error response: the superjson envelope decoded into the formatter's shape, and the raw text. */
async function trpcError(response: Response): Promise<{ raw: string; error: TrpcErrorShape }> {
  const raw = await response.text();
  const body = JSON.parse(raw) as { error: SuperJsonEnvelope };
  return { raw, error: decodeTrpcError(body.error) };
}

const postJson = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('health endpoints', () => {
  it('GET /healthz answers 200 { status: ok }', async () => {
    const response = await fetch(`${mainServer.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 with the database up, marked not cacheable', async () => {
    const response = await fetch(`${mainServer.url}/readyz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ status: 'ready', database: 'up' });
  });
});

describe('request ids', () => {
  it('echoes a well-formed incoming x-request-id', async () => {
    const response = await fetch(`${mainServer.url}/healthz`, { headers: { 'x-request-id': 'edge-proxy:7f3a.91_b-2' } });
    expect(response.headers.get('x-request-id')).toBe('edge-proxy:7f3a.91_b-2');
  });

  it.each([
    ['containing spaces', 'not a valid request id'],
    ['of 300 characters', 'a'.repeat(300)],
    ['shorter than 8 characters', 'abc'],
  ])('replaces an incoming x-request-id %s with a generated UUID', async (_what, incoming) => {
    const response = await fetch(`${mainServer.url}/healthz`, { headers: { 'x-request-id': incoming } });
    const id = response.headers.get('x-request-id');
    expect(id).not.toBe(incoming);
    expect(id).toMatch(UUID);
  });

  it('generates a request id when none is sent', async () => {
    const response = await fetch(`${mainServer.url}/healthz`);
    expect(response.headers.get('x-request-id')).toMatch(UUID);
  });
});

describe('unknown procedures and routes', () => {
  it('answers an unknown procedure with a JSON tRPC error coded NOT_FOUND', async () => {
    const response = await fetch(`${mainServer.url}/trpc/nope.nothing`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const { error } = await trpcError(response);
    expect(error.data.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(/nope\.nothing/);
  });

  it('answers an unknown route with a JSON 404 naming method and path (without the query)', async () => {
    const response = await fetch(`${mainServer.url}/no/such/route?token=abc`, { headers: { 'x-request-id': 'unknown-route-0001' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      code: 'NOT_FOUND',
      message: 'No route for GET /no/such/route.',
      requestId: 'unknown-route-0001',
    });
  });
});

describe('body size limit', () => {
  const MiB = 1024 * 1024;
  const registerBody = (size: number) => {
    const envelope = superjsonInput({ email: 'someone@example.com', age: 30, nested: { name: '' } });
    return superjsonInput({ email: 'someone@example.com', age: 30, nested: { name: 'x'.repeat(size - envelope.length) } });
  };

  it('rejects a 2 MiB POST with 413 under the default 1 MiB limit', async () => {
    const response = await postJson(`${mainServer.url}/trpc/system.health`, superjsonInput('x'.repeat(2 * MiB)));
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const { error } = await trpcError(response);
    expect(error).toMatchObject({ message: 'The request body is too large.', data: { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413 } });
  });

  it('accepts a body just under the default 1 MiB limit', async () => {
    const body = registerBody(MiB - 1024);
    expect(body.length).toBe(MiB - 1024);
    const response = await postJson(`${testModeServer.url}/trpc/register`, body);
    expect(response.status).toBe(200);
  });

  it('applies a configured smaller BODY_LIMIT_BYTES (2 KiB): 1 KiB passes, 3 KiB is 413', async () => {
    expect((await postJson(`${smallServer.url}/trpc/register`, registerBody(1024))).status).toBe(200);
    const tooBig = await postJson(`${smallServer.url}/trpc/register`, registerBody(3 * 1024));
    expect(tooBig.status).toBe(413);
  });
});

describe('batching', () => {
  const batchUrl = (count: number) => {
    const paths = Array.from({ length: count }, () => 'system.health').join(',');
    const input = Object.fromEntries(Array.from({ length: count }, (_, i) => [String(i), {}]));
    return `${mainServer.url}/trpc/${paths}?batch=1&input=${encodeURIComponent(JSON.stringify(input))}`;
  };

  it('answers a batch of 50 calls (TRPC_MAX_BATCH_SIZE) with 50 results', async () => {
    const response = await fetch(batchUrl(50));
    expect(response.status).toBe(200);
    const results = (await response.json()) as Array<{ result: { data: { json: { status: string } } } }>;
    expect(results).toHaveLength(50);
    expect(results.every((r) => r.result.data.json.status === 'ok')).toBe(true);
  });

  it('refuses a batch of 51 calls with one BAD_REQUEST error instead of 51 results', async () => {
    const response = await fetch(batchUrl(51));
    expect(response.status).toBe(400);
    const body = (await response.json()) as unknown;
    const errors = (Array.isArray(body) ? body : [body]) as Array<{ error?: { json: { data: { code: string } } }; result?: unknown }>;
    expect(errors.some((e) => e.result !== undefined)).toBe(false);
    expect(errors[0]?.error?.json.data.code).toBe('BAD_REQUEST');
  });
});

describe('security headers', () => {
  it('sends nosniff, HSTS and a policy that loads nothing and lets no page frame an answer, on every route', async () => {
    for (const path of ['/healthz', '/trpc/system.health', '/api/health', '/trpc/nope', '/no-such-route']) {
      const response = await fetch(`${mainServer.url}${path}`);
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('strict-transport-security'), path).toMatch(/max-age=\d+/);
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
      expect(response.headers.get('content-security-policy'), path).toBe(
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      );
      expect(response.headers.get('x-powered-by'), path).toBeNull();
    }
  });
});

describe('CORS', () => {
  it('lets an allowed origin read responses with credentials, including on preflight', async () => {
    const simple = await fetch(`${mainServer.url}/trpc/system.health`, { headers: { origin: ALLOWED_ORIGIN } });
    expect(simple.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(simple.headers.get('access-control-allow-credentials')).toBe('true');
    expect(simple.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);

    const preflight = await fetch(`${mainServer.url}/trpc/system.health`, {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });

  it('gives a foreign origin no access-control-allow-origin, on requests and on preflight', async () => {
    const foreign = 'https://evil.example.net';
    const simple = await fetch(`${mainServer.url}/trpc/system.health`, { headers: { origin: foreign } });
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    expect(simple.headers.get('access-control-allow-credentials')).toBeNull();
    const preflight = await fetch(`${mainServer.url}/trpc/system.health`, {
      method: 'OPTIONS',
      headers: { origin: foreign, 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('system.health over HTTP', () => {
  it('returns { status: ok, version, uptimeSeconds } in the superjson envelope', async () => {
    const response = await fetch(`${mainServer.url}/trpc/system.health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { result: { data: Parameters<typeof superjson.deserialize>[0] } };
    const health = superjson.deserialize<{ status: string; version: string; uptimeSeconds: number }>(body.result.data);
    expect(health).toEqual({ status: 'ok', version: VERSION, uptimeSeconds: expect.any(Number) });
    expect(Number.isInteger(health.uptimeSeconds) && health.uptimeSeconds >= 0).toBe(true);
  });
});

describe('request logging', () => {
  it('writes one line per request with method, path without query, status and duration, and never the authorization header', async () => {
    const secret = 'Bearer sk-live-do-not-log-0123456789';
    const requests = [
      { id: 'log-test-health-01', url: `/trpc/system.health?input=${encodeURIComponent('{"json":{"email":"x@y.z"}}')}`, status: 200 },
      { id: 'log-test-missing-1', url: '/missing?token=abc', status: 404 },
      { id: 'log-test-procnf-01', url: '/trpc/nope.nothing', status: 404 },
    ];
    for (const r of requests) {
      const response = await fetch(`${mainServer.url}${r.url}`, { headers: { 'x-request-id': r.id, authorization: secret } });
      expect(response.status).toBe(r.status);
      await response.arrayBuffer();
    }
    for (const r of requests) {
      const line = await main.logs.waitFor((l) => l.reqId === r.id && l.msg === 'request');
      expect(line).toMatchObject({ level: 'info', method: 'GET', path: r.url.split('?')[0], status: r.status });
      expect(typeof line.durationMs).toBe('number');
      expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
      expect(main.logs.lines().filter((l) => l.reqId === r.id && l.msg === 'request')).toHaveLength(1);
    }
    const text = main.logs.text();
    expect(text).not.toContain('sk-live-do-not-log');
    expect(text).not.toContain('token=abc');
    expect(text).not.toContain('x@y.z');
  });
});

describe('tRPC error formatter', () => {
  it('answers a malformed JSON body or ?input= with BAD_REQUEST in its own words, not the parser text', async () => {
    for (const response of [
      await postJson(`${prodServer.url}/trpc/register`, '{bad json'),
      await fetch(`${prodServer.url}/trpc/userCount?input=%7Bnope`),
    ]) {
      expect(response.status).toBe(400);
      const raw = await response.clone().text();
      const { error } = await trpcError(response);
      expect(error.message).toBe('Malformed request: the input is not valid JSON.');
      expect(error.data.code).toBe('BAD_REQUEST');
      expect(raw).not.toMatch(/position|Unexpected token|Expected property/);
    }
  });

  it('answers invalid input with BAD_REQUEST, "Invalid input." and field errors naming each bad field', async () => {
    const response = await postJson(
      `${testModeServer.url}/trpc/register`,
      superjsonInput({ email: 'not-an-email', age: 12, nested: { name: '' } }),
    );
    expect(response.status).toBe(400);
    const { error } = await trpcError(response);
    expect(error.message).toBe('Invalid input.');
    expect(error.data.code).toBe('BAD_REQUEST');
    expect(Object.keys(error.data.fieldErrors ?? {}).sort()).toEqual(['age', 'email', 'nested.name']);
    expect(error.data.fieldErrors?.email?.[0]).toEqual(expect.any(String));
  });

  it('hides an unexpected error in production: generic message with the request id, no stack, the real error only in the log', async () => {
    const response = await fetch(`${prodServer.url}/trpc/explode`);
    expect(response.status).toBe(500);
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toMatch(UUID);
    const { raw, error } = await trpcError(response);
    expect(error.message).toBe(`Internal server error. Reference: ${requestId}.`);
    expect(error.data.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.data.requestId).toBe(requestId);
    expect(error.data.stack).toBeUndefined();
    expect(raw).not.toContain('hunter2');
    expect(raw).not.toContain('password');
    expect(raw).not.toMatch(/\bat .*\.ts:\d+/);

    const logged = await prod.logs.waitFor((l) => l.reqId === requestId && l.msg === 'procedure failed');
    expect(logged.level).toBe('error');
    expect((logged.err as { message: string; stack: string }).message).toBe(LEAKY_MESSAGE);
    expect((logged.err as { message: string; stack: string }).stack).toContain('fixtures.ts');
  });

  it.each([
    ['test', () => testModeServer],
    ['development', () => devModeServer],
  ])('shows an unexpected error with its stack in %s mode', async (_mode, server) => {
    const response = await fetch(`${server().url}/trpc/explode`);
    expect(response.status).toBe(500);
    const { error } = await trpcError(response);
    expect(error.message).toBe(LEAKY_MESSAGE);
    expect(error.data.requestId).toBe(response.headers.get('x-request-id'));
    expect(error.data.stack).toContain(LEAKY_MESSAGE);
    expect(error.data.stack).toContain('fixtures.ts');
  });

  it('answers an AppError with its own code, message and field errors, also in production', async () => {
    const response = await postJson(`${prodServer.url}/trpc/conflict`, superjsonInput(undefined));
    expect(response.status).toBe(409);
    const { error } = await trpcError(response);
    expect(error.data.code).toBe('CONFLICT');
    expect(error.message).toBe('That name is taken.');
    expect(error.data.fieldErrors).toEqual({ name: ['already taken'] });
    expect(error.data.stack).toBeUndefined();
  });
});

describe('a database that does not answer in time', () => {
  // Its own pool: the statement timeout is a setting of the connections.
  const slowDb = (async () => {
    const config = testConfig(db.url, { DATABASE_STATEMENT_TIMEOUT_MS: '100' });
    const logger = createLogger(config);
    const database = createDatabase(db.url, config.database, logger);
    afterAll(() => database.close());
    return startTestServer(createAppDeps({ config, database, logger, keys: db.keys }), { router: testRouterFor(database.prisma) });
  })();

  // pg_sleep(2) is cut by the 100 ms statement timeout: TIMEOUT is what PostgreSQL's cancel (57014) maps to.
  it('answers TIMEOUT with 504, not 408 (which clients resend), over tRPC and REST', async () => {
    const { url } = await slowDb;
    const trpc = await fetch(`${url}/trpc/slowQuery`);
    const error = decodeTrpcError(((await trpc.json()) as { error: SuperJsonEnvelope }).error);
    expect(trpc.status).toBe(504);
    expect(error.data).toMatchObject({ code: 'TIMEOUT', httpStatus: 504 });
    expect(error.message).toBe('The database did not answer in time. Retry later.');

    const rest = await fetch(`${url}/api/test/slow`);
    expect(rest.status).toBe(504);
    expect(await rest.json()).toMatchObject({ code: 'TIMEOUT', message: 'The database did not answer in time. Retry later.' });
  });

  it('keeps a batch with an answered call at 207: the timed-out call says 504 in its own body', async () => {
    const { url } = await slowDb;
    const response = await fetch(`${url}/trpc/slowQuery,userCount?batch=1&input=${encodeURIComponent('{}')}`);
    expect(response.status).toBe(207);
    const [slow, count] = (await response.json()) as { error?: SuperJsonEnvelope; result?: unknown }[];
    expect(decodeTrpcError(slow?.error as SuperJsonEnvelope).data).toMatchObject({ code: 'TIMEOUT', httpStatus: 504 });
    expect(count?.result).toBeDefined();
  });
});
