/**
 * Two-factor sign-in (TOTP, RFC 6238): setup, enable, the sign-in challenge, replay, the window,
 * the challenge's limits, the account backoff, recovery codes, disable and regenerate, over tRPC
 * in-process and over REST. Codes are computed from the secret the setup returned, at the server's
 * (movable) clock: nothing waits for a real 30-second step.
 */
import type { TRPCError } from '@trpc/server';
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import type { AppDeps } from '../../../server/src/deps.js';
import { createSecretBox } from '../../../server/src/modules/auth/two-factor/secret-box.js';
import { callerFor, callerWith } from '../../support/caller.js';
import { movableClock } from '../../support/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD, type TestUser } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';

const db = await useTestDatabase();
const clock = movableClock();
const KEY = Buffer.alloc(32, 7).toString('base64');
const deps = db.deps({ now: clock.now, config: { TWO_FACTOR_ENCRYPTION_KEYS: KEY } });

/** The code of the step `offsetSteps` away from the server's now. */
const codeOf = (base32: string, offsetSteps = 0) =>
  new TOTP({ secret: Secret.fromBase32(base32), digits: 6, period: 30, algorithm: 'SHA1' }).generate({
    timestamp: clock.now().getTime() + offsetSteps * 30_000,
  });

/** Moves the clock to the start of a fresh step, so that +-1 steps stay where a test expects them. */
const toNextStep = () => clock.advance(30 - ((clock.now().getTime() / 1000) % 30) + 0.5);

interface Enrolled {
  user: TestUser;
  secret: string;
  recoveryCodes: string[];
}

async function enrolled(d: AppDeps = deps): Promise<Enrolled> {
  const user = await createUser(d);
  const caller = await callerFor(d, user);
  const setup = await caller.auth.twoFactor.setup();
  toNextStep();
  const { recoveryCodes } = await caller.auth.twoFactor.enable({ code: codeOf(setup.secret) });
  toNextStep();
  return { user, secret: setup.secret, recoveryCodes };
}

async function challengeOf(user: TestUser, d: AppDeps = deps): Promise<string> {
  const result = await callerWith(d, { ip: '10.9.0.1' }).auth.login({ email: user.email, password: KNOWN_PASSWORD });
  if (!('challenge' in result)) throw new Error('expected a two-factor challenge');
  return result.challenge;
}

const reasonOf = (error: TRPCError) => (error.cause as { reason?: string } | undefined)?.reason;

