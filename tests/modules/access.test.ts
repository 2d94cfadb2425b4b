/**
 * The authorization matrix, for every procedure of the app router. The list of procedures comes
 * from the router itself (`appRouter._def.procedures`): a new procedure, or a whole new module,
 * without a case here fails the first test, which names what is missing. Service tokens are part of
 * the matrix: every procedure is called with a token holding every scope but the one it needs
 * (FORBIDDEN, insufficient_scope), and, where it declares one, with exactly that scope.
 */
import { TRPCError } from '@trpc/server';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../server/src/modules/service-accounts/scopes.js';
import { SCOPES } from '../../server/src/modules/service-accounts/scopes.js';
import { appRouter } from '../../server/src/router.js';
import { callerFor, signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { codeOf } from '../support/errors.js';
import { createUser } from '../support/factories.js';
import { serviceCaller } from '../support/service-accounts.js';

const db = await useTestDatabase();
const deps = db.deps();

/** User A's rows, which the other callers aim at. */
interface Rows {
  projectId: string;
  taskId: string;
  userId: string;
  sessionId: string;
  serviceAccountId: string;
}

interface AccessCase {
  /**
   * Who may call it: `public` (anyone), `authed` (a signed-in user, else UNAUTHORIZED), `admin`
   * (an ADMIN, else FORBIDDEN; UNAUTHORIZED when signed out).
   */
  access: 'public' | 'authed' | 'admin';
  /** A valid input, aimed at user A's rows where the procedure addresses one. */
  input: (rows: Rows) => unknown;
  /** It addresses one of A's rows: user B must get NOT_FOUND, as if the row did not exist. */
  ownedRow?: true;
  /**
   * Open to service tokens holding `scope`: the call then answers `expect` (`ok`, or the
   * procedure's own refusal, such as a stale version). Absent: closed to every service token.
   */
  service?: { scope: Scope; input?: (rows: Rows) => unknown; expect: 'ok' | 'CONFLICT' };
}

const A_TOKEN = 'A'.repeat(43);

/** Every procedure of the app router. A new one needs its line here (the first test says which). */
const cases: Record<string, AccessCase> = {
  'system.health': { access: 'public', input: () => undefined },

  'auth.register': { access: 'public', input: () => ({ email: `new-${Math.random()}@example.test`, password: 'a sturdy passphrase' }) },
  'auth.login': { access: 'public', input: () => ({ email: 'nobody@example.test', password: 'wrong' }) },
  'auth.refresh': { access: 'public', input: () => ({ refreshToken: A_TOKEN }) },
  'auth.requestPasswordReset': { access: 'public', input: () => ({ email: 'nobody@example.test' }) },
  'auth.resetPassword': { access: 'public', input: () => ({ token: A_TOKEN, newPassword: 'another sturdy passphrase' }) },
  'auth.verifyEmail': { access: 'public', input: () => ({ token: A_TOKEN }) },
  'auth.logout': { access: 'authed', input: () => undefined },
  'auth.logoutAll': { access: 'authed', input: () => undefined },
  'auth.me': { access: 'authed', input: () => undefined },
  'auth.sessions.list': { access: 'authed', input: () => undefined },
  'auth.sessions.revoke': { access: 'authed', input: (r) => ({ sessionId: r.sessionId }), ownedRow: true },
  'auth.changePassword': { access: 'authed', input: () => ({ currentPassword: 'wrong', newPassword: 'another sturdy passphrase' }) },
  'auth.requestEmailVerification': { access: 'authed', input: () => undefined },
  'auth.twoFactor.status': { access: 'authed', input: () => undefined },
  'auth.twoFactor.setup': { access: 'authed', input: () => undefined },
  'auth.twoFactor.enable': { access: 'authed', input: () => ({ code: '000000' }) },
  'auth.twoFactor.disable': { access: 'authed', input: () => ({ password: 'wrong', code: '000000' }) },
  'auth.twoFactor.regenerateRecoveryCodes': { access: 'authed', input: () => ({ code: '000000' }) },
  'auth.twoFactor.verify': { access: 'public', input: () => ({ challenge: A_TOKEN, code: '000000' }) },
  'auth.deleteAccount': { access: 'authed', input: () => ({ password: 'wrong' }) },
  'auth.exportData': { access: 'authed', input: () => undefined },
  'auth.oidc.providers': { access: 'public', input: () => undefined },
  'auth.oidc.start': { access: 'public', input: () => ({ provider: 'none-configured' }) },
  'auth.oidc.finish': { access: 'public', input: () => ({ state: 'unknown-state', code: 'unknown-code' }) },
  'auth.oidc.startLink': { access: 'authed', input: () => ({ provider: 'none-configured' }) },
  'auth.oidc.finishLink': { access: 'authed', input: () => ({ state: 'unknown-state', code: 'unknown-code' }) },
  'auth.oidc.identities': { access: 'authed', input: () => undefined },
  'auth.oidc.unlink': { access: 'authed', input: () => ({ id: '00000000-0000-4000-8000-000000000000' }) },

  'projects.list': {
    access: 'authed',
    input: () => ({}),
    service: { scope: 'projects:read', input: (r) => ({ ownerId: r.userId }), expect: 'ok' },
  },
  'projects.byId': {
    access: 'authed',
    input: (r) => ({ id: r.projectId }),
    ownedRow: true,
    service: { scope: 'projects:read', expect: 'ok' },
  },
  'projects.create': { access: 'authed', input: () => ({ name: `p-${Math.random()}` }) },
  'projects.update': {
    access: 'authed',
    input: (r) => ({ id: r.projectId, version: 1, name: 'renamed' }),
    ownedRow: true,
    service: { scope: 'projects:write', input: (r) => ({ id: r.projectId, version: 99, name: 'renamed' }), expect: 'CONFLICT' },
  },
  'projects.archive': {
    access: 'authed',
    input: (r) => ({ id: r.projectId, version: 1 }),
    ownedRow: true,
    service: { scope: 'projects:write', input: (r) => ({ id: r.projectId, version: 99 }), expect: 'CONFLICT' },
  },
  'projects.delete': {
    access: 'authed',
    input: (r) => ({ id: r.projectId, version: 1 }),
    ownedRow: true,
    service: { scope: 'projects:write', input: (r) => ({ id: r.projectId, version: 99 }), expect: 'CONFLICT' },
  },

  'tasks.list': {
    access: 'authed',
    input: (r) => ({ projectId: r.projectId }),
    ownedRow: true,
    service: { scope: 'projects:read', expect: 'ok' },
  },
  'tasks.byId': { access: 'authed', input: (r) => ({ id: r.taskId }), ownedRow: true, service: { scope: 'projects:read', expect: 'ok' } },
  'tasks.create': { access: 'authed', input: (r) => ({ projectId: r.projectId, title: 'intruder' }), ownedRow: true },
  'tasks.update': { access: 'authed', input: (r) => ({ id: r.taskId, version: 1, title: 'renamed' }), ownedRow: true },
  'tasks.move': { access: 'authed', input: (r) => ({ id: r.taskId, version: 1, position: 0 }), ownedRow: true },
  'tasks.delete': { access: 'authed', input: (r) => ({ id: r.taskId, version: 1 }), ownedRow: true },
  // Subscriptions: refused before any stream opens (ownership when subscribing; tests/live covers the stream).
  'projects.onChange': { access: 'authed', input: () => undefined },
  'tasks.onChange': { access: 'authed', input: (r) => ({ projectId: r.projectId }), ownedRow: true },

  'users.list': { access: 'admin', input: () => ({}), service: { scope: 'users:read', expect: 'ok' } },
  'users.byId': { access: 'admin', input: (r) => ({ id: r.userId }), service: { scope: 'users:read', expect: 'ok' } },
  'users.setRole': { access: 'admin', input: (r) => ({ id: r.userId, role: 'ADMIN' }) },
  'users.setActive': { access: 'admin', input: (r) => ({ id: r.userId, active: false }) },
  'users.delete': { access: 'admin', input: (r) => ({ id: r.userId }) },

  'serviceAccounts.create': { access: 'admin', input: () => ({ name: 'intruder', scopes: ['users:read'] }) },
  'serviceAccounts.list': { access: 'admin', input: () => ({}) },
  'serviceAccounts.get': { access: 'admin', input: (r) => ({ id: r.serviceAccountId }) },
  'serviceAccounts.update': { access: 'admin', input: (r) => ({ id: r.serviceAccountId, scopes: ['users:read'] }) },
  'serviceAccounts.rotateSecret': { access: 'admin', input: (r) => ({ id: r.serviceAccountId }) },
  'serviceAccounts.revoke': { access: 'admin', input: (r) => ({ id: r.serviceAccountId }) },
};

const procedures = Object.keys(appRouter._def.procedures).sort();
const withAccess = (...kinds: AccessCase['access'][]) => procedures.filter((path) => kinds.some((kind) => cases[path]?.access === kind));

type Caller = Awaited<ReturnType<typeof callerFor>>;
function call(caller: Caller, path: string, rows: Rows, input = cases[path]?.input(rows)): Promise<unknown> {
  const fn = path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], caller) as (
    input: unknown,
  ) => Promise<unknown>;
  return fn(input);
}

