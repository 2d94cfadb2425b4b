import { describe, expect, it } from 'vitest';
import { generateJwkSet, importKeySet } from '../../../server/src/modules/auth/keys.js';
import { callerWith, signIn } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { codeOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';

const db = await useTestDatabase();

/** Deps whose clock the test moves by hand, so expiry and grace windows need no sleeping. */
function withClock(config: Record<string, string> = {}) {
  const clock = { now: new Date() };
  const deps = db.deps({ config, now: () => clock.now });
  const advance = (seconds: number) => {
    clock.now = new Date(clock.now.getTime() + seconds * 1000);
  };
  return { deps, advance };
}

describe('auth.refresh', () => {
  it('rotates: every use returns a new refresh token and a new access token for the same session', async () => {
    const { deps, advance } = withClock();
    const user = await createUser(deps);
    const { refreshToken, sessionId } = await signIn(deps, user);
    advance(1);
    const first = await callerWith(deps).auth.refresh({ refreshToken });
    expect(first.refreshToken).not.toBe(refreshToken);
    expect(first.user.id).toBe(user.id);
    const second = await callerWith(deps).auth.refresh({ refreshToken: first.refreshToken });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    const me = await callerWith(deps, { authorization: `Bearer ${second.accessToken}` }).auth.me();
    expect(me.id).toBe(user.id);
    const tokens = await deps.database.prisma.refreshToken.findMany({ where: { sessionId } });
    expect(tokens).toHaveLength(3);
    expect(tokens.filter((t) => t.rotatedAt === null)).toHaveLength(1);
  });

  it('gives the immediate predecessor the successor already issued inside the grace window', async () => {
    const { deps, advance } = withClock();
    const { refreshToken } = await signIn(deps, await createUser(deps));
    const first = await callerWith(deps).auth.refresh({ refreshToken });
    advance(9);
    const retry = await callerWith(deps).auth.refresh({ refreshToken });
    expect(retry.refreshToken).toBe(first.refreshToken);
    // The successor still works: the retry did not log the user out.
    await expect(callerWith(deps).auth.refresh({ refreshToken: first.refreshToken })).resolves.toBeDefined();
  });

  it('revokes the whole session when a rotated token is presented after the grace window', async () => {
    const { deps, advance } = withClock();
    const { refreshToken, sessionId } = await signIn(deps, await createUser(deps));
    const first = await callerWith(deps).auth.refresh({ refreshToken });
    advance(11);
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken }))).toBe('UNAUTHORIZED');
    const session = await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } });
    expect(session.revokedReason).toBe('refresh_token_reuse');
    // The legitimate holder's newest token dies with the family.
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: first.refreshToken }))).toBe('UNAUTHORIZED');
  });

  it('treats an older ancestor as reuse even inside the grace window', async () => {
    const { deps } = withClock();
    const { refreshToken, sessionId } = await signIn(deps, await createUser(deps));
    const first = await callerWith(deps).auth.refresh({ refreshToken });
    await callerWith(deps).auth.refresh({ refreshToken: first.refreshToken });
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken }))).toBe('UNAUTHORIZED');
    expect((await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).revokedAt).not.toBeNull();
  });

  it('serialises 20 parallel refreshes with one token: one successor, no error, no second live token', async () => {
    const { deps } = withClock();
    const { refreshToken, sessionId } = await signIn(deps, await createUser(deps));
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => callerWith(deps).auth.refresh({ refreshToken })));
    const failures = results.filter((r) => r.status === 'rejected');
    expect(failures).toEqual([]);
    const issued = new Set(results.map((r) => (r.status === 'fulfilled' ? r.value.refreshToken : undefined)));
    expect(issued.size).toBe(1);
    const live = await deps.database.prisma.refreshToken.count({ where: { sessionId, rotatedAt: null } });
    expect(live).toBe(1);
    const session = await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } });
    expect(session.revokedAt).toBeNull();
  });

  it('with REFRESH_REUSE_GRACE_SECONDS=0, two parallel refreshes with one token are reuse: the session ends', async () => {
    const { deps } = withClock({ REFRESH_REUSE_GRACE_SECONDS: '0' });
    const { refreshToken, sessionId } = await signIn(deps, await createUser(deps));
    const results = await Promise.allSettled([0, 1].map(() => callerWith(deps).auth.refresh({ refreshToken })));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const session = await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } });
    expect(session.revokedAt).not.toBeNull();
  });

  it('serialises a race between two instances on the session row lock: one successor, no error', async () => {
    const clock = { now: new Date() };
    const instanceA = db.deps({ now: () => clock.now });
    const instanceB = db.deps({ now: () => clock.now });
    const { refreshToken, sessionId } = await signIn(instanceA, await createUser(instanceA));
    const calls = Array.from({ length: 10 }, (_, i) => callerWith(i % 2 === 0 ? instanceA : instanceB).auth.refresh({ refreshToken }));
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(new Set(results.map((r) => (r.status === 'fulfilled' ? r.value.refreshToken : undefined))).size).toBe(1);
    expect(await instanceA.database.prisma.refreshToken.count({ where: { sessionId, rotatedAt: null } })).toBe(1);
  });

  it('during a rolling key rotation, a grace-window retry on the other instance is never taken for reuse', async () => {
    const oldSet = await generateJwkSet('EdDSA');
    const newSet = { keys: [...(await generateJwkSet('EdDSA')).keys, ...oldSet.keys] };
    const clock = { now: new Date() };
    const onOld = db.deps({ keys: await importKeySet(JSON.stringify(oldSet)), now: () => clock.now });
    const onNew = db.deps({ keys: await importKeySet(JSON.stringify(newSet)), now: () => clock.now });

    // Rotated on an instance holding the old key: the new instance (holding both) recognises it.
    const a = await signIn(onOld, await createUser(onOld));
    const first = await callerWith(onOld).auth.refresh({ refreshToken: a.refreshToken });
    expect((await callerWith(onNew).auth.refresh({ refreshToken: a.refreshToken })).refreshToken).toBe(first.refreshToken);

    // Rotated with the new key: the old instance cannot re-derive it, refuses, and revokes nothing.
    const b = await signIn(onNew, await createUser(onNew));
    const second = await callerWith(onNew).auth.refresh({ refreshToken: b.refreshToken });
    expect(await codeOf(callerWith(onOld).auth.refresh({ refreshToken: b.refreshToken }))).toBe('UNAUTHORIZED');
    expect((await onOld.database.prisma.session.findUniqueOrThrow({ where: { id: b.sessionId } })).revokedAt).toBeNull();
    await expect(callerWith(onNew).auth.refresh({ refreshToken: second.refreshToken as string })).resolves.toBeDefined();
  });

  it('rejects an unknown, missing or malformed refresh token with UNAUTHORIZED (tests/modules/auth/refresh-failures.test.ts has every kind)', async () => {
    const { deps } = withClock();
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: 'A'.repeat(43) }))).toBe('UNAUTHORIZED');
    expect(await codeOf(callerWith(deps).auth.refresh({}))).toBe('UNAUTHORIZED');
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: 'short' }))).toBe('UNAUTHORIZED');
  });

  it('expires a session after the idle timeout, and slides it while it is used', async () => {
    const { deps, advance } = withClock({ SESSION_IDLE_TIMEOUT_SECONDS: '3600', SESSION_MAX_LIFETIME_SECONDS: '86400' });
    let { refreshToken } = await signIn(deps, await createUser(deps));
    for (let i = 0; i < 3; i++) {
      advance(3000);
      const next = await callerWith(deps).auth.refresh({ refreshToken });
      expect(next.refreshTokenExpiresAt.getTime()).toBe(deps.now().getTime() + 3600 * 1000);
      refreshToken = next.refreshToken as string;
    }
    advance(3601);
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken }))).toBe('UNAUTHORIZED');
  });

  it('ends a session at its absolute lifetime however active it is', async () => {
    const { deps, advance } = withClock({ SESSION_IDLE_TIMEOUT_SECONDS: '3600', SESSION_MAX_LIFETIME_SECONDS: '7200' });
    let { refreshToken } = await signIn(deps, await createUser(deps));
    advance(3500);
    refreshToken = (await callerWith(deps).auth.refresh({ refreshToken })).refreshToken as string;
    advance(3500);
    const last = await callerWith(deps).auth.refresh({ refreshToken });
    expect(last.refreshTokenExpiresAt.getTime()).toBeLessThan(deps.now().getTime() + 3600 * 1000);
    advance(3600);
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: last.refreshToken as string }))).toBe('UNAUTHORIZED');
  });

  it('refuses the refresh of a deactivated user and revokes that session', async () => {
    const { deps } = withClock();
    const user = await createUser(deps);
    const { refreshToken, sessionId } = await signIn(deps, user);
    await deps.database.prisma.user.update({ where: { id: user.id }, data: { active: false } });
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken }))).toBe('UNAUTHORIZED');
    expect((await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).revokedReason).toBe('account_deactivated');
  });
});

