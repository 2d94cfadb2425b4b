/**
 * REQUIRE_VERIFIED_EMAIL: with it on, signed-in calls outside `auth.*` answer FORBIDDEN with the
 * reason EMAIL_NOT_VERIFIED until the email is verified (through the real mailed link); with it
 * off (the default), nothing changes.
 */
import { describe, expect, it } from 'vitest';
import { callerWith } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { startTestServer } from '../../support/http.js';

const db = await useTestDatabase();
const strict = db.deps({ config: { REQUIRE_VERIFIED_EMAIL: 'true' } });
const relaxed = db.deps();

/** The token of the newest verification mail to `email`, as the outbox holds it. */
async function verificationToken(email: string): Promise<string> {
  const mail = await strict.database.prisma.mailOutbox.findFirstOrThrow({
    where: { recipient: email, subject: 'Confirm your email address' },
    orderBy: { createdAt: 'desc' },
  });
  const token = /[?&]token=([A-Za-z0-9_-]{43})/.exec(mail.body)?.[1];
  if (!token) throw new Error('no token in the verification mail');
  return token;
}

describe('REQUIRE_VERIFIED_EMAIL=true', () => {
  it('answers FORBIDDEN with reason EMAIL_NOT_VERIFIED outside auth.*, lets auth.* through, and opens up once the email is verified', async () => {
    const email = `unverified-${Date.now()}@example.test`;
    const registered = await callerWith(strict).auth.register({ email, password: 'a sturdy passphrase' });
    const caller = callerWith(strict, { authorization: `Bearer ${registered.accessToken}` });
    const refused = await trpcErrorOf(caller.projects.list({}));
    expect(refused.code).toBe('FORBIDDEN');
    expect(refused.cause).toMatchObject({ reason: 'EMAIL_NOT_VERIFIED' });
    // Nothing was written by a refused mutation.
    await trpcErrorOf(caller.projects.create({ name: 'Blocked' }));
    expect(await strict.database.prisma.project.count({ where: { ownerId: registered.user.id } })).toBe(0);
    // auth.* stays open: who am I, my sessions, a new verification mail.
    expect((await caller.auth.me()).emailVerified).toBe(false);
    await expect(caller.auth.sessions.list()).resolves.toBeDefined();
    await expect(caller.auth.requestEmailVerification()).resolves.toEqual({ ok: true });

    await callerWith(strict).auth.verifyEmail({ token: await verificationToken(email) });
    // The same access token works now: the rule reads the account, not a claim of the token.
    await expect(caller.projects.create({ name: 'Allowed' })).resolves.toMatchObject({ name: 'Allowed' });
  });

  it('answers 403 with the reason over REST', async () => {
    const server = await startTestServer(strict);
    const email = `unverified-rest-${Date.now()}@example.test`;
    const registered = await callerWith(strict).auth.register({ email, password: 'a sturdy passphrase' });
    const response = await fetch(`${server.url}/api/projects`, { headers: { authorization: `Bearer ${registered.accessToken}` } });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'FORBIDDEN', reason: 'EMAIL_NOT_VERIFIED' });
    const me = await fetch(`${server.url}/api/auth/me`, { headers: { authorization: `Bearer ${registered.accessToken}` } });
    expect(me.status).toBe(200);
  });
});

describe('REQUIRE_VERIFIED_EMAIL unset (default)', () => {
  it('lets an unverified account use every procedure', async () => {
    expect(relaxed.config.accounts.requireVerifiedEmail).toBe(false);
    const registered = await callerWith(relaxed).auth.register({
      email: `relaxed-${Date.now()}@example.test`,
      password: 'a sturdy passphrase',
    });
    const caller = callerWith(relaxed, { authorization: `Bearer ${registered.accessToken}` });
    await expect(caller.projects.create({ name: 'Fine' })).resolves.toMatchObject({ name: 'Fine' });
  });
});