/** The scope a procedure declares in its meta (what the middleware checks). */
const declaredScope = (path: string): unknown =>
  (appRouter._def.procedures as unknown as Record<string, { _def: { meta?: { scope?: unknown } } }>)[path]?._def.meta?.scope;

let rows: Rows;
let anonymous: Caller;
let userB: Caller;

beforeAll(async () => {
  const a = await createUser(deps);
  const asA = { id: a.id, role: 'USER' as const, sessionId: a.id };
  const project = await deps.services.projects.create(asA, { name: 'A private project' });
  const task = await deps.services.tasks.create(asA, { projectId: project.id, title: 'A private task' });
  const { sessionId } = await signIn(deps, a);
  const account = await deps.services.serviceAccounts.create(
    { name: 'A target', scopes: ['projects:read'] },
    { userId: a.id, ip: undefined, log: deps.logger },
  );
  rows = { projectId: project.id, taskId: task.id, userId: a.id, sessionId, serviceAccountId: account.id };
  anonymous = await callerFor(deps, null);
  userB = await callerFor(deps, await createUser(deps));
});

describe('authorization of every procedure of the app router', () => {
  it('has a case for every procedure, and none for a procedure that is gone', () => {
    const missing = procedures.filter((path) => !(path in cases));
    const stale = Object.keys(cases).filter((path) => !procedures.includes(path));
    expect(
      missing,
      `No access case in tests/modules/access.test.ts for ${missing.join(', ')}. Add each to \`cases\`: who may call it ` +
        "(access: 'public' | 'authed' | 'admin'), a valid input, and `ownedRow: true` when it addresses one user's row.",
    ).toEqual([]);
    expect(stale, `tests/modules/access.test.ts has cases for procedures the router no longer has: ${stale.join(', ')}`).toEqual([]);
  });

  it.each(withAccess('authed', 'admin'))('%s: unauthenticated -> UNAUTHORIZED', async (path) => {
    expect(await codeOf(call(anonymous, path, rows))).toBe('UNAUTHORIZED');
  });

  it.each(withAccess('admin'))('%s: a USER -> FORBIDDEN', async (path) => {
    expect(await codeOf(call(userB, path, rows))).toBe('FORBIDDEN');
  });

  it.each(procedures.filter((path) => cases[path]?.ownedRow))("%s: user B on user A's rows -> NOT_FOUND", async (path) => {
    expect(await codeOf(call(userB, path, rows))).toBe('NOT_FOUND');
  });

  it.each(withAccess('public'))('%s: public, so no access token is asked for', async (path) => {
    // Its own answer may be a refusal (a wrong password is UNAUTHORIZED too), never the auth middleware's.
    const error = await call(anonymous, path, rows).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error !== undefined) expect(error).toBeInstanceOf(TRPCError);
    expect(error instanceof TRPCError ? error.message : '').not.toMatch(/access token/i);
  });

  it.each(withAccess('authed', 'admin'))('%s: a service token without its scope -> FORBIDDEN (insufficient_scope)', async (path) => {
    const needed = cases[path]?.service?.scope;
    const caller = await serviceCaller(
      deps,
      SCOPES.filter((s) => s !== needed),
    );
    const error = await call(caller, path, rows, cases[path]?.service?.input?.(rows)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TRPCError);
    expect((error as TRPCError).code).toBe('FORBIDDEN');
    expect((error as TRPCError).cause).toMatchObject({ reason: 'INSUFFICIENT_SCOPE' });
  });

  it.each(procedures.filter((path) => cases[path]?.service))('%s: a service token with its scope passes', async (path) => {
    const service = cases[path]?.service;
    if (!service) throw new Error('unreachable');
    expect(declaredScope(path)).toBe(service.scope);
    const caller = await serviceCaller(deps, [service.scope]);
    const outcome = call(caller, path, rows, service.input?.(rows) ?? cases[path]?.input(rows));
    if (service.expect === 'ok') await expect(outcome).resolves.toBeDefined();
    else expect(await codeOf(outcome)).toBe(service.expect);
  });

  it('declares a scope only on the procedures that list one here', () => {
    const declared = procedures.filter((path) => declaredScope(path) !== undefined);
    expect(declared).toEqual(procedures.filter((path) => cases[path]?.service));
  });

  it("leaves user A's rows untouched after every attempt", async () => {
    const project = await deps.database.prisma.project.findUniqueOrThrow({ where: { id: rows.projectId } });
    const task = await deps.database.prisma.task.findUniqueOrThrow({ where: { id: rows.taskId } });
    const session = await deps.database.prisma.session.findUniqueOrThrow({ where: { id: rows.sessionId } });
    expect(project).toMatchObject({ name: 'A private project', version: 1, archivedAt: null });
    expect(task).toMatchObject({ title: 'A private task', version: 1, position: 0 });
    expect(session.revokedAt).toBeNull();
    expect(await deps.database.prisma.task.count({ where: { projectId: rows.projectId } })).toBe(1);
  });
});
