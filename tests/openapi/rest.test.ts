/**
 * The REST surface over real HTTP: the same middleware, validation and errors as tRPC, plain JSON
 * with ISO dates, and errors as `{ code, message, fieldErrors?, requestId }` with their status.
 */
import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import { renderDocument } from '../../server/src/openapi/artifacts.js';
import { restProcedures } from '../../server/src/openapi/document.js';
import { appRouter } from '../../server/src/router.js';
import { productionEnv } from '../http/fixtures.js';
import { callerFor } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { withCapturedLogs } from '../support/log-capture.js';
import { LEAKY_MESSAGE, restTestRouter } from './fixtures.js';

const db = await useTestDatabase();
const deps = db.deps();
const server = await startTestServer(deps);
const testServer = await startTestServer(db.deps(), { router: restTestRouter });
/** The test router under a production config, its logs captured. */
const prod = withCapturedLogs(db.deps({ config: { ...productionEnv(), LOG_LEVEL: 'info' } }));
const prodServer = await startTestServer(prod.deps, { router: restTestRouter });

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Call {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  base?: string;
}

async function call(method: string, path: string, { token, body, headers = {}, base = server.url }: Call = {}) {
  const response = await fetch(`${base}/api${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below.
  const json: any = text === '' ? undefined : JSON.parse(text);
  return { status: response.status, headers: response.headers, text, json };
}

/** A user signed in over REST, with their access token. */
async function signedIn(overrides: Parameters<typeof createUser>[1] = {}) {
  const user = await createUser(deps, overrides);
  const login = await call('POST', '/auth/login', { body: { email: user.email, password: KNOWN_PASSWORD } });
  expect(login.status).toBe(200);
  return { user, token: login.json.accessToken as string };
}

async function createProject(token: string, name = 'Launch') {
  const created = await call('POST', '/projects', { token, body: { name } });
  expect(created.status).toBe(200);
  return created.json as { id: string; version: number; createdAt: string };
}

/** An error body has exactly these keys, and its request id is the response's. */
function expectErrorBody(
  result: Awaited<ReturnType<typeof call>>,
  status: number,
  code: string,
  withFieldErrors = false,
  withReason = false,
) {
  expect(result.status).toBe(status);
  expect(Object.keys(result.json).sort()).toEqual(
    ['code', 'message', ...(withFieldErrors ? ['fieldErrors'] : []), ...(withReason ? ['reason'] : []), 'requestId'].sort(),
  );
  expect(result.json.code).toBe(code);
  expect(result.json.requestId).toBe(result.headers.get('x-request-id'));
  expect(result.text).not.toMatch(/stack|issues|"json"/);
}

describe('REST: plain JSON in and out', () => {
  it('registers over REST and answers with plain JSON, dates as ISO strings, never cached', async () => {
    const result = await call('POST', '/auth/register', {
      body: { email: 'rest-new@example.test', password: 'a sturdy passphrase', name: 'Rest' },
    });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toMatch(/^application\/json/);
    expect(result.headers.get('cache-control')).toBe('no-store');
    expect(result.json).not.toHaveProperty('json');
    expect(result.json.user).toMatchObject({ email: 'rest-new@example.test', name: 'Rest', role: 'USER', emailVerified: false });
    for (const date of [result.json.user.createdAt, result.json.accessTokenExpiresAt, result.json.refreshTokenExpiresAt]) {
      expect(date).toMatch(ISO_DATE);
    }
    expect(result.json.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refreshes with the refresh token in the JSON body, and ignores the cookie mode of the tRPC API', async () => {
    const user = await createUser(deps);
    const login = await call('POST', '/auth/login', {
      body: { email: user.email, password: KNOWN_PASSWORD },
      headers: { 'x-keel-auth': 'cookie' },
    });
    expect(login.headers.get('set-cookie')).toBeNull();
    const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: login.json.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refreshToken).not.toBe(login.json.refreshToken);
    const missing = await call('POST', '/auth/refresh');
    expectErrorBody(missing, 401, 'UNAUTHORIZED');
    expect(missing.json.message).toBe('Missing refresh token.');
  });

  it('takes path parameters from the path and the rest from the body', async () => {
    const { token } = await signedIn();
    const project = await createProject(token);
    const task = await call('POST', `/projects/${project.id}/tasks`, {
      token,
      body: { title: 'Draft', dueAt: '2026-03-01T09:00:00.000Z' },
    });
    expect(task.status).toBe(200);
    expect(task.json).toMatchObject({
      projectId: project.id,
      title: 'Draft',
      status: 'TODO',
      dueAt: '2026-03-01T09:00:00.000Z',
      version: 1,
    });
    const moved = await call('POST', `/tasks/${task.json.id}/move`, { token, body: { version: 1, position: 0 } });
    expect(moved.status).toBe(200);
    const fetched = await call('GET', `/tasks/${task.json.id}`, { token });
    expect(fetched.json).toMatchObject({ id: task.json.id, title: 'Draft' });
  });

  it('converts query strings by the input schema: numbers, booleans and defaults, and pages by cursor', async () => {
    const { token } = await signedIn();
    const first = await createProject(token, 'First');
    await createProject(token, 'Second');
    const archived = await call('POST', `/projects/${first.id}/archive`, { token, body: { version: first.version } });
    expect(archived.status).toBe(200);

    const active = await call('GET', '/projects?includeArchived=false', { token });
    expect(active.json.items.map((p: { name: string }) => p.name)).toEqual(['Second']);
    const all = await call('GET', '/projects?includeArchived=true&limit=1', { token });
    expect(all.json.items).toHaveLength(1);
    expect(all.json.nextCursor).toEqual(expect.any(String));
    const next = await call('GET', `/projects?includeArchived=true&limit=1&cursor=${encodeURIComponent(all.json.nextCursor)}`, { token });
    expect(next.json.items.map((p: { name: string }) => p.name)).toEqual(['First']);
    expect(next.json.nextCursor).toBeNull();
  });

  it('rejects query values that are not of the field type instead of guessing', async () => {
    const { token } = await signedIn();
    const words = await call('GET', '/projects?limit=ten&includeArchived=yes', { token });
    expectErrorBody(words, 400, 'BAD_REQUEST', true);
    expect(Object.keys(words.json.fieldErrors).sort()).toEqual(['includeArchived', 'limit']);
  });

  it('leaves the tRPC input schemas as strict as they were (no coercion leaks from REST)', async () => {
    const user = await createUser(deps);
    await call('GET', '/projects?includeArchived=false&limit=5', { token: (await signedIn()).token });
    const caller = await callerFor(deps, user);
    const error = await caller.projects
      .list({ includeArchived: 'false' as unknown as boolean, limit: '5' as unknown as number })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCError);
    expect((error as TRPCError).code).toBe('BAD_REQUEST');
  });

  it('converts dates, numbers, booleans and enums in a query (test router)', async () => {
    const id = randomUUID();
    const echo = await call('GET', `/echo/${id}?count=3&flag=false&at=2026-01-15T09:30:00.000Z&tag=b`, { base: testServer.url });
    expect(echo.json).toEqual({ id, count: 3, flag: false, at: '2026-01-15T09:30:00.000Z', tag: 'b' });
    const defaults = await call('GET', `/echo/${id}?count=-2`, { base: testServer.url });
    expect(defaults.json).toEqual({ id, count: -2, flag: true, at: null, tag: null });
    const bad = await call('GET', `/echo/${id}?count=1.5&at=not-a-date&extra=1`, { base: testServer.url });
    expectErrorBody(bad, 400, 'BAD_REQUEST', true);
    expect(Object.keys(bad.json.fieldErrors).sort()).toEqual(['_', 'at', 'count']);
    // Only ISO 8601 date-times with an offset, as the document says: not what Date.parse guesses.
    for (const at of ['1', '2026-01-15T09:30', 'March 7']) {
      const guessed = await call('GET', `/echo/${id}?count=1&at=${encodeURIComponent(at)}`, { base: testServer.url });
      expectErrorBody(guessed, 400, 'BAD_REQUEST', true);
      expect(Object.keys(guessed.json.fieldErrors)).toEqual(['at']);
    }
    const offset = await call('GET', `/echo/${id}?count=1&at=${encodeURIComponent('2026-01-15T10:30:00+01:00')}`, { base: testServer.url });
    expect(offset.json).toMatchObject({ at: '2026-01-15T09:30:00.000Z' });
  });

  it('serves its OpenAPI document at GET /openapi.json', async () => {
    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(JSON.parse(renderDocument()));
  });
});

describe('REST: the same errors as tRPC', () => {
  it('answers invalid input with 400, the field errors and the request id', async () => {
    const { token } = await signedIn();
    const result = await call('POST', '/projects', { token, body: { name: '   ', role: 'ADMIN' } });
    expectErrorBody(result, 400, 'BAD_REQUEST', true);
    expect(result.headers.get('cache-control')).toBe('no-store');
    expect(result.json.message).toBe('Invalid input.');
    expect(result.json.fieldErrors).toMatchObject({ name: ['must not be empty'], _: [expect.stringContaining('role')] });
  });

  it('answers a missing or bad token with 401 and WWW-Authenticate', async () => {
    for (const token of [undefined, 'not-a-jwt']) {
      const result = await call('GET', '/projects', { token });
      expectErrorBody(result, 401, 'UNAUTHORIZED');
      expect(result.headers.get('www-authenticate')).toBe('Bearer realm="keel"');
    }
  });

  it('demands a token on exactly the operations the document marks as protected', async () => {
    for (const { path, openapi } of restProcedures(appRouter)) {
      const url = openapi.path.replace(/\{\w+\}/g, randomUUID());
      const result = await call(openapi.method, url, { body: openapi.method === 'GET' || openapi.method === 'DELETE' ? undefined : {} });
      if (openapi.protect) {
        expect(result.status, path).toBe(401);
        expect(result.json.message, path).toBe('Missing access token.');
      } else {
        expect(result.json?.message, path).not.toBe('Missing access token.');
      }
    }
  });

  it('answers 403 for an authenticated user without the role', async () => {
    const { token } = await signedIn();
    const result = await call('GET', '/users', { token });
    expectErrorBody(result, 403, 'FORBIDDEN');
  });

  it("answers another user's project with 404, as if it did not exist", async () => {
    const owner = await signedIn();
    const other = await signedIn();
    const project = await createProject(owner.token);
    const read = await call('GET', `/projects/${project.id}`, { token: other.token });
    expectErrorBody(read, 404, 'NOT_FOUND');
    expect(read.json.message).toBe('Project not found.');
    const write = await call('PATCH', `/projects/${project.id}`, { token: other.token, body: { version: 1, name: 'Mine now' } });
    expectErrorBody(write, 404, 'NOT_FOUND');
    const tasks = await call('GET', `/projects/${project.id}/tasks`, { token: other.token });
    expectErrorBody(tasks, 404, 'NOT_FOUND');
  });

  it('answers a stale version with 409, reason STALE_VERSION and a field error on version', async () => {
    const { token } = await signedIn();
    const project = await createProject(token);
    const renamed = await call('PATCH', `/projects/${project.id}`, { token, body: { version: 1, name: 'Renamed' } });
    expect(renamed.json).toMatchObject({ name: 'Renamed', version: 2 });
    const stale = await call('PATCH', `/projects/${project.id}`, { token, body: { version: 1, name: 'Again' } });
    expectErrorBody(stale, 409, 'CONFLICT', true, true);
    expect(stale.json.fieldErrors).toEqual({ version: ['is stale'] });
    expect(stale.json.reason).toBe('STALE_VERSION');
    const staleDelete = await call('DELETE', `/projects/${project.id}?version=1`, { token });
    expectErrorBody(staleDelete, 409, 'CONFLICT', true, true);
    const deleted = await call('DELETE', `/projects/${project.id}?version=2`, { token });
    expect(deleted.json).toEqual({ ok: true, deletedTasks: 0 });
  });

  it('answers 409 for a second account with the same email, with the field named', async () => {
    const user = await createUser(deps);
    const result = await call('POST', '/auth/register', { body: { email: user.email.toUpperCase(), password: 'a sturdy passphrase' } });
    expectErrorBody(result, 409, 'CONFLICT', true);
    expect(result.json.fieldErrors).toEqual({ email: ['is already registered'] });
  });

  it('answers 429 with Retry-After once a rate limit is spent', async () => {
    const limited = await startTestServer(db.deps({ config: { RATE_LIMIT_RESET_PER_IP: '1' } }));
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      last = await call('POST', '/auth/password-reset/request', { base: limited.url, body: { email: 'nobody@example.test' } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 429]);
    if (!last) throw new Error('no response');
    expectErrorBody(last, 429, 'TOO_MANY_REQUESTS');
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('answers a database outage with 503, Retry-After and the same error shape', async () => {
    const result = await call('GET', '/outage', { base: testServer.url });
    expectErrorBody(result, 503, 'SERVICE_UNAVAILABLE');
    expect(result.headers.get('retry-after')).toBe('1');
  });

  it('answers a body that is not JSON with 415, malformed JSON with 400, in the same error shape', async () => {
    const { token } = await signedIn();
    const text = await call('POST', '/projects', { token, body: 'name=Launch', headers: { 'content-type': 'text/plain' } });
    expectErrorBody(text, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const malformed = await call('POST', '/projects', { token, body: '{"name": ' });
    expectErrorBody(malformed, 400, 'BAD_REQUEST');
    expect(malformed.json.message).toBe('The request body is not valid JSON.');
    const large = await call('POST', '/projects', { token, body: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) });
    expectErrorBody(large, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers an unknown REST path with 404 in the same error shape', async () => {
    const result = await call('GET', '/nothing-here');
    expectErrorBody(result, 404, 'NOT_FOUND');
  });

  it('shows an unexpected error outside production with its message but without a stack', async () => {
    const result = await call('GET', '/explode', { base: testServer.url });
    expectErrorBody(result, 500, 'INTERNAL_SERVER_ERROR');
    expect(result.json.message).toBe(LEAKY_MESSAGE);
  });
});

describe('REST in production', () => {
  it('answers an unexpected error with only code, a generic message and the request id; the details go to the log', async () => {
    const result = await call('GET', '/explode', { base: prodServer.url });
    expectErrorBody(result, 500, 'INTERNAL_SERVER_ERROR');
    const requestId = result.headers.get('x-request-id');
    expect(result.json).toEqual({ code: 'INTERNAL_SERVER_ERROR', message: `Internal server error. Reference: ${requestId}.`, requestId });
    expect(result.text).not.toContain('hunter2');
    const logged = await prod.logs.waitFor((line) => line.reqId === requestId && line.msg === 'procedure failed');
    expect(logged.level).toBe('error');
    expect((logged.err as { message: string }).message).toBe(LEAKY_MESSAGE);
  });

  it('still gives field errors for invalid input and domain errors', async () => {
    const invalid = await call('POST', '/conflict', { base: prodServer.url, body: { name: '' } });
    expectErrorBody(invalid, 400, 'BAD_REQUEST', true);
    expect(invalid.json.fieldErrors).toEqual({ name: [expect.any(String)] });
    const conflict = await call('POST', '/conflict', { base: prodServer.url, body: { name: 'taken' } });
    expectErrorBody(conflict, 409, 'CONFLICT', true);
    expect(conflict.json).toMatchObject({ message: 'That name is taken.', fieldErrors: { name: ['already taken'] } });
  });
});
