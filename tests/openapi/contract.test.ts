/**
 * The contract as a REST client sees it: a client typed only by the committed types generated from
 * the OpenAPI document (openapi-typescript) and openapi-fetch, against the real server. If the
 * document and the server disagree, this fails to compile or to run.
 */
import createClient from 'openapi-fetch';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import type { components, paths } from './generated/keel-api.js';

const db = await useTestDatabase();
const server = await startTestServer(db.deps());
const baseUrl = `${server.url}/api`;

type ApiError = components['schemas']['Error'];

/** The data of a successful call; the error body (typed by the document) otherwise fails the test. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) throw new Error(`${result.response.status}: ${JSON.stringify(result.error)}`);
  return result.data;
}

describe('a client generated from the OpenAPI document', () => {
  it('registers, signs in, creates a project, creates and lists its tasks', async () => {
    const anonymous = createClient<paths>({ baseUrl });
    const email = 'contract@example.test';
    const password = 'a sturdy contract passphrase';

    const registered = ok(await anonymous.POST('/auth/register', { body: { email, password, name: 'Contract' } }));
    expect(registered.user).toMatchObject({ email, name: 'Contract', role: 'USER' });

    const session = ok(await anonymous.POST('/auth/login', { body: { email, password } }));
    if (!('accessToken' in session)) throw new Error('expected tokens, got a two-factor challenge');
    expect(new Date(session.accessTokenExpiresAt).getTime()).toBeGreaterThan(Date.now());
    const api = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${session.accessToken}` } });

    const me = ok(await api.GET('/auth/me'));
    expect(me.id).toBe(registered.user.id);

    const project = ok(await api.POST('/projects', { body: { name: 'Launch', description: 'March' } }));
    expect(project).toMatchObject({ name: 'Launch', description: 'March', ownerId: me.id, version: 1, archivedAt: null });

    const projectId = project.id;
    for (const title of ['Write the press release', 'Book the venue', 'Send invitations']) {
      ok(await api.POST('/projects/{projectId}/tasks', { params: { path: { projectId } }, body: { title } }));
    }
    const due = ok(
      await api.POST('/projects/{projectId}/tasks', {
        params: { path: { projectId } },
        body: { title: 'Print badges', status: 'IN_PROGRESS', dueAt: '2026-03-01T09:00:00.000Z' },
      }),
    );
    expect(due).toMatchObject({ status: 'IN_PROGRESS', dueAt: '2026-03-01T09:00:00.000Z', position: 3 });

    const firstPage = ok(await api.GET('/projects/{projectId}/tasks', { params: { path: { projectId }, query: { limit: 3 } } }));
    expect(firstPage.items.map((task) => task.title)).toEqual(['Write the press release', 'Book the venue', 'Send invitations']);
    expect(firstPage.nextCursor).not.toBeNull();
    const secondPage = ok(
      await api.GET('/projects/{projectId}/tasks', {
        params: { path: { projectId }, query: { limit: 3, cursor: firstPage.nextCursor ?? undefined } },
      }),
    );
    expect(secondPage.items.map((task) => task.title)).toEqual(['Print badges']);
    expect(secondPage.nextCursor).toBeNull();

    const inProgress = ok(
      await api.GET('/projects/{projectId}/tasks', { params: { path: { projectId }, query: { status: 'IN_PROGRESS' } } }),
    );
    expect(inProgress.items.map((task) => task.title)).toEqual(['Print badges']);
  });

  it('gets errors typed by the document: status, code, field errors and request id', async () => {
    const anonymous = createClient<paths>({ baseUrl });
    const unauthenticated = await anonymous.GET('/projects');
    expect(unauthenticated.response.status).toBe(401);
    const error: ApiError | undefined = unauthenticated.error;
    expect(error).toEqual({
      code: 'UNAUTHORIZED',
      message: 'Missing access token.',
      requestId: unauthenticated.response.headers.get('x-request-id'),
    });

    const invalid = await anonymous.POST('/auth/register', { body: { email: 'not-an-email', password: 'short' } });
    expect(invalid.response.status).toBe(400);
    expect(invalid.error?.code).toBe('BAD_REQUEST');
    expect(Object.keys(invalid.error?.fieldErrors ?? {}).sort()).toEqual(['email', 'password']);
  });
});
