/**
 * Credentials: registration, sign-in and change of password, each with its limits, the constant
 * cost for unknown accounts, and the row lock that keeps a concurrent change from being undone.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { AppError } from '../../lib/errors.js';
import { hashPassword, needsRehash, verifyPassword } from '../../lib/password.js';
import { enqueueMail } from '../../mail/outbox.js';
import {
  assertAcceptablePassword,
  deactivated,
  fieldError,
  INVALID_CREDENTIALS,
  limited,
  lockUser,
  passwordChangedSince,
  unauthorized,
  userSelect,
  withPasswordWork,
} from './account-rules.js';
import { issueUserToken } from './account-tokens.js';
import { audit } from './audit.js';
import { accountLink, passwordChangedMail, welcomeMail } from './mail-bodies.js';
import type { AuthResult, changePasswordInput, loginInput, registerInput, User } from './schemas.js';
import { authResult } from './session-lifecycle.js';
import { createSession, revokeUserSessions, type SessionPolicy } from './sessions.js';
import type { AuthServiceDeps, AuthUser, ClientInfo } from './types.js';

export type Credentials = ReturnType<typeof createCredentials>;

export function createCredentials(deps: AuthServiceDeps) {
  const { db, config, accessTokens, rateLimits, now } = deps;
  const policy: SessionPolicy = config.auth;
  let dummyHash: Promise<string> | undefined;

  /** Same cost as a real verification, for unknown emails: response time tells nothing. */
  const hashForUnknownUser = () => {
    dummyHash ??= hashPassword(randomBytes(16).toString('hex'), config.passwords);
    return dummyHash;
  };

  async function register(input: z.infer<typeof registerInput>, client: ClientInfo): Promise<AuthResult> {
    await limited('register', client, () => rateLimits.consumeIp('register', client.ip));
    assertAcceptablePassword(config, input.password, input.email, 'password');
    const passwordHash = await hashPassword(input.password, config.passwords);
    const existing = await db.user.findUnique({ where: { email: input.email }, select: { id: true } });
    if (existing)
      throw new AppError('CONFLICT', 'An account with this email already exists.', { fieldErrors: { email: ['is already registered'] } });
    const { user, issued } = await db.$transaction(async (tx) => {
      const created = await tx.user.create({ data: { email: input.email, name: input.name ?? null, passwordHash }, select: userSelect });
      const ttlSeconds = config.auth.verificationTokenTtlSeconds;
      const token = await issueUserToken(tx, { userId: created.id, kind: 'EMAIL_VERIFICATION', ttlSeconds, now: now() });
      await enqueueMail(tx, { to: created.email, ...welcomeMail(accountLink(config.auth.appUrl, '/verify-email', token)) });
      const session = await createSession(tx, { userId: created.id, userAgent: client.userAgent, ip: client.ip, now: now(), policy });
      return { user: created, issued: session };
    });
    deps.mailQueued();
    audit(client.log, 'auth.register', { userId: user.id, sessionId: issued.sessionId, ip: client.ip });
    return authResult(accessTokens, user, issued);
  }

  async function login(input: z.infer<typeof loginInput>, client: ClientInfo): Promise<AuthResult> {
    const attempt = await limited('login', client, async () => {
      await rateLimits.consumeIp('login', client.ip);
      // Failures from the address whatever the accounts (credential stuffing), refunded on success.
      await rateLimits.consumeIp('loginFailures', client.ip);
      return rateLimits.beginPasswordAttempt(input.email);
    });
    let row: (User & { passwordHash: string; passwordChangedAt: Date | null; active: boolean }) | null;
    let valid: boolean;
    try {
      row = await db.user.findUnique({
        where: { email: input.email },
        select: { ...userSelect, passwordHash: true, passwordChangedAt: true, active: true },
      });
      valid = await verifyPassword(row?.passwordHash ?? (await hashForUnknownUser()), input.password, config.passwords);
    } catch (error) {
      await attempt.abandoned().catch(() => {});
      throw error;
    }
    if (!row || !valid) {
      await attempt.failed();
      audit(client.log, 'auth.login.failed', { userId: row?.id, ip: client.ip });
      throw unauthorized(INVALID_CREDENTIALS);
    }
    await Promise.all([attempt.succeeded(), rateLimits.refundIp('loginFailures', client.ip)]);
    if (!row.active) {
      audit(client.log, 'auth.login.deactivated', { userId: row.id, ip: client.ip });
      throw deactivated();
    }
    const { passwordHash, passwordChangedAt, active: _active, ...user } = row;
    const rehashed = needsRehash(passwordHash, config.passwords) ? await hashPassword(input.password, config.passwords) : undefined;
    const issued = await db.$transaction(async (tx) => {
      const current = await lockUser(tx, user.id);
      if (!current || passwordChangedSince(passwordChangedAt, current.passwordChangedAt)) return 'password changed' as const;
      if (!current.active) return 'deactivated' as const;
      if (rehashed) await tx.user.update({ where: { id: user.id }, data: { passwordHash: rehashed } });
      return createSession(tx, { userId: user.id, userAgent: client.userAgent, ip: client.ip, now: now(), policy });
    });
    if (issued === 'password changed') {
      audit(client.log, 'auth.login.failed', { userId: user.id, ip: client.ip, reason: 'password changed during sign-in' });
      throw unauthorized(INVALID_CREDENTIALS);
    }
    if (issued === 'deactivated') {
      audit(client.log, 'auth.login.deactivated', { userId: user.id, ip: client.ip });
      throw deactivated();
    }
    audit(client.log, 'auth.login.succeeded', { userId: user.id, sessionId: issued.sessionId, ip: client.ip });
    return authResult(accessTokens, user, issued);
  }

  async function changePassword(user: AuthUser, input: z.infer<typeof changePasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
    const row = await db.user.findUnique({
      where: { id: user.id },
      select: { email: true, passwordHash: true, passwordChangedAt: true },
    });
    if (!row) throw unauthorized('This account no longer exists.');
    const attempt = await limited('changePassword', client, () => rateLimits.beginPasswordAttempt(row.email));
    if (!(await verifyPassword(row.passwordHash, input.currentPassword, config.passwords))) {
      await attempt.failed();
      throw fieldError('currentPassword', ['is incorrect']);
    }
    await attempt.succeeded();
    if (input.newPassword === input.currentPassword) throw fieldError('newPassword', ['must differ from the current password']);
    assertAcceptablePassword(config, input.newPassword, row.email, 'newPassword');
    const passwordHash = await hashPassword(input.newPassword, config.passwords);
    const revoked = await db.$transaction(async (tx) => {
      // A reset or another change that committed since the check above wins: its password stays.
      const current = await lockUser(tx, user.id);
      if (!current || passwordChangedSince(row.passwordChangedAt, current.passwordChangedAt)) return undefined;
      const at = now();
      await tx.user.update({ where: { id: user.id }, data: { passwordHash, passwordChangedAt: at } });
      await tx.userToken.updateMany({ where: { userId: user.id, consumedAt: null }, data: { consumedAt: at } });
      // Sent if and only if the change commits: someone who took over the account cannot keep it from going out.
      await enqueueMail(tx, { to: row.email, ...passwordChangedMail(config.auth.appUrl, 'changed') });
      return revokeUserSessions(tx, { userId: user.id, reason: 'password_changed', now: at, exceptSessionId: user.sessionId });
    });
    if (revoked === undefined) throw fieldError('currentPassword', ['is incorrect']);
    deps.sessionCache.clear();
    deps.mailQueued();
    audit(client.log, 'auth.password.changed', { userId: user.id, sessionId: user.sessionId, ip: client.ip, revokedSessions: revoked });
    return { ok: true };
  }

  return {
    register(input: z.infer<typeof registerInput>, client: ClientInfo): Promise<AuthResult> {
      return withPasswordWork(config, 'register', client, () => register(input, client));
    },
    login(input: z.infer<typeof loginInput>, client: ClientInfo): Promise<AuthResult> {
      return withPasswordWork(config, 'login', client, () => login(input, client));
    },
    changePassword(user: AuthUser, input: z.infer<typeof changePasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
      return withPasswordWork(config, 'changePassword', client, () => changePassword(user, input, client));
    },
  };
}
