/**
 * Mailed account tokens: single-use links for a password reset and for the verification of an
 * email address. A token is issued in the transaction that mails it; a wrong one counts as a guess
 * against the guesser's address.
 */
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { UserTokenKind } from '../../generated/prisma/client.js';
import { hashPassword } from '../../lib/password.js';
import { enqueueMail } from '../../mail/outbox.js';
import { assertAcceptablePassword, fieldError, INVALID_LINK, limited, unauthorized, withPasswordWork } from './account-rules.js';
import { audit } from './audit.js';
import { accountLink, passwordChangedMail, passwordResetMail, verificationMail } from './mail-bodies.js';
import { hashToken, newOpaqueToken } from './opaque-tokens.js';
import type { requestPasswordResetInput, resetPasswordInput } from './schemas.js';
import { revokeUserSessions } from './sessions.js';
import type { AuthServiceDeps, AuthUser, ClientInfo } from './types.js';

/** A new single-use token of `kind`; any older unused one of that kind dies. */
export async function issueUserToken(
  tx: Db,
  input: { userId: string; kind: UserTokenKind; ttlSeconds: number; now: Date },
): Promise<string> {
  const { userId, kind, ttlSeconds, now: at } = input;
  await tx.userToken.updateMany({ where: { userId, kind, consumedAt: null }, data: { consumedAt: at } });
  const token = newOpaqueToken();
  await tx.userToken.create({
    data: { userId, kind, tokenHash: hashToken(token), createdAt: at, expiresAt: new Date(at.getTime() + ttlSeconds * 1000) },
  });
  return token;
}

export type AccountTokens = ReturnType<typeof createAccountTokens>;

