import { describe, expect, it, vi } from 'vitest';
import * as passwords from '../../../server/src/lib/password.js';
import { callerFor, callerWith } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();

describe('auth.register', () => {
  it('creates a USER with a trimmed, lower-cased email and returns tokens', async () => {
    const result = await callerWith(deps).auth.register({
      email: '  New.Person@Example.TEST ',
      password: 'a sturdy passphrase',
      name: 'New',
    });
    expect(result.user).toMatchObject({ email: 'new.person@example.test', role: 'USER', emailVerified: false, name: 'New' });
    expect(result.accessToken.split('.')).toHaveLength(3);
    expect(result.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(result.accessTokenExpiresAt.getTime()).toBeGreaterThan(Date.now());
    const row = await deps.database.prisma.user.findUniqueOrThrow({ where: { id: result.user.id } });
    expect(row.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it('rejects a second account for the same email, whatever its case, with CONFLICT naming the field', async () => {
    await callerWith(deps).auth.register({ email: 'twice@example.test', password: 'a sturdy passphrase' });
    const error = await trpcErrorOf(callerWith(deps).auth.register({ email: 'TWICE@example.test', password: 'another passphrase' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.cause).toMatchObject({ fieldErrors: { email: ['is already registered'] } });
  });

  it('rejects short, long, email-equal and common passwords with field errors', async () => {
    const caller = callerWith(deps);
    for (const password of ['short', 'x'.repeat(129)]) {
      const error = await trpcErrorOf(caller.auth.register({ email: 'pw@example.test', password }));
      expect(error.code).toBe('BAD_REQUEST');
    }
    const sameAsEmail = await trpcErrorOf(caller.auth.register({ email: 'same@example.test', password: 'SAME@example.test' }));
    expect(sameAsEmail.cause).toMatchObject({ fieldErrors: { password: ['must not be your email address'] } });
    const common = await trpcErrorOf(caller.auth.register({ email: 'common@example.test', password: 'password123' }));
    expect(common.cause).toMatchObject({ fieldErrors: { password: [expect.stringMatching(/too common/)] } });
    expect(
      await deps.database.prisma.user.count({ where: { email: { in: ['pw@example.test', 'same@example.test', 'common@example.test'] } } }),
    ).toBe(0);
  });

  it('rejects keyboard walks and other easily guessed patterns with a field error that says why, as it accepts passphrases', async () => {
    const caller = callerWith(deps);
    const cases = {
      qwertyuiopas: /too easy to guess \(it is close to a commonly used password\)/,
      mnbvcxzlkjhg: /too easy to guess \(.+\)/,
      abcdefgh12345: /too easy to guess \(it is a sequence such as abc or 123\)/,
      'walks.keel@example.test1': /too easy to guess/,
    };
    for (const [password, message] of Object.entries(cases)) {
      const error = await trpcErrorOf(caller.auth.register({ email: 'walks.keel@example.test', password }));
      expect({ password, code: error.code }).toEqual({ password, code: 'BAD_REQUEST' });
      expect(error.cause).toMatchObject({ fieldErrors: { password: [expect.stringMatching(message)] } });
    }
    expect(await deps.database.prisma.user.count({ where: { email: 'walks.keel@example.test' } })).toBe(0);
    // No composition rules: lower-case words with spaces are fine when they are hard to guess.
    await expect(caller.auth.register({ email: 'walks.keel@example.test', password: 'lantern orbit pickle drum' })).resolves.toBeDefined();
  });

  it('never lets a caller choose a role: unknown keys are rejected', async () => {
    const input = { email: 'sneaky@example.test', password: 'a sturdy passphrase', role: 'ADMIN' } as unknown as Parameters<
      ReturnType<typeof callerWith>['auth']['register']
    >[0];
    const error = await trpcErrorOf(callerWith(deps).auth.register(input));
    expect(error.code).toBe('BAD_REQUEST');
    expect(await deps.database.prisma.user.count({ where: { email: 'sneaky@example.test' } })).toBe(0);
  });
});

describe('auth.login', () => {
  it('signs in with the right password and returns the user and a new session', async () => {
    const user = await createUser(deps, { email: 'login-ok@example.test' });
    const result = await callerWith(deps, { ip: '10.0.0.1', userAgent: 'test-agent' }).auth.login({
      email: 'Login-OK@example.test',
      password: KNOWN_PASSWORD,
    });
    expect('user' in result && result.user.id).toBe(user.id);
    const sessions = await deps.database.prisma.session.findMany({ where: { userId: user.id } });
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ ip: '10.0.0.1', userAgent: 'test-agent', revokedAt: null });
  });

  it('answers a wrong password and an unknown email with the same UNAUTHORIZED message', async () => {
    await createUser(deps, { email: 'login-wrong@example.test' });
    const wrong = await trpcErrorOf(callerWith(deps).auth.login({ email: 'login-wrong@example.test', password: 'not the password' }));
    const unknown = await trpcErrorOf(callerWith(deps).auth.login({ email: 'nobody-here@example.test', password: 'not the password' }));
    expect(wrong.code).toBe('UNAUTHORIZED');
    expect(unknown.code).toBe('UNAUTHORIZED');
    expect(wrong.message).toBe(unknown.message);
  });

  it('verifies against a dummy argon2id hash when the email is unknown, so both cases cost the same', async () => {
    const verify = vi.spyOn(passwords, 'verifyPassword');
    await trpcErrorOf(callerWith(deps).auth.login({ email: 'ghost@example.test', password: 'whatever-it-is' }));
    expect(verify).toHaveBeenCalledTimes(1);
    expect(verify.mock.calls[0]?.[0]).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    verify.mockRestore();
  });

  it('refuses a deactivated account with FORBIDDEN, but only after a correct password', async () => {
    await createUser(deps, { email: 'inactive@example.test', active: false });
    const wrong = await trpcErrorOf(callerWith(deps).auth.login({ email: 'inactive@example.test', password: 'not the password' }));
    expect(wrong.code).toBe('UNAUTHORIZED');
    const right = await trpcErrorOf(callerWith(deps).auth.login({ email: 'inactive@example.test', password: KNOWN_PASSWORD }));
    expect(right.code).toBe('FORBIDDEN');
  });

  it('rehashes a stored hash made with other parameters on a successful login', async () => {
    const user = await createUser(deps, { email: 'rehash@example.test' });
    const stronger = db.deps({ config: { ARGON2_ITERATIONS: '3' } });
    await callerWith(stronger).auth.login({ email: 'rehash@example.test', password: KNOWN_PASSWORD });
    const row = await deps.database.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(row.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=3,p=1\$/);
  });
});

describe('auth.me and procedure-level auth', () => {
  it('returns the signed-in user', async () => {
    const user = await createUser(deps, { email: 'me@example.test' });
    const me = await (await callerFor(deps, user)).auth.me();
    expect(me).toMatchObject({ id: user.id, email: 'me@example.test', role: 'USER' });
  });

  it('answers UNAUTHORIZED without a token, with a malformed header, and with a garbage token, each in its own words', async () => {
    const malformed = 'Malformed Authorization header: send `Bearer <access token>`.';
    const cases: [string | undefined, string][] = [
      [undefined, 'Missing access token.'],
      ['', 'Missing access token.'],
      ['Basic abc', malformed],
      ['Bearer not-a-jwt', malformed],
      [`Bearer ${'a'.repeat(5_000)}`, malformed],
      ['Bearer a.b.c', 'Invalid or expired access token.'],
    ];
    for (const [authorization, message] of cases) {
      const error = await trpcErrorOf(callerWith(deps, { authorization }).auth.me());
      expect(error.code, authorization?.slice(0, 20)).toBe('UNAUTHORIZED');
      expect(error.message, authorization?.slice(0, 20)).toBe(message);
    }
  });
});