describe('auth.twoFactor.setup and enable', () => {
  it('returns a base32 secret, an otpauth URI naming the issuer and the account, and an SVG QR code; the secret is sealed at rest', async () => {
    const user = await createUser(deps, { email: 'setup-2fa@example.test' });
    const caller = await callerFor(deps, user);
    const setup = await caller.auth.twoFactor.setup();
    expect(setup.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(setup.uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Keel:setup-2fa@example.test');
    expect(uri.searchParams.get('secret')).toBe(setup.secret);
    expect(uri.searchParams.get('issuer')).toBe('Keel');
    expect(setup.qrCodeSvg).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(Buffer.from(setup.qrCodeSvg.split(',')[1] as string, 'base64').toString()).toMatch(/^<svg[^>]*>.*<path/s);

    const row = await deps.database.prisma.twoFactor.findUniqueOrThrow({ where: { userId: user.id } });
    expect(row.enabledAt).toBeNull();
    expect(row.secretCiphertext).toMatch(/^v1\./);
    expect(row.secretCiphertext).not.toContain(setup.secret);
    // Opens with the configured key for its owner only (the user id is bound as associated data).
    const box = createSecretBox([Buffer.from(KEY, 'base64')]);
    expect(Secret.fromBase32(setup.secret).base32).toBe(
      new Secret({ buffer: new Uint8Array(box.open(row.secretCiphertext, user.id).plain).buffer }).base32,
    );
    expect(() => box.open(row.secretCiphertext, '00000000-0000-4000-8000-000000000000')).toThrow();
    expect(() => createSecretBox([Buffer.alloc(32, 9)]).open(row.secretCiphertext, user.id)).toThrow(/key this server does not hold/);
    // Not on yet: sign-in still answers tokens.
    const login = await callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD });
    expect('accessToken' in login).toBe(true);
  });

  it('enables only with a right code, then returns 10 distinct recovery codes stored only as hashes, and mails the owner', async () => {
    const user = await createUser(deps);
    const caller = await callerFor(deps, user);
    await expect(caller.auth.twoFactor.enable({ code: '123456' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const setup = await caller.auth.twoFactor.setup();
    const wrong = await trpcErrorOf(caller.auth.twoFactor.enable({ code: codeOf(setup.secret, 3) }));
    expect(wrong.code).toBe('BAD_REQUEST');
    expect(reasonOf(wrong)).toBe('INVALID_TWO_FACTOR_CODE');
    expect((await caller.auth.twoFactor.status()).enabled).toBe(false);

    const { recoveryCodes } = await caller.auth.twoFactor.enable({ code: codeOf(setup.secret) });
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const code of recoveryCodes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    const stored = await deps.database.prisma.recoveryCode.findMany({ where: { userId: user.id } });
    expect(stored).toHaveLength(10);
    for (const row of stored) {
      expect(row.codeHash).toMatch(/^[0-9a-f]{64}$/);
      expect(recoveryCodes.some((c) => row.codeHash.includes(c.replace(/-/g, '')))).toBe(false);
    }
    expect(await caller.auth.twoFactor.status()).toMatchObject({ enabled: true, recoveryCodesLeft: 10 });
    expect(
      await deps.database.prisma.mailOutbox.count({
        where: { recipient: user.email, subject: 'Two-factor sign-in changed on your account' },
      }),
    ).toBe(1);
    // A second setup while on would silently swap the authenticator: refused.
    await expect(caller.auth.twoFactor.setup()).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('sign-in with two factors', () => {
  it('answers a challenge instead of tokens, and starts no session until a code completes it', async () => {
    const { user, secret } = await enrolled();
    const result = await callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD });
    expect(result).toMatchObject({ status: 'twoFactorRequired', methods: ['totp', 'recovery_code'] });
    expect(result).not.toHaveProperty('accessToken');
    if (!('challenge' in result)) throw new Error('expected a challenge');
    expect(result.challengeExpiresAt.getTime() - clock.now().getTime()).toBeLessThanOrEqual(5 * 60_000);
    const sessionsBefore = await deps.database.prisma.session.count({ where: { userId: user.id } });

    const signed = await callerWith(deps).auth.twoFactor.verify({ challenge: result.challenge, code: codeOf(secret) });
    expect(signed.user.id).toBe(user.id);
    expect(signed.accessToken.split('.')).toHaveLength(3);
    const session = await deps.database.prisma.session.findFirstOrThrow({ where: { userId: user.id }, orderBy: { createdAt: 'desc' } });
    expect(session.factors).toEqual(['password', 'totp']);
    expect(await deps.database.prisma.session.count({ where: { userId: user.id } })).toBe(sessionsBefore + 1);
    // The challenge was single-use.
    const again = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge: result.challenge, code: codeOf(secret, 1) }));
    expect(again.code).toBe('UNAUTHORIZED');
    expect(reasonOf(again)).toBe('TWO_FACTOR_CHALLENGE_INVALID');
  });

  it('refuses a code replayed inside its step, and a code older than the last one used', async () => {
    const { user, secret } = await enrolled();
    const code = codeOf(secret);
    await callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code });
    const replay = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code }));
    expect(reasonOf(replay)).toBe('INVALID_TWO_FACTOR_CODE');
    const older = await trpcErrorOf(
      callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code: codeOf(secret, -1) }),
    );
    expect(reasonOf(older)).toBe('INVALID_TWO_FACTOR_CODE');
    // The next step's code is new: accepted.
    await expect(
      callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code: codeOf(secret, 1) }),
    ).resolves.toBeDefined();
  });

  it('lets exactly one of two concurrent uses of one code through', async () => {
    const { user, secret } = await enrolled();
    const code = codeOf(secret);
    const [a, b] = [await challengeOf(user), await challengeOf(user)];
    const outcomes = await Promise.allSettled([
      callerWith(deps).auth.twoFactor.verify({ challenge: a, code }),
      callerWith(deps).auth.twoFactor.verify({ challenge: b, code }),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('accepts a code one step early or late, and refuses two steps away', async () => {
    const { user, secret } = await enrolled();
    const twoAway = await trpcErrorOf(
      callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code: codeOf(secret, 2) }),
    );
    expect(reasonOf(twoAway)).toBe('INVALID_TWO_FACTOR_CODE');
    // Enabling used the previous step's code: two steps on, the previous step is unused.
    toNextStep();
    const early = await callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code: codeOf(secret, -1) });
    expect(early.user.id).toBe(user.id);
    toNextStep();
    toNextStep();
    const late = await callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), code: codeOf(secret, 1) });
    expect(late.user.id).toBe(user.id);
  });

  it('kills the challenge after 5 wrong codes: a right code then fails too', async () => {
    const { user, secret } = await enrolled();
    const challenge = await challengeOf(user);
    for (let i = 1; i <= 4; i++) {
      const error = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge, code: '000000' }));
      expect({ i, reason: reasonOf(error) }).toEqual({ i, reason: 'INVALID_TWO_FACTOR_CODE' });
    }
    const fifth = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge, code: '000000' }));
    expect(fifth.code).toBe('UNAUTHORIZED');
    expect(reasonOf(fifth)).toBe('TWO_FACTOR_CHALLENGE_INVALID');
    const right = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge, code: codeOf(secret) }));
    expect(reasonOf(right)).toBe('TWO_FACTOR_CHALLENGE_INVALID');
  });

  it('lets the challenge die after 5 minutes', async () => {
    const { user, secret } = await enrolled();
    const challenge = await challengeOf(user);
    clock.advance(5 * 60 + 1);
    const error = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge, code: codeOf(secret) }));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(reasonOf(error)).toBe('TWO_FACTOR_CHALLENGE_INVALID');
  });

  it('counts wrong codes in the account backoff of passwords: past the free failures, TOO_MANY_REQUESTS with a delay', async () => {
    const limited = db.deps({
      now: clock.now,
      config: { TWO_FACTOR_ENCRYPTION_KEYS: KEY, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_LOGIN_FREE_FAILURES: '2' },
    });
    const { user } = await enrolled(limited);
    const challenge = await challengeOf(user, limited);
    for (let i = 0; i < 3; i++) await trpcErrorOf(callerWith(limited).auth.twoFactor.verify({ challenge, code: '000000' }));
    const blocked = await trpcErrorOf(callerWith(limited).auth.twoFactor.verify({ challenge, code: '000000' }));
    expect(blocked.code).toBe('TOO_MANY_REQUESTS');
    expect((blocked.cause as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThan(0);
  });

  it('takes each recovery code once, and records the factor on the session', async () => {
    const { user, recoveryCodes } = await enrolled();
    const code = (recoveryCodes[0] as string).toUpperCase().replace(/-/g, ' ');
    const signed = await callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), recoveryCode: code });
    const session = await deps.database.prisma.session.findFirstOrThrow({ where: { userId: user.id }, orderBy: { createdAt: 'desc' } });
    expect(session.id).toBeDefined();
    expect(session.factors).toEqual(['password', 'recovery_code']);
    const me = callerWith(deps, { authorization: `Bearer ${signed.accessToken}` });
    expect(await me.auth.twoFactor.status()).toMatchObject({ enabled: true, recoveryCodesLeft: 9 });
    const page = await me.auth.sessions.list({});
    expect(page.items.find((s) => s.current)?.factors).toEqual(['password', 'recovery_code']);
    const reused = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), recoveryCode: code }));
    expect(reused.code).toBe('BAD_REQUEST');
    expect(reused.cause).toMatchObject({ fieldErrors: { recoveryCode: ['is not an unused recovery code'] } });
  });
});

