/**
 * Account deletion (by the owner and by an admin) and export, over tRPC in-process and over REST:
 * what goes, what is kept, who may, and what the logs say.
 */
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { callerFor, callerWith, signIn } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD, type TestUser } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { withCapturedLogs } from '../../support/log-capture.js';

const db = await useTestDatabase();
const KEY = Buffer.alloc(32, 3).toString('base64');
const { deps, logs } = withCapturedLogs(db.deps({ config: { TWO_FACTOR_ENCRYPTION_KEYS: KEY, LOG_LEVEL: 'info' } }));
const prisma = deps.database.prisma;

/** A user with a project of two tasks and a live session. */
async function userWithData(overrides: Parameters<typeof createUser>[1] = {}) {
  const user = await createUser(deps, overrides);
  const session = await signIn(deps, user);
  const caller = callerWith(deps, { authorization: `Bearer ${session.accessToken}` });
  const project = await caller.projects.create({ name: 'Launch', description: 'the plan' });
  await caller.tasks.create({ projectId: project.id, title: 'Write it' });
  await caller.tasks.create({ projectId: project.id, title: 'Ship it' });
  return { user, session, caller, project };
}

async function rowsOf(user: TestUser) {
  return {
    users: await prisma.user.count({ where: { id: user.id } }),
    sessions: await prisma.session.count({ where: { userId: user.id } }),
    projects: await prisma.project.count({ where: { ownerId: user.id } }),
    tasks: await prisma.task.count({ where: { project: { ownerId: user.id } } }),
  };
}

