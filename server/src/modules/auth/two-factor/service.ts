/**
 * Two-factor sign-in with TOTP (RFC 6238): setup, enable (with 10 recovery codes), disable,
 * regenerate the codes, and the second step of a sign-in. Every code check is counted by the
 * account's sign-in backoff (rate-limits.ts `beginPasswordAttempt`), and an accepted code moves
 * the account's last used step forward in one conditional UPDATE: a code works once, even when
 * two requests present it at the same instant.
 */
import type { z } from 'zod';
import type { Config } from '../../../config.js';
import type { Db, PrismaClient } from '../../../db/client.js';
import { AppError } from '../../../lib/errors.js';
import { verifyPassword } from '../../../lib/password.js';
import { enqueueMail } from '../../../mail/outbox.js';
import type { AccessTokens } from '../access-tokens.js';
import { limited, withPasswordWork } from '../account-rules.js';
import { audit } from '../audit.js';
import { hashToken } from '../opaque-tokens.js';
import type { RateLimits } from '../rate-limits.js';
import type { AuthResult } from '../schemas.js';
import { authResult } from '../session-lifecycle.js';
import { createSession, type SessionPolicy } from '../sessions.js';
import type { AuthUser, ClientInfo } from '../types.js';
import { CHALLENGE_MAX_FAILURES, countChallengeFailure } from './challenges.js';
import { hashRecoveryCode, newRecoveryCode, RECOVERY_CODE_COUNT } from './recovery-codes.js';
import type { disableInput, enableInput, Factor, regenerateInput, verifyInput } from './schemas.js';
import type { SecretBox } from './secret-box.js';
import { describeSecret, matchingStep, newTotpSecret, qrCodeSvgDataUrl } from './totp.js';

export interface TwoFactorServiceDeps {
  db: PrismaClient;
  config: Config;
  box: SecretBox;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  mailQueued: () => void;
  now: () => Date;
}

const userSelect = { id: true, email: true, name: true, role: true, emailVerified: true, createdAt: true } as const;

const CHALLENGE_DEAD = 'This sign-in has expired or was used. Sign in again with your password.';

const wrongCode = () =>
  new AppError('BAD_REQUEST', 'Invalid code.', {
    fieldErrors: { code: ['is not the current code of your authenticator app'] },
    reason: 'INVALID_TWO_FACTOR_CODE',
  });

export type TwoFactorService = ReturnType<typeof createTwoFactorService>;