describe('sessions, logout and strict mode', () => {
  it('lists the active sessions with the current one marked, and revokes one of the own sessions', async () => {
    const { deps } = withClock();
    const user = await createUser(deps);
    const a = await signIn(deps, user);
    const b = await signIn(deps, user);
    const caller = callerWith(deps, { authorization: `Bearer ${a.accessToken}` });
    const sessions = await caller.auth.sessions.list();
    expect(sessions.map((s) => [s.id, s.current]).sort()).toEqual(
      [
        [a.sessionId, true],
        [b.sessionId, false],
      ].sort(),
    );
    expect(sessions[0]).toMatchObject({ userAgent: 'vitest', ip: '127.0.0.1' });
    await caller.auth.sessions.revoke({ sessionId: b.sessionId });
    expect((await caller.auth.sessions.list()).map((s) => s.id)).toEqual([a.sessionId]);
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: b.refreshToken }))).toBe('UNAUTHORIZED');
  });

  it("answers NOT_FOUND when revoking another user's session, and leaves it alive", async () => {
    const { deps } = withClock();
    const mallory = await signIn(deps, await createUser(deps));
    const victim = await signIn(deps, await createUser(deps));
    const caller = callerWith(deps, { authorization: `Bearer ${mallory.accessToken}` });
    expect(await codeOf(caller.auth.sessions.revoke({ sessionId: victim.sessionId }))).toBe('NOT_FOUND');
    await expect(callerWith(deps).auth.refresh({ refreshToken: victim.refreshToken })).resolves.toBeDefined();
  });

  it('logout revokes the current session only; logoutAll revokes every session and says how many', async () => {
    const { deps } = withClock();
    const user = await createUser(deps);
    const a = await signIn(deps, user);
    const b = await signIn(deps, user);
    const c = await signIn(deps, user);
    await callerWith(deps, { authorization: `Bearer ${a.accessToken}` }).auth.logout();
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: a.refreshToken }))).toBe('UNAUTHORIZED');
    await expect(callerWith(deps).auth.refresh({ refreshToken: b.refreshToken })).resolves.toBeDefined();
    const { count } = await callerWith(deps, { authorization: `Bearer ${c.accessToken}` }).auth.logoutAll();
    expect(count).toBe(2);
    expect(await deps.database.prisma.session.count({ where: { userId: user.id, revokedAt: null } })).toBe(0);
  });

  it('in strict mode refuses the access token of a logged-out session at once; otherwise it lives until it expires', async () => {
    const strict = withClock({ AUTH_STRICT_SESSIONS: 'true' }).deps;
    const lax = withClock().deps;
    for (const [deps, expected] of [
      [strict, 'UNAUTHORIZED'],
      [lax, 'OK'],
    ] as const) {
      const session = await signIn(deps, await createUser(deps));
      const caller = callerWith(deps, { authorization: `Bearer ${session.accessToken}` });
      await caller.auth.me();
      await caller.auth.logout();
      const outcome = await codeOf(caller.auth.me());
      expect(outcome).toBe(expected);
    }
  });

  it('in strict mode sees a revocation made by another instance once its cache entry expires', async () => {
    const clock = { now: new Date() };
    const config = { AUTH_STRICT_SESSIONS: 'true', AUTH_SESSION_CACHE_SECONDS: '5' };
    const instanceA = db.deps({ config, now: () => clock.now });
    const instanceB = db.deps({ config, now: () => clock.now });
    const session = await signIn(instanceA, await createUser(instanceA));
    const onA = callerWith(instanceA, { authorization: `Bearer ${session.accessToken}` });
    await onA.auth.me();
    await callerWith(instanceB, { authorization: `Bearer ${session.accessToken}` }).auth.logout();
    await expect(onA.auth.me()).resolves.toBeDefined();
    clock.now = new Date(clock.now.getTime() + 6_000);
    expect(await codeOf(onA.auth.me())).toBe('UNAUTHORIZED');
  });
});