export function createAccountTokens(deps: AuthServiceDeps) {
  const { db, config, rateLimits, now } = deps;
  const link = (path: string, token: string) => accountLink(config.auth.appUrl, path, token);

  /** The token's row if it can still be used: right kind, unused, unexpired, younger than the last password change. */
  async function usableUserToken(token: string, kind: UserTokenKind) {
    const row = await db.userToken.findUnique({
      where: { tokenHash: hashToken(token) },
      select: {
        id: true,
        kind: true,
        createdAt: true,
        expiresAt: true,
        consumedAt: true,
        user: { select: { id: true, email: true, active: true, passwordChangedAt: true } },
      },
    });
    const at = now();
    if (!row || row.kind !== kind || row.consumedAt || row.expiresAt <= at || !row.user.active) return undefined;
    if (row.user.passwordChangedAt && row.createdAt < row.user.passwordChangedAt) return undefined;
    return row;
  }

  /** Marks a token used; false when a concurrent request used it first. */
  async function consumeUserToken(tx: Db, id: string): Promise<boolean> {
    const { count } = await tx.userToken.updateMany({ where: { id, consumedAt: null }, data: { consumedAt: now() } });
    return count === 1;
  }

  /**
   * The row of a mailed token if it is usable. Wrong tokens are guesses: counted per address
   * before the lookup (so concurrent guesses cannot all slip through), refunded for a right one.
   */
  async function guessedUserToken(token: string, kind: UserTokenKind, procedure: string, client: ClientInfo) {
    await limited(procedure, client, () => rateLimits.consumeIp('tokenFailures', client.ip));
    const row = await usableUserToken(token, kind);
    if (!row) {
      audit(client.log, 'auth.token.invalid', { ip: client.ip, operation: procedure });
      throw fieldError('token', [INVALID_LINK]);
    }
    await rateLimits.refundIp('tokenFailures', client.ip);
    return row;
  }

  async function resetPassword(input: z.infer<typeof resetPasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
    const row = await guessedUserToken(input.token, 'PASSWORD_RESET', 'resetPassword', client);
    assertAcceptablePassword(config, input.newPassword, row.user.email, 'newPassword');
    const passwordHash = await hashPassword(input.newPassword, config.passwords);
    const revoked = await db.$transaction(async (tx) => {
      if (!(await consumeUserToken(tx, row.id))) throw fieldError('token', [INVALID_LINK]);
      const at = now();
      await tx.user.update({ where: { id: row.user.id }, data: { passwordHash, passwordChangedAt: at } });
      await tx.userToken.updateMany({ where: { userId: row.user.id, consumedAt: null }, data: { consumedAt: at } });
      // Sent if and only if the reset commits: someone who took over the account cannot keep it from going out.
      await enqueueMail(tx, { to: row.user.email, ...passwordChangedMail(config.auth.appUrl, 'reset') });
      return revokeUserSessions(tx, { userId: row.user.id, reason: 'password_reset', now: at });
    });
    deps.sessionCache.clear();
    deps.mailQueued();
    audit(client.log, 'auth.password.reset', { userId: row.user.id, ip: client.ip, revokedSessions: revoked });
    return { ok: true };
  }

  return {
    /**
     * Always the same answer, at the same speed: the lookup and the mail happen after the response
     * is decided, so neither the result nor its timing tells whether the address has an account.
     */
    async requestPasswordReset(input: z.infer<typeof requestPasswordResetInput>, client: ClientInfo): Promise<{ ok: true }> {
      await limited('requestPasswordReset', client, () => rateLimits.consumeIp('passwordReset', client.ip));
      deps.background.run('password-reset-mail', async () => {
        const user = await db.user.findUnique({ where: { email: input.email }, select: { id: true, email: true, active: true } });
        if (!user?.active) return;
        if (!(await rateLimits.allowResetMail(user.email))) {
          audit(client.log, 'auth.rate_limited', { userId: user.id, ip: client.ip, operation: 'requestPasswordReset' });
          return;
        }
        await db.$transaction(async (tx) => {
          const ttlSeconds = config.auth.resetTokenTtlSeconds;
          const token = await issueUserToken(tx, { userId: user.id, kind: 'PASSWORD_RESET', ttlSeconds, now: now() });
          await enqueueMail(tx, { to: user.email, ...passwordResetMail(link('/reset-password', token), Math.round(ttlSeconds / 60)) });
        });
        deps.mailQueued();
        audit(client.log, 'auth.password.reset_requested', { userId: user.id, ip: client.ip });
      });
      return { ok: true };
    },

    resetPassword(input: z.infer<typeof resetPasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
      return withPasswordWork(config, 'resetPassword', client, () => resetPassword(input, client));
    },

    async requestEmailVerification(user: AuthUser, client: ClientInfo): Promise<{ ok: true }> {
      await limited('requestEmailVerification', client, () => rateLimits.consumeIp('passwordReset', client.ip));
      const row = await db.user.findUnique({ where: { id: user.id }, select: { email: true, emailVerified: true } });
      if (!row) throw unauthorized('This account no longer exists.');
      if (row.emailVerified) return { ok: true };
      await db.$transaction(async (tx) => {
        const ttlSeconds = config.auth.verificationTokenTtlSeconds;
        const token = await issueUserToken(tx, { userId: user.id, kind: 'EMAIL_VERIFICATION', ttlSeconds, now: now() });
        await enqueueMail(tx, { to: row.email, ...verificationMail(link('/verify-email', token)) });
      });
      deps.mailQueued();
      return { ok: true };
    },

    async verifyEmail(token: string, client: ClientInfo): Promise<{ ok: true }> {
      const row = await guessedUserToken(token, 'EMAIL_VERIFICATION', 'verifyEmail', client);
      await db.$transaction(async (tx) => {
        if (!(await consumeUserToken(tx, row.id))) throw fieldError('token', [INVALID_LINK]);
        await tx.user.update({ where: { id: row.user.id }, data: { emailVerified: true } });
      });
      audit(client.log, 'auth.email.verified', { userId: row.user.id, ip: client.ip });
      return { ok: true };
    },
  };
}
