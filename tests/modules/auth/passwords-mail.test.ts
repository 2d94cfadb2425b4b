import { describe, expect, it } from 'vitest';
import { callerWith, signIn } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startMailCatcher, tokenFromMail } from '../../support/mail.js';

const db = await useTestDatabase();
const mail = await startMailCatcher();
const clock = { now: new Date() };
const deps = db.deps({ config: { MAIL_TRANSPORT: 'smtp', SMTP_URL: mail.url, APP_URL: 'https://app.example.test' }, now: () => clock.now });
const advance = (seconds: number) => {
  clock.now = new Date(clock.now.getTime() + seconds * 1000);
};
const anonymous = () => callerWith(deps, { ip: '192.0.2.10' });

/** Lets the post-response work finish and the outbox reach the SMTP server. */
async function deliver(): Promise<void> {
  await deps.background.drain();
  await deps.mailer.drain();
}

async function requestReset(email: string): Promise<string> {
  await anonymous().auth.requestPasswordReset({ email });
  await deliver();
  const received = await mail.waitFor((m) => m.to.includes(email) && m.subject === 'Reset your password' && !used.has(m));
  used.add(received);
  return tokenFromMail(received);
}
const used = new Set<object>();

describe('auth.changePassword', () => {
  it('changes the password, keeps the current session and revokes every other one', async () => {
    const user = await createUser(deps);
    const current = await signIn(deps, user);
    const other = await signIn(deps, user);
    await callerWith(deps, { authorization: `Bearer ${current.accessToken}` }).auth.changePassword({
      currentPassword: KNOWN_PASSWORD,
      newPassword: 'a brand new passphrase',
    });
    await expect(anonymous().auth.login({ email: user.email, password: 'a brand new passphrase' })).resolves.toBeDefined();
    await expect(callerWith(deps).auth.refresh({ refreshToken: current.refreshToken })).resolves.toBeDefined();
    expect((await trpcErrorOf(callerWith(deps).auth.refresh({ refreshToken: other.refreshToken }))).code).toBe('UNAUTHORIZED');
  });

  it('refuses a wrong current password with a field error and changes nothing', async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    const error = await trpcErrorOf(
      callerWith(deps, { authorization: `Bearer ${accessToken}` }).auth.changePassword({
        currentPassword: 'wrong one',
        newPassword: 'a brand new passphrase',
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.cause).toMatchObject({ fieldErrors: { currentPassword: ['is incorrect'] } });
    await expect(anonymous().auth.login({ email: user.email, password: KNOWN_PASSWORD })).resolves.toBeDefined();
  });
});

describe('mail to the owner when the password changes', () => {
  const changedMails = (email: string) =>
    deps.database.prisma.mailOutbox.count({ where: { recipient: email, subject: 'Your password was changed' } });

  it('mails the owner after a password change, and not after a refused one', async () => {
    const user = await createUser(deps);
    const signedIn = callerWith(deps, { authorization: `Bearer ${(await signIn(deps, user)).accessToken}` });
    await trpcErrorOf(signedIn.auth.changePassword({ currentPassword: 'not the password', newPassword: 'a brand new passphrase' }));
    await trpcErrorOf(signedIn.auth.changePassword({ currentPassword: KNOWN_PASSWORD, newPassword: 'password1' }));
    expect(await changedMails(user.email)).toBe(0);

    await signedIn.auth.changePassword({ currentPassword: KNOWN_PASSWORD, newPassword: 'a brand new passphrase' });
    expect(await changedMails(user.email)).toBe(1);
    await deps.mailer.drain();
    const received = await mail.waitFor((m) => m.to.includes(user.email) && m.subject === 'Your password was changed');
    expect(received.text).toMatch(/was changed/);
    expect(received.text).toContain('sign-in page:\nhttps://app.example.test\n');
    expect(received.text).not.toContain('a brand new passphrase');
  });

  it('mails the owner after a reset with a mailed link', async () => {
    const user = await createUser(deps);
    const token = await requestReset(user.email);
    expect(await changedMails(user.email)).toBe(0);
    await anonymous().auth.resetPassword({ token, newPassword: 'reset to something new' });
    expect(await changedMails(user.email)).toBe(1);
    await deps.mailer.drain();
    const received = await mail.waitFor((m) => m.to.includes(user.email) && m.subject === 'Your password was changed');
    expect(received.text).toMatch(/was reset/);
  });
});

describe('password reset', () => {
  it('answers exactly the same for a known and an unknown email, and mails only the known one', async () => {
    const user = await createUser(deps);
    const known = await anonymous().auth.requestPasswordReset({ email: user.email });
    const unknown = await anonymous().auth.requestPasswordReset({ email: 'nobody-at-all@example.test' });
    expect(known).toEqual(unknown);
    expect(known).toEqual({ ok: true });
    await deliver();
    await mail.waitFor((m) => m.to.includes(user.email));
    expect(mail.received.some((m) => m.to.includes('nobody-at-all@example.test'))).toBe(false);
  });

  it('mails a link to APP_URL; the token is stored only as a hash and resets the password once', async () => {
    const user = await createUser(deps);
    const session = await signIn(deps, user);
    const token = await requestReset(user.email);
    const rows = await deps.database.prisma.userToken.findMany({ where: { userId: user.id, kind: 'PASSWORD_RESET' } });
    expect(rows.map((r) => r.tokenHash)).not.toContain(token);
    expect(rows[0]?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    const sent = await deps.database.prisma.mailOutbox.findFirstOrThrow({
      where: { recipient: user.email, subject: 'Reset your password' },
    });
    expect(sent.body).toBe('');

    await anonymous().auth.resetPassword({ token, newPassword: 'reset to something new' });
    await expect(anonymous().auth.login({ email: user.email, password: 'reset to something new' })).resolves.toBeDefined();
    expect((await trpcErrorOf(callerWith(deps).auth.refresh({ refreshToken: session.refreshToken }))).code).toBe('UNAUTHORIZED');
    const again = await trpcErrorOf(anonymous().auth.resetPassword({ token, newPassword: 'and once more again' }));
    expect(again.code).toBe('BAD_REQUEST');
    expect(again.cause).toMatchObject({ fieldErrors: { token: [expect.stringMatching(/invalid or has expired/)] } });
  });

  it('kills a reset token after 30 minutes', async () => {
    const user = await createUser(deps);
    const token = await requestReset(user.email);
    advance(30 * 60 + 1);
    expect((await trpcErrorOf(anonymous().auth.resetPassword({ token, newPassword: 'too late for this' }))).code).toBe('BAD_REQUEST');
  });

  it('kills a reset token once a newer one is issued', async () => {
    const user = await createUser(deps);
    const older = await requestReset(user.email);
    const newer = await requestReset(user.email);
    expect((await trpcErrorOf(anonymous().auth.resetPassword({ token: older, newPassword: 'the older link fails' }))).code).toBe(
      'BAD_REQUEST',
    );
    await expect(anonymous().auth.resetPassword({ token: newer, newPassword: 'the newer link works' })).resolves.toEqual({ ok: true });
  });

  it('kills a reset token once the password changes', async () => {
    const user = await createUser(deps);
    const token = await requestReset(user.email);
    const { accessToken } = await signIn(deps, user);
    await callerWith(deps, { authorization: `Bearer ${accessToken}` }).auth.changePassword({
      currentPassword: KNOWN_PASSWORD,
      newPassword: 'changed meanwhile ok',
    });
    expect((await trpcErrorOf(anonymous().auth.resetPassword({ token, newPassword: 'should not apply' }))).code).toBe('BAD_REQUEST');
  });

  it('keeps the token usable when the new password is refused', async () => {
    const user = await createUser(deps);
    const token = await requestReset(user.email);
    const refused = await trpcErrorOf(anonymous().auth.resetPassword({ token, newPassword: 'password1' }));
    expect(refused.cause).toMatchObject({ fieldErrors: { newPassword: [expect.stringMatching(/too common/)] } });
    await expect(anonymous().auth.resetPassword({ token, newPassword: 'an acceptable one' })).resolves.toEqual({ ok: true });
  });
});

describe('email verification', () => {
  it('mails a verification link at registration that marks the email verified, once', async () => {
    await anonymous().auth.register({ email: 'verify-me@example.test', password: 'a sturdy passphrase' });
    await deliver();
    const received = await mail.waitFor((m) => m.to.includes('verify-me@example.test') && m.subject === 'Confirm your email address');
    expect(received.text).toContain('https://app.example.test/verify-email?token=');
    const token = tokenFromMail(received);
    await anonymous().auth.verifyEmail({ token });
    const row = await deps.database.prisma.user.findUniqueOrThrow({ where: { email: 'verify-me@example.test' } });
    expect(row.emailVerified).toBe(true);
    expect((await trpcErrorOf(anonymous().auth.verifyEmail({ token }))).code).toBe('BAD_REQUEST');
  });

  it('issues a new verification link on request, killing the previous one', async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    const caller = callerWith(deps, { authorization: `Bearer ${accessToken}`, ip: '192.0.2.11' });
    await caller.auth.requestEmailVerification();
    await deliver();
    const first = tokenFromMail(await mail.waitFor((m) => m.to.includes(user.email)));
    await caller.auth.requestEmailVerification();
    await deliver();
    const second = tokenFromMail(await mail.waitFor((m) => m.to.includes(user.email) && tokenFromMail(m) !== first));
    expect((await trpcErrorOf(anonymous().auth.verifyEmail({ token: first }))).code).toBe('BAD_REQUEST');
    await expect(anonymous().auth.verifyEmail({ token: second })).resolves.toEqual({ ok: true });
    await expect(caller.auth.requestEmailVerification()).resolves.toEqual({ ok: true });
  });
});