describe('auth.deleteAccount', () => {
  it('refuses a wrong password and deletes nothing', async () => {
    const { user, caller } = await userWithData();
    const error = await trpcErrorOf(caller.auth.deleteAccount({ password: 'not my password' }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.cause).toMatchObject({ fieldErrors: { password: ['is incorrect'] } });
    expect(await rowsOf(user)).toEqual({ users: 1, sessions: 1, projects: 1, tasks: 2 });
  });

  it('deletes the account, its projects, tasks and sessions in one go; its refresh token dies; the owner is mailed; the log names only the id', async () => {
    const { user, session, caller } = await userWithData();
    const other = await userWithData();
    expect(await caller.auth.deleteAccount({ password: KNOWN_PASSWORD })).toEqual({ deleted: true });
    expect(await rowsOf(user)).toEqual({ users: 0, sessions: 0, projects: 0, tasks: 0 });
    expect(await prisma.refreshToken.count({ where: { session: { userId: user.id } } })).toBe(0);
    // Someone else's rows stay.
    expect(await rowsOf(other.user)).toEqual({ users: 1, sessions: 1, projects: 1, tasks: 2 });
    const refresh = await trpcErrorOf(callerWith(deps).auth.refresh({ refreshToken: session.refreshToken }));
    expect(refresh.code).toBe('UNAUTHORIZED');
    expect(await prisma.mailOutbox.count({ where: { recipient: user.email, subject: 'Your Keel account was deleted' } })).toBe(1);
    const line = logs.lines().find((l) => l.audit === 'auth.account.deleted' && l.userId === user.id);
    expect(line).toMatchObject({ by: 'self' });
    expect(JSON.stringify(line)).not.toContain(user.email);
    // The email is free again.
    await expect(callerWith(deps).auth.register({ email: user.email, password: 'a sturdy passphrase' })).resolves.toBeDefined();
  });

  it('asks for a current code too when two-factor sign-in is on', async () => {
    const { user, caller } = await userWithData();
    const setup = await caller.auth.twoFactor.setup();
    const totp = new TOTP({ secret: Secret.fromBase32(setup.secret) });
    // This step's code, then the next step's: both inside the +-1 window even across a step boundary.
    await caller.auth.twoFactor.enable({ code: totp.generate() });
    const missing = await trpcErrorOf(caller.auth.deleteAccount({ password: KNOWN_PASSWORD }));
    expect(missing.cause).toMatchObject({ fieldErrors: { code: ['is required: two-factor sign-in is on'] } });
    expect(await rowsOf(user)).toMatchObject({ users: 1 });
    await caller.auth.deleteAccount({ password: KNOWN_PASSWORD, code: totp.generate({ timestamp: Date.now() + 30_000 }) });
    expect(await rowsOf(user)).toEqual({ users: 0, sessions: 0, projects: 0, tasks: 0 });
    expect(await prisma.twoFactor.count({ where: { userId: user.id } })).toBe(0);
    expect(await prisma.recoveryCode.count({ where: { userId: user.id } })).toBe(0);
  });

  it('refuses to delete the last active admin, and deletes an admin who is not the last', async () => {
    // Admins of earlier tests in this file's database would make this one not the last: demote them.
    await prisma.user.updateMany({ where: { role: 'ADMIN' }, data: { role: 'USER' } });
    const admin = await createUser(deps, { role: 'ADMIN' });
    const caller = await callerFor(deps, admin);
    const error = await trpcErrorOf(caller.auth.deleteAccount({ password: KNOWN_PASSWORD }));
    expect(error.code).toBe('CONFLICT');
    expect(error.cause).toMatchObject({ reason: 'LAST_ADMIN' });
    await createUser(deps, { role: 'ADMIN' });
    await expect(caller.auth.deleteAccount({ password: KNOWN_PASSWORD })).resolves.toEqual({ deleted: true });
  });
});

describe('users.delete (admin)', () => {
  it("deletes another user's account and everything they own; NOT_FOUND for an unknown id", async () => {
    const admin = await createUser(deps, { role: 'ADMIN' });
    const { user } = await userWithData();
    const caller = await callerFor(deps, admin);
    await expect(caller.users.delete({ id: user.id })).resolves.toEqual({ deleted: true });
    expect(await rowsOf(user)).toEqual({ users: 0, sessions: 0, projects: 0, tasks: 0 });
    expect(logs.lines().find((l) => l.audit === 'auth.account.deleted' && l.userId === user.id)).toMatchObject({
      by: 'admin',
      adminId: admin.id,
    });
    const again = await trpcErrorOf(caller.users.delete({ id: user.id }));
    expect(again.code).toBe('NOT_FOUND');
  });
});

describe('auth.exportData', () => {
  it("returns the account's profile, sessions, projects and tasks, and nothing of other accounts or secrets", async () => {
    const { user, caller, project } = await userWithData({ name: 'Exporter' });
    await userWithData();
    const data = await caller.auth.exportData();
    expect(data.profile).toMatchObject({ id: user.id, email: user.email, name: 'Exporter', twoFactorEnabled: false });
    expect(data.sessions).toHaveLength(1);
    expect(data.sessions[0]).toMatchObject({ userAgent: 'vitest', factors: ['password'], revokedAt: null });
    expect(data.identities).toEqual([]);
    expect(data.projects).toHaveLength(1);
    expect(data.projects[0]).toMatchObject({ id: project.id, name: 'Launch', description: 'the plan' });
    expect(data.projects[0]?.tasks.map((t) => t.title)).toEqual(['Write it', 'Ship it']);
    const json = JSON.stringify(data);
    expect(json).not.toMatch(/argon2|passwordHash|tokenHash/);
  });
});

describe('over REST', () => {
  it('GET /api/auth/export, POST /api/auth/delete-account and DELETE /api/users/{id}', async () => {
    const server = await startTestServer(deps);
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const response = await fetch(`${server.url}/api${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    const { user, session } = await userWithData();
    const exported = await call('GET', '/auth/export', session.accessToken);
    expect(exported.status).toBe(200);
    expect(exported.json).toMatchObject({ profile: { id: user.id }, projects: [{ name: 'Launch' }] });
    expect(await call('POST', '/auth/delete-account', session.accessToken, { password: 'wrong password' })).toMatchObject({ status: 400 });
    expect(await call('POST', '/auth/delete-account', session.accessToken, { password: KNOWN_PASSWORD })).toEqual({
      status: 200,
      json: { deleted: true },
    });

    const admin = await createUser(deps, { role: 'ADMIN' });
    const { accessToken } = await signIn(deps, admin);
    const victim = await userWithData();
    const plain = await signIn(deps, await createUser(deps));
    expect((await call('DELETE', `/users/${victim.user.id}`, plain.accessToken)).status).toBe(403);
    expect(await call('DELETE', `/users/${victim.user.id}`, accessToken)).toEqual({ status: 200, json: { deleted: true } });
    expect(await rowsOf(victim.user)).toEqual({ users: 0, sessions: 0, projects: 0, tasks: 0 });
  });
});