export function createTwoFactorService(deps: TwoFactorServiceDeps) {
  const { db, config, box, accessTokens, rateLimits, now } = deps;
  const policy: SessionPolicy = config.auth;

  async function account(userId: string) {
    const row = await db.user.findUnique({
      where: { id: userId },
      select: { email: true, passwordHash: true, twoFactor: { select: { secretCiphertext: true, enabledAt: true } } },
    });
    if (!row) throw new AppError('UNAUTHORIZED', 'This account no longer exists.');
    return row;
  }

  /** The TOTP secret, re-sealed under the first key when it was sealed with an older one. */
  async function secretOf(userId: string, sealed: string): Promise<Buffer> {
    const { plain, stale } = box.open(sealed, userId);
    if (stale)
      await db.twoFactor.updateMany({ where: { userId, secretCiphertext: sealed }, data: { secretCiphertext: box.seal(plain, userId) } });
    return plain;
  }

  /**
   * Accepts `code` once: the step it belongs to must be later than the last accepted one, and the
   * UPDATE that records it only succeeds when that still holds (a concurrent use of the same code
   * loses). `enabled` says which state the factor must be in (setup is confirmed while not enabled).
   */
  async function acceptCode(tx: Db, userId: string, sealed: string, code: string, enabled: boolean): Promise<boolean> {
    const step = matchingStep(await secretOf(userId, sealed), code, now());
    if (step === undefined) return false;
    const count = await tx.$executeRaw`
      UPDATE two_factor SET last_used_step = ${BigInt(step)}
       WHERE user_id = ${userId}::uuid
         AND (enabled_at IS NOT NULL) = ${enabled}
         AND (last_used_step IS NULL OR last_used_step < ${BigInt(step)})`;
    return count === 1;
  }

  /** A code check on the account, counted by its sign-in backoff; a wrong code is a failure. */
  async function checked<T>(email: string, client: ClientInfo, procedure: string, check: () => Promise<T | false>): Promise<T> {
    const attempt = await limited(procedure, client, () => rateLimits.beginPasswordAttempt(email));
    let result: T | false;
    try {
      result = await check();
    } catch (error) {
      await attempt.abandoned().catch(() => {});
      throw error;
    }
    if (result === false) {
      await attempt.failed();
      throw wrongCode();
    }
    await attempt.succeeded();
    return result;
  }

  async function replaceRecoveryCodes(tx: Db, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await tx.recoveryCode.deleteMany({ where: { userId } });
    await tx.recoveryCode.createMany({ data: codes.map((code) => ({ userId, codeHash: hashRecoveryCode(code), createdAt: now() })) });
    return codes;
  }

  function mailOwner(tx: Db, email: string, what: string): Promise<void> {
    return enqueueMail(tx, {
      to: email,
      subject: 'Two-factor sign-in changed on your account',
      text: `${what}\n\nIf it was not you, reset your password at once from the sign-in page and turn two-factor sign-in back on:\n${config.auth.appUrl}\n`,
    });
  }

  async function issue(userId: string, factors: Factor[], client: ClientInfo, challengeId: string): Promise<AuthResult> {
    const result = await db.$transaction(async (tx) => {
      const { count } = await tx.twoFactorChallenge.updateMany({
        where: { id: challengeId, consumedAt: null },
        data: { consumedAt: now() },
      });
      if (count !== 1) return undefined;
      const user = await tx.user.findUnique({ where: { id: userId }, select: { ...userSelect, active: true } });
      if (!user?.active) return undefined;
      const issued = await createSession(tx, { userId, userAgent: client.userAgent, ip: client.ip, now: now(), policy, factors });
      const { active: _active, ...publicUser } = user;
      return { user: publicUser, issued };
    });
    if (!result) throw new AppError('UNAUTHORIZED', CHALLENGE_DEAD, { reason: 'TWO_FACTOR_CHALLENGE_INVALID' });
    const { user, issued } = result;
    audit(client.log, 'auth.two_factor.succeeded', { userId, sessionId: issued.sessionId, ip: client.ip, factors });
    return authResult(accessTokens, user, issued);
  }

  return {
    /**
     * For other procedures that ask for a current code beside the password (account deletion):
     * `undefined` when the account has no second factor, else whether `code` was accepted (once).
     */
    async confirmCode(userId: string, code: string | undefined): Promise<boolean | undefined> {
      const factor = await db.twoFactor.findUnique({ where: { userId }, select: { secretCiphertext: true, enabledAt: true } });
      if (!factor?.enabledAt) return undefined;
      if (code === undefined) return false;
      return acceptCode(db, userId, factor.secretCiphertext, code, true);
    },

    async status(user: AuthUser) {
      const [factor, left] = await Promise.all([
        db.twoFactor.findUnique({ where: { userId: user.id }, select: { enabledAt: true } }),
        db.recoveryCode.count({ where: { userId: user.id, usedAt: null } }),
      ]);
      const enabledAt = factor?.enabledAt ?? null;
      return { enabled: enabledAt !== null, enabledAt, recoveryCodesLeft: enabledAt ? left : 0 };
    },

    /** A new secret, pending until `enable` confirms it with a code; a pending one is replaced. */
    async setup(user: AuthUser, client: ClientInfo) {
      const row = await account(user.id);
      if (row.twoFactor?.enabledAt)
        throw new AppError('CONFLICT', 'Two-factor sign-in is already on. Turn it off first to use another authenticator.', {
          reason: 'TWO_FACTOR_ALREADY_ENABLED',
        });
      const secret = newTotpSecret();
      const sealed = box.seal(secret, user.id);
      await db.twoFactor.upsert({
        where: { userId: user.id },
        create: { userId: user.id, secretCiphertext: sealed, createdAt: now() },
        update: { secretCiphertext: sealed, enabledAt: null, lastUsedStep: null, createdAt: now() },
      });
      const described = describeSecret(secret, row.email, config.accounts.twoFactorIssuer);
      audit(client.log, 'auth.two_factor.setup', { userId: user.id, ip: client.ip });
      return { ...described, qrCodeSvg: await qrCodeSvgDataUrl(described.uri) };
    },

    async enable(user: AuthUser, input: z.infer<typeof enableInput>, client: ClientInfo) {
      const row = await account(user.id);
      const pending = row.twoFactor;
      if (!pending) throw new AppError('CONFLICT', 'Call auth.twoFactor.setup first.', { reason: 'TWO_FACTOR_NOT_SET_UP' });
      if (pending.enabledAt) throw new AppError('CONFLICT', 'Two-factor sign-in is already on.', { reason: 'TWO_FACTOR_ALREADY_ENABLED' });
      const codes = await checked(row.email, client, 'twoFactor.enable', () =>
        db.$transaction(async (tx) => {
          if (!(await acceptCode(tx, user.id, pending.secretCiphertext, input.code, false))) return false;
          await tx.twoFactor.update({ where: { userId: user.id }, data: { enabledAt: now() } });
          await mailOwner(tx, row.email, 'Two-factor sign-in was turned on for your Keel account.');
          return replaceRecoveryCodes(tx, user.id);
        }),
      );
      deps.mailQueued();
      audit(client.log, 'auth.two_factor.enabled', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
      return { recoveryCodes: codes };
    },

    /** Needs the password and a current code: a stolen session alone cannot take the factor off. */
    async disable(user: AuthUser, input: z.infer<typeof disableInput>, client: ClientInfo): Promise<{ ok: true }> {
      return withPasswordWork(config, 'twoFactor.disable', client, async () => {
        const row = await account(user.id);
        const factor = row.twoFactor;
        if (!factor?.enabledAt) throw new AppError('CONFLICT', 'Two-factor sign-in is not on.', { reason: 'TWO_FACTOR_NOT_ENABLED' });
        const attempt = await limited('twoFactor.disable', client, () => rateLimits.beginPasswordAttempt(row.email));
        let outcome: 'password' | 'code' | 'ok';
        try {
          if (!(await verifyPassword(row.passwordHash, input.password, config.passwords))) outcome = 'password';
          else
            outcome = await db.$transaction(async (tx) => {
              if (!(await acceptCode(tx, user.id, factor.secretCiphertext, input.code, true))) return 'code' as const;
              await tx.twoFactor.delete({ where: { userId: user.id } });
              await tx.recoveryCode.deleteMany({ where: { userId: user.id } });
              await mailOwner(tx, row.email, 'Two-factor sign-in was turned off for your Keel account.');
              return 'ok' as const;
            });
        } catch (error) {
          await attempt.abandoned().catch(() => {});
          throw error;
        }
        if (outcome === 'password') {
          await attempt.failed();
          throw new AppError('BAD_REQUEST', 'Invalid input.', { fieldErrors: { password: ['is incorrect'] } });
        }
        if (outcome === 'code') {
          await attempt.failed();
          throw wrongCode();
        }
        await attempt.succeeded();
        deps.mailQueued();
        audit(client.log, 'auth.two_factor.disabled', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
        return { ok: true };
      });
    },

    async regenerateRecoveryCodes(user: AuthUser, input: z.infer<typeof regenerateInput>, client: ClientInfo) {
      const row = await account(user.id);
      const factor = row.twoFactor;
      if (!factor?.enabledAt) throw new AppError('CONFLICT', 'Two-factor sign-in is not on.', { reason: 'TWO_FACTOR_NOT_ENABLED' });
      const codes = await checked(row.email, client, 'twoFactor.regenerateRecoveryCodes', () =>
        db.$transaction(async (tx) => {
          if (!(await acceptCode(tx, user.id, factor.secretCiphertext, input.code, true))) return false;
          await mailOwner(tx, row.email, 'New recovery codes were made for your Keel account; the old ones no longer work.');
          return replaceRecoveryCodes(tx, user.id);
        }),
      );
      deps.mailQueued();
      audit(client.log, 'auth.two_factor.recovery_codes_regenerated', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
      return { recoveryCodes: codes };
    },

    /** The second step of a sign-in: a code from the app or one recovery code completes the challenge. */
    async verify(input: z.infer<typeof verifyInput>, client: ClientInfo): Promise<AuthResult> {
      const at = now();
      const challenge = await db.twoFactorChallenge.findUnique({
        where: { tokenHash: hashToken(input.challenge) },
        select: {
          id: true,
          createdAt: true,
          expiresAt: true,
          consumedAt: true,
          failedAttempts: true,
          user: {
            select: {
              id: true,
              email: true,
              active: true,
              passwordChangedAt: true,
              twoFactor: { select: { secretCiphertext: true, enabledAt: true } },
            },
          },
        },
      });
      const user = challenge?.user;
      const factor = user?.twoFactor;
      if (
        !challenge ||
        !user?.active ||
        !factor?.enabledAt ||
        challenge.consumedAt ||
        challenge.expiresAt <= at ||
        challenge.failedAttempts >= CHALLENGE_MAX_FAILURES ||
        (user.passwordChangedAt && challenge.createdAt < user.passwordChangedAt)
      ) {
        audit(client.log, 'auth.two_factor.failed', { userId: user?.id, ip: client.ip, reason: 'challenge invalid' });
        throw new AppError('UNAUTHORIZED', CHALLENGE_DEAD, { reason: 'TWO_FACTOR_CHALLENGE_INVALID' });
      }
      const { code, recoveryCode } = input;
      const factors: Factor[] = ['password', code !== undefined ? 'totp' : 'recovery_code'];
      try {
        await checked(user.email, client, 'twoFactor.verify', async () => {
          if (code !== undefined) return (await acceptCode(db, user.id, factor.secretCiphertext, code, true)) || false;
          const { count } = await db.recoveryCode.updateMany({
            where: { userId: user.id, codeHash: hashRecoveryCode(recoveryCode ?? ''), usedAt: null },
            data: { usedAt: now() },
          });
          return count === 1 || false;
        });
      } catch (error) {
        if (error instanceof AppError && error.reason === 'INVALID_TWO_FACTOR_CODE') {
          const dead = await countChallengeFailure(db, challenge.id, now());
          audit(client.log, 'auth.two_factor.failed', { userId: user.id, ip: client.ip, method: factors[1], challengeDead: dead });
          if (dead) throw new AppError('UNAUTHORIZED', CHALLENGE_DEAD, { reason: 'TWO_FACTOR_CHALLENGE_INVALID' });
          if (recoveryCode !== undefined)
            throw new AppError('BAD_REQUEST', 'Invalid code.', {
              fieldErrors: { recoveryCode: ['is not an unused recovery code'] },
              reason: 'INVALID_TWO_FACTOR_CODE',
            });
        }
        throw error;
      }
      return issue(user.id, factors, client, challenge.id);
    },
  };
}
