/**
 * Every status the REST surface answers is one its OpenAPI document declares for that operation.
 * Each operation of the document is driven down its error paths over real HTTP (no token, a
 * user's token on an admin operation, invalid input, unknown ids, a stale version, the same create
 * twice, an Idempotency-Key reused with another input, one sent to a credentials call) and down its
 * success path, and every answer's status is checked against the document.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openApiDocument, REQUEST_EXAMPLES, restProcedures } from '../../server/src/openapi/document.js';
import { appRouter } from '../../server/src/router.js';
import { useTestDatabase } from '../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../support/factories.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();
const deps = db.deps({ config: { RATE_LIMIT_ENABLED: 'false' } });
const server = await startTestServer(deps);
const document = openApiDocument(appRouter) as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown> | undefined;
}

async function call(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const inQuery = method === 'GET' || method === 'DELETE';
  const query =
    inQuery && options.body && typeof options.body === 'object'
      ? `?${new URLSearchParams(Object.entries(options.body).map(([k, v]) => [k, String(v)]))}`
      : '';
  const response = await fetch(`${server.url}/api${path}${query}`, {
    method,
    headers: {
      ...(inQuery || options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: inQuery || options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function signIn(role: 'USER' | 'ADMIN') {
  const user = await createUser(deps, { role, emailVerified: true });
  const login = await call('POST', '/auth/login', { body: { email: user.email, password: KNOWN_PASSWORD } });
  expect(login.status).toBe(200);
  return { user, token: login.json?.accessToken as string };
}

describe('the statuses of every REST operation', () => {
  it('are each declared in the OpenAPI document, error paths and success paths alike', async () => {
    const user = await signIn('USER');
    const admin = await signIn('ADMIN');
    const other = await createUser(deps);
    const project = await call('POST', '/projects', { token: user.token, body: { name: 'Statuses' } });
    expect(project.status).toBe(201);
    const projectId = project.json?.id as string;
    const task = await call('POST', `/projects/${projectId}/tasks`, { token: user.token, body: { title: 'A task' } });
    const taskId = task.json?.id as string;

    /** Path parameters: a real row's id, or an unknown one. */
    const fill = (path: string, known: boolean) =>
      path.replace(/\{\w+\}/g, () => {
        if (!known) return randomUUID();
        if (path.startsWith('/projects/')) return projectId;
        if (path.startsWith('/tasks/')) return taskId;
        if (path.startsWith('/users/')) return other.id;
        return randomUUID();
      });

    const seen: string[] = [];
    const undeclared: string[] = [];
    const record = (method: string, path: string, answer: Answer, what: string) => {
      const declared = Object.keys(document.paths[path]?.[method.toLowerCase()]?.responses ?? {});
      seen.push(`${method} ${path} ${answer.status}`);
      if (!declared.includes(String(answer.status))) {
        undeclared.push(`${method} ${path} answered ${answer.status} (${what}; declared: ${declared.join(', ')})`);
      }
    };

    // A taken project name (before the probes below delete the project).
    const again = await call('POST', '/projects', { token: user.token, body: { name: 'Statuses' } });
    expect(again.status).toBe(409);
    record('POST', '/projects', again, 'a taken name');

    for (const procedure of restProcedures(appRouter)) {
      const { method, path } = procedure.openapi;
      const example = REQUEST_EXAMPLES[procedure.path] ?? {};
      const probes: Array<[string, { token?: string; body?: unknown; headers?: Record<string, string> }, boolean]> = [
        ['no token', { body: example }, true],
        ["a user's token", { token: user.token, body: example }, true],
        ["an admin's token", { token: admin.token, body: example }, true],
        ['the same call again (a create twice, a stale version)', { token: admin.token, body: example }, true],
        [
          'invalid input',
          { token: admin.token, body: { version: 'one', name: 42, title: [], email: 'nope', role: 'KING', limit: -1 } },
          true,
        ],
        ['unknown ids', { token: admin.token, body: example }, false],
        ['an Idempotency-Key', { token: user.token, body: example, headers: { 'idempotency-key': `k-${procedure.path}` } }, true],
        [
          'the same Idempotency-Key with another input',
          { token: user.token, body: { ...example, name: 'Another' }, headers: { 'idempotency-key': `k-${procedure.path}` } },
          true,
        ],
      ];
      for (const [what, options, known] of probes) {
        if (options.headers && method === 'GET') continue;
        record(method, path, await call(method, fill(path, known), options), what);
      }
    }
    expect(undeclared).toEqual([]);
    // The probes reached the error paths they aim at.
    for (const expected of [
      'POST /projects 401',
      'GET /users 403',
      'POST /projects 400',
      'GET /projects/{id} 404',
      'PATCH /projects/{id} 409',
    ]) {
      expect(seen).toContain(expected);
    }
  }, 120_000);

  it('creates answer 201 with the Location of the new resource, which answers 200', async () => {
    const { token } = await signIn('USER');
    const created = await call('POST', '/projects', { token, body: { name: 'Located' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/api/projects/${created.json?.id as string}`);
    expect((await call('GET', `/projects/${created.json?.id as string}`, { token })).status).toBe(200);
    const task = await call('POST', `/projects/${created.json?.id as string}/tasks`, { token, body: { title: 'Located task' } });
    expect(task.status).toBe(201);
    expect(task.headers.get('location')).toBe(`/api/tasks/${task.json?.id as string}`);
    expect((await call('GET', task.headers.get('location')?.slice('/api'.length) ?? '', { token })).json?.title).toBe('Located task');
    // A replay of the create (same Idempotency-Key) is the same answer: 201, the same Location.
    const first = await call('POST', '/projects', { token, body: { name: 'Once' }, headers: { 'idempotency-key': 'create-once' } });
    const replay = await call('POST', '/projects', { token, body: { name: 'Once' }, headers: { 'idempotency-key': 'create-once' } });
    expect([first.status, replay.status]).toEqual([201, 201]);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('location')).toBe(first.headers.get('location'));
  });

  it('every mutation but the credentials ones declares the Idempotency-Key header and the idempotent-replayed answer header', () => {
    for (const procedure of restProcedures(appRouter)) {
      const operation = document.paths[procedure.openapi.path]?.[procedure.openapi.method.toLowerCase()] as {
        parameters?: Array<{ name: string; in: string; required?: boolean }>;
        responses: Record<string, { headers?: Record<string, unknown> }>;
      };
      const key = operation.parameters?.find((p) => p.name === 'Idempotency-Key');
      const success = operation.responses['201'] ?? operation.responses['200'];
      if (procedure.idempotent) {
        expect(key, procedure.path).toMatchObject({ in: 'header', required: false });
        expect(Object.keys(success?.headers ?? {}), procedure.path).toContain('idempotent-replayed');
      } else {
        expect(key, procedure.path).toBeUndefined();
      }
    }
    expect(
      restProcedures(appRouter)
        .filter((p) => p.idempotent)
        .map((p) => p.path),
    ).toContain('projects.create');
    expect(restProcedures(appRouter).find((p) => p.path === 'auth.login')?.idempotent).toBe(false);
  });
});
