/**
 * A password check takes a while (argon2, and a queue for a hashing slot under load). What commits
 * on the account meanwhile must win: a sign-in or a password change that checked the old password
 * cannot open a session, or write a password, over a change, reset or deactivation that happened
 * during its check. The check is stretched here by running the competing request from inside it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../../server/src/lib/password.js';
import { callerFor, callerWith, signIn } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { codeOf, trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';

/** Runs once, right after the next password check and before its caller goes on. */
const duringCheck = vi.hoisted(() => ({ run: undefined as (() => Promise<unknown>) | undefined }));

vi.mock('../../../server/src/lib/password.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../../server/src/lib/password.js')>();
  return {
    ...original,
    verifyPassword: async (...args: Parameters<typeof original.verifyPassword>) => {
      const valid = await original.verifyPassword(...args);
      const competing = duringCheck.run;
      duringCheck.run = undefined;
      await competing?.();
      return valid;
    },
  };
});

const db = await useTestDatabase();
const deps = db.deps();
const prisma = deps.database.prisma;
const liveSessions = (userId: string) => prisma.session.count({ where: { userId, revokedAt: null } });

afterEach(() => {
  duringCheck.run = undefined;
});

describe('a password check racing a change on the account', () => {
  it('a sign-in whose password is changed during its check is refused and opens no session', async () => {
    const user = await createUser(deps);
    const owner = await signIn(deps, user);
    duringCheck.run = () =>
      callerWith(deps, { authorization: `Bearer ${owner.accessToken}` }).auth.changePassword({
        currentPassword: KNOWN_PASSWORD,
        newPassword: 'the owner changed it',
      });

    expect(await codeOf(callerWith(deps, { ip: '192.0.2.60' }).auth.login({ email: user.email, password: KNOWN_PASSWORD }))).toBe(
      'UNAUTHORIZED',
    );
    expect(duringCheck.run).toBeUndefined(); // the change did run inside the check
    expect(await liveSessions(user.id)).toBe(1); // the owner's, kept by their own change
    await expect(callerWith(deps).auth.login({ email: user.email, password: 'the owner changed it' })).resolves.toBeDefined();
  });

  it('a sign-in whose account is deactivated during its check is FORBIDDEN and opens no session', async () => {
    const user = await createUser(deps);
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    duringCheck.run = () => admin.users.setActive({ id: user.id, active: false });

    expect(await codeOf(callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD }))).toBe('FORBIDDEN');
    expect(await liveSessions(user.id)).toBe(0);
  });

  it('of two password changes that checked the same password, the one that commits first wins', async () => {
    const user = await createUser(deps);
    const first = callerWith(deps, { authorization: `Bearer ${(await signIn(deps, user)).accessToken}` });
    const second = callerWith(deps, { authorization: `Bearer ${(await signIn(deps, user)).accessToken}` });
    duringCheck.run = () => first.auth.changePassword({ currentPassword: KNOWN_PASSWORD, newPassword: 'the first one wins' });

    const error = await trpcErrorOf(second.auth.changePassword({ currentPassword: KNOWN_PASSWORD, newPassword: 'the second one loses' }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.cause).toMatchObject({ fieldErrors: { currentPassword: ['is incorrect'] } });
    await expect(callerWith(deps).auth.login({ email: user.email, password: 'the first one wins' })).resolves.toBeDefined();
    expect(await codeOf(callerWith(deps).auth.login({ email: user.email, password: 'the second one loses' }))).toBe('UNAUTHORIZED');
  });

  it('a sign-in that rehashes the password (new argon2 settings) does not fail another sign-in racing it', async () => {
    const user = await createUser(deps);
    // Stored with older, cheaper settings: the next sign-in rehashes it.
    const old = await hashPassword(KNOWN_PASSWORD, { ...deps.config.passwords, iterations: 1 });
    await prisma.user.update({ where: { id: user.id }, data: { passwordHash: old } });
    duringCheck.run = () => callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD });

    await expect(callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD })).resolves.toBeDefined();
    expect(duringCheck.run).toBeUndefined();
    expect((await prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash).not.toBe(old);
    expect(await liveSessions(user.id)).toBe(2);
  });
});