describe('auth.twoFactor.disable and regenerateRecoveryCodes', () => {
  it('disable needs the password and a current code; afterwards sign-in answers tokens again', async () => {
    const { user, secret } = await enrolled();
    const caller = await callerFor(deps, user);
    const badPassword = await trpcErrorOf(caller.auth.twoFactor.disable({ password: 'not the password', code: codeOf(secret) }));
    expect(badPassword.cause).toMatchObject({ fieldErrors: { password: ['is incorrect'] } });
    const badCode = await trpcErrorOf(caller.auth.twoFactor.disable({ password: KNOWN_PASSWORD, code: codeOf(secret, 5) }));
    expect(reasonOf(badCode)).toBe('INVALID_TWO_FACTOR_CODE');
    await caller.auth.twoFactor.disable({ password: KNOWN_PASSWORD, code: codeOf(secret) });
    expect(await caller.auth.twoFactor.status()).toEqual({ enabled: false, enabledAt: null, recoveryCodesLeft: 0 });
    expect(await deps.database.prisma.recoveryCode.count({ where: { userId: user.id } })).toBe(0);
    const login = await callerWith(deps).auth.login({ email: user.email, password: KNOWN_PASSWORD });
    expect('accessToken' in login).toBe(true);
  });

  it('regenerate replaces every recovery code: the old ones stop working', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const caller = await callerFor(deps, user);
    const fresh = await caller.auth.twoFactor.regenerateRecoveryCodes({ code: codeOf(secret) });
    expect(fresh.recoveryCodes).toHaveLength(10);
    expect(fresh.recoveryCodes.some((c) => recoveryCodes.includes(c))).toBe(false);
    const old = await trpcErrorOf(
      callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), recoveryCode: recoveryCodes[0] as string }),
    );
    expect(old.code).toBe('BAD_REQUEST');
    await expect(
      callerWith(deps).auth.twoFactor.verify({ challenge: await challengeOf(user), recoveryCode: fresh.recoveryCodes[0] as string }),
    ).resolves.toBeDefined();
  });
});

describe('key rotation and password changes', () => {
  it('opens a secret sealed under an older key and re-seals it under the first key on use', async () => {
    const { user, secret } = await enrolled();
    const before = (await deps.database.prisma.twoFactor.findUniqueOrThrow({ where: { userId: user.id } })).secretCiphertext;
    const NEW_KEY = Buffer.alloc(32, 8).toString('base64');
    const rotated = db.deps({ now: clock.now, config: { TWO_FACTOR_ENCRYPTION_KEYS: `${NEW_KEY},${KEY}` } });
    await callerWith(rotated).auth.twoFactor.verify({ challenge: await challengeOf(user, rotated), code: codeOf(secret) });
    const after = (await deps.database.prisma.twoFactor.findUniqueOrThrow({ where: { userId: user.id } })).secretCiphertext;
    expect(after.split('.')[1]).not.toBe(before.split('.')[1]);
    expect(createSecretBox([Buffer.from(NEW_KEY, 'base64')]).open(after, user.id).stale).toBe(false);
    // The old key alone no longer opens it.
    expect(() => createSecretBox([Buffer.from(KEY, 'base64')]).open(after, user.id)).toThrow();
  });

  it('ends a pending challenge when the password changes', async () => {
    const { user, secret } = await enrolled();
    const challenge = await challengeOf(user);
    clock.advance(1);
    await deps.database.prisma.user.update({ where: { id: user.id }, data: { passwordChangedAt: clock.now() } });
    const error = await trpcErrorOf(callerWith(deps).auth.twoFactor.verify({ challenge, code: codeOf(secret) }));
    expect(reasonOf(error)).toBe('TWO_FACTOR_CHALLENGE_INVALID');
  });
});

describe('over REST', () => {
  it('POST /api/auth/login answers the challenge and POST /api/auth/two-factor/verify the tokens', async () => {
    const server = await startTestServer(deps);
    try {
      const { user, secret } = await enrolled();
      const post = async (path: string, body: unknown) => {
        const response = await fetch(`${server.url}/api${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      const login = await post('/auth/login', { email: user.email, password: KNOWN_PASSWORD });
      expect(login.status).toBe(200);
      expect(login.json).toMatchObject({ status: 'twoFactorRequired', challenge: expect.any(String) });
      expect(login.json).not.toHaveProperty('accessToken');
      const wrong = await post('/auth/two-factor/verify', { challenge: login.json.challenge, code: '000000' });
      expect(wrong.status).toBe(400);
      expect(wrong.json).toMatchObject({ reason: 'INVALID_TWO_FACTOR_CODE' });
      const verified = await post('/auth/two-factor/verify', { challenge: login.json.challenge, code: codeOf(secret) });
      expect(verified.status).toBe(200);
      expect(verified.json).toMatchObject({ user: { id: user.id }, accessToken: expect.any(String) });
    } finally {
      await server.close();
    }
  });
});
