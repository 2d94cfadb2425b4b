/**
 * Accounts and sign-in: the rules and the data access of the `auth` router. Dependencies come in
 * as arguments; errors are `AppError`s. Transport concerns (cookies, headers) stay in the router.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db, PrismaClient } from '../../db/client.js';
import type { UserTokenKind } from '../../generated/prisma/client.js';
import type { BackgroundTasks } from '../../lib/background.js';
import { AppError } from '../../lib/errors.js';
import { admitPasswordWork, hashPassword, needsRehash, verifyPassword } from '../../lib/password.js';
import type { Log } from '../../logger.js';
import { enqueueMail } from '../../mail/outbox.js';
import type { ServiceGrant } from '../service-accounts/scopes.js';
import { type AccessTokens, InvalidAccessTokenError } from './access-tokens.js';
import { audit } from './audit.js';
import type { KeySet } from './keys.js';
import { hashToken, newOpaqueToken } from './opaque-tokens.js';
import { passwordProblems } from './password-policy.js';
import type { RateLimits } from './rate-limits.js';
import type {
  AuthResult,
  changePasswordInput,
  loginInput,
  Role,
  registerInput,
  requestPasswordResetInput,
  resetPasswordInput,
  SessionInfo,
  User,
} from './schemas.js';
import {
  createSession,
  type IssuedRefreshToken,
  isSessionActive,
  listLiveSessions,
  type RotationResult,
  revokeSession,
  revokeUserSessions,
  rotateRefreshToken,
  type SessionCache,
  type SessionPolicy,
} from './sessions.js';

/** The caller, as the access token proves it. */
export interface AuthUser {
  id: string;
  role: Role;
  sessionId: string;
  /** Set when the caller is a service account (its token's grant); `role` is then USER. */
  service?: ServiceGrant;
}

/** What the service needs to know about the request it serves. */
export interface ClientInfo {
  ip: string | undefined;
  userAgent: string | undefined;
  log: Log;
}

export interface AuthServiceDeps {
  db: PrismaClient;
  config: Config;
  keys: KeySet;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  sessionCache: SessionCache;
  background: BackgroundTasks;
  /** Tells the mail worker that the outbox has something new. */
  mailQueued: () => void;
  now: () => Date;
}

const userSelect = { id: true, email: true, name: true, role: true, emailVerified: true, createdAt: true } as const;

const INVALID_CREDENTIALS = 'Invalid email or password.';
const INVALID_REFRESH = 'Invalid or expired refresh token.';
const INVALID_LINK = 'This link is invalid or has expired. Request a new one.';

const unauthorized = (message: string) => new AppError('UNAUTHORIZED', message);
const deactivated = () => new AppError('FORBIDDEN', 'This account is deactivated.');
const fieldError = (field: string, problems: string[]) =>
  new AppError('BAD_REQUEST', 'Invalid input.', { fieldErrors: { [field]: problems } });

/**
 * When the user's password last changed, and whether the account is active, under a row lock, for
 * the write that follows a password check: a change, reset or deactivation committed since the
 * check is seen (and waited for when it is still running), so it cannot be undone by a sign-in or
 * a change that read the row before. A rehash on sign-in does not count as a change.
 */
async function lockUser(tx: Db, userId: string): Promise<{ passwordChangedAt: Date | null; active: boolean } | undefined> {
  const rows = await tx.$queryRaw<{ password_changed_at: Date | null; active: boolean }[]>`
    SELECT password_changed_at, active FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
  const row = rows[0];
  return row && { passwordChangedAt: row.password_changed_at, active: row.active };
}

/** Whether the password changed (a change or reset; not a rehash) between two reads of the user. */
const passwordChangedSince = (before: Date | null, now: Date | null | undefined) =>
  (before?.getTime() ?? null) !== (now?.getTime() ?? null);

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: AuthServiceDeps) {
  const { db, config, accessTokens, rateLimits, now } = deps;
  const policy: SessionPolicy = config.auth;
  let dummyHash: Promise<string> | undefined;
  /**
   * Refreshes of one token in flight in this process. Concurrent callers (a burst of requests that
   * all saw the same UNAUTHORIZED) would receive the same successor anyway; sharing one rotation
   * spares the pool from connections queueing on the session's row lock. Across instances, the
   * row lock in rotateRefreshToken still serialises them. Not with REFRESH_REUSE_GRACE_SECONDS=0,
   * where every presentation after the first is reuse.
   */
  const rotations = new Map<string, Promise<RotationResult>>();

  function rotateOnce(token: string): Promise<RotationResult> {
    const rotate = () => rotateRefreshToken(db, { token, secrets: deps.keys.refreshSecrets, policy, now: now() });
    // With no grace window, a second presentation is reuse even a millisecond later: never share.
    if (policy.reuseGraceSeconds === 0) return rotate();
    let rotation = rotations.get(token);
    if (!rotation) {
      rotation = rotate().finally(() => rotations.delete(token));
      rotations.set(token, rotation);
    }
    return rotation;
  }

  /** Same cost as a real verification, for unknown emails: response time tells nothing. */
  const hashForUnknownUser = () => {
    dummyHash ??= hashPassword(randomBytes(16).toString('hex'), config.passwords);
    return dummyHash;
  };

  async function authResult(user: User, issued: IssuedRefreshToken): Promise<AuthResult> {
    const access = await accessTokens.issue({ userId: user.id, sessionId: issued.sessionId, role: user.role });
    return {
      user,
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: issued.refreshToken,
      refreshTokenExpiresAt: issued.refreshTokenExpiresAt,
    };
  }

  /** A new single-use token of `kind`; any older unused one of that kind dies. */
  async function issueUserToken(tx: Db, userId: string, kind: UserTokenKind, ttlSeconds: number): Promise<string> {
    const at = now();
    await tx.userToken.updateMany({ where: { userId, kind, consumedAt: null }, data: { consumedAt: at } });
    const token = newOpaqueToken();
    await tx.userToken.create({
      data: { userId, kind, tokenHash: hashToken(token), createdAt: at, expiresAt: new Date(at.getTime() + ttlSeconds * 1000) },
    });
    return token;
  }

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

  const link = (path: string, token: string) => `${config.auth.appUrl}${path}?token=${encodeURIComponent(token)}`;

  function assertAcceptablePassword(password: string, email: string, field: string): void {
    const problems = passwordProblems(password, email, config.passwords.minScore);
    if (problems.length > 0) throw fieldError(field, problems);
  }

  /**
   * First thing in every procedure that hashes (sign-in, registration, change, reset): a place
   * among the password operations this process takes at once (lib/password.ts), held until `work`
   * ends. When there is none, TOO_MANY_REQUESTS at once, before any query: under a flood of
   * sign-ins the excess costs only its parsing, and neither waits for a hashing slot nor holds
   * database connections that every other request needs.
   */
  async function withPasswordWork<T>(procedure: string, client: ClientInfo, work: () => Promise<T>): Promise<T> {
    const admission = admitPasswordWork(config.passwords);
    if (!admission.admitted) {
      const { retryAfterSeconds } = admission;
      audit(client.log, 'auth.shed', { ip: client.ip, procedure, retryAfterSeconds });
      throw new AppError('TOO_MANY_REQUESTS', `The server is busy checking passwords. Retry in ${retryAfterSeconds} s.`, {
        retryAfterSeconds,
      });
    }
    try {
      return await work();
    } finally {
      admission.release();
    }
  }

  /** Runs a limit check; a refusal is logged with the client's address before it goes to the caller. */
  async function limited<T>(procedure: string, client: ClientInfo, check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      if (error instanceof AppError && error.code === 'TOO_MANY_REQUESTS')
        audit(client.log, 'auth.rate_limited', { ip: client.ip, procedure });
      throw error;
    }
  }

  /**
   * Tells the owner that the password changed, in the transaction of the change: sent if and only
   * if it commits. Someone who took over the account cannot keep this mail from going out.
   */
  function mailPasswordChanged(tx: Db, email: string, how: 'changed' | 'reset'): Promise<void> {
    return enqueueMail(tx, {
      to: email,
      subject: 'Your password was changed',
      text: `The password of your Keel account was ${how === 'reset' ? 'reset with a mailed link' : 'changed'}, and every other session was signed out.\n\nIf it was not you, reset your password at once from the sign-in page:\n${config.auth.appUrl}\n`,
    });
  }

  async function register(input: z.infer<typeof registerInput>, client: ClientInfo): Promise<AuthResult> {
    await limited('register', client, () => rateLimits.consumeIp('register', client.ip));
    assertAcceptablePassword(input.password, input.email, 'password');
    const passwordHash = await hashPassword(input.password, config.passwords);
    const existing = await db.user.findUnique({ where: { email: input.email }, select: { id: true } });
    if (existing)
      throw new AppError('CONFLICT', 'An account with this email already exists.', { fieldErrors: { email: ['is already registered'] } });
    const { user, issued } = await db.$transaction(async (tx) => {
      const created = await tx.user.create({ data: { email: input.email, name: input.name ?? null, passwordHash }, select: userSelect });
      const token = await issueUserToken(tx, created.id, 'EMAIL_VERIFICATION', config.auth.verificationTokenTtlSeconds);
      await enqueueMail(tx, {
        to: created.email,
        subject: 'Confirm your email address',
        text: `Welcome to Keel.\n\nConfirm your email address by opening this link:\n${link('/verify-email', token)}\n`,
      });
      const session = await createSession(tx, { userId: created.id, userAgent: client.userAgent, ip: client.ip, now: now(), policy });
      return { user: created, issued: session };
    });
    deps.mailQueued();
    audit(client.log, 'auth.register', { userId: user.id, sessionId: issued.sessionId, ip: client.ip });
    return authResult(user, issued);
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
    return authResult(user, issued);
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
    assertAcceptablePassword(input.newPassword, row.email, 'newPassword');
    const passwordHash = await hashPassword(input.newPassword, config.passwords);
    const revoked = await db.$transaction(async (tx) => {
      // A reset or another change that committed since the check above wins: its password stays.
      const current = await lockUser(tx, user.id);
      if (!current || passwordChangedSince(row.passwordChangedAt, current.passwordChangedAt)) return undefined;
      const at = now();
      await tx.user.update({ where: { id: user.id }, data: { passwordHash, passwordChangedAt: at } });
      await tx.userToken.updateMany({ where: { userId: user.id, consumedAt: null }, data: { consumedAt: at } });
      await mailPasswordChanged(tx, row.email, 'changed');
      return revokeUserSessions(tx, { userId: user.id, reason: 'password_changed', now: at, exceptSessionId: user.sessionId });
    });
    if (revoked === undefined) throw fieldError('currentPassword', ['is incorrect']);
    deps.sessionCache.clear();
    deps.mailQueued();
    audit(client.log, 'auth.password.changed', { userId: user.id, sessionId: user.sessionId, ip: client.ip, revokedSessions: revoked });
    return { ok: true };
  }

  /**
   * The row of a mailed token if it is usable. Wrong tokens are guesses: counted per address
   * before the lookup (so concurrent guesses cannot all slip through), refunded for a right one.
   */
  async function guessedUserToken(token: string, kind: UserTokenKind, procedure: string, client: ClientInfo) {
    await limited(procedure, client, () => rateLimits.consumeIp('tokenFailures', client.ip));
    const row = await usableUserToken(token, kind);
    if (!row) {
      audit(client.log, 'auth.token.invalid', { ip: client.ip, procedure });
      throw fieldError('token', [INVALID_LINK]);
    }
    await rateLimits.refundIp('tokenFailures', client.ip);
    return row;
  }

  async function resetPassword(input: z.infer<typeof resetPasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
    const row = await guessedUserToken(input.token, 'PASSWORD_RESET', 'resetPassword', client);
    assertAcceptablePassword(input.newPassword, row.user.email, 'newPassword');
    const passwordHash = await hashPassword(input.newPassword, config.passwords);
    const revoked = await db.$transaction(async (tx) => {
      if (!(await consumeUserToken(tx, row.id))) throw fieldError('token', [INVALID_LINK]);
      const at = now();
      await tx.user.update({ where: { id: row.user.id }, data: { passwordHash, passwordChangedAt: at } });
      await tx.userToken.updateMany({ where: { userId: row.user.id, consumedAt: null }, data: { consumedAt: at } });
      await mailPasswordChanged(tx, row.user.email, 'reset');
      return revokeUserSessions(tx, { userId: row.user.id, reason: 'password_reset', now: at });
    });
    deps.sessionCache.clear();
    deps.mailQueued();
    audit(client.log, 'auth.password.reset', { userId: row.user.id, ip: client.ip, revokedSessions: revoked });
    return { ok: true };
  }

  return {
    register(input: z.infer<typeof registerInput>, client: ClientInfo): Promise<AuthResult> {
      return withPasswordWork('register', client, () => register(input, client));
    },

    login(input: z.infer<typeof loginInput>, client: ClientInfo): Promise<AuthResult> {
      return withPasswordWork('login', client, () => login(input, client));
    },

    async refresh(token: string | undefined, client: ClientInfo): Promise<AuthResult> {
      if (!token) throw unauthorized('Missing refresh token.');
      const rotation = await rotateOnce(token);
      if (rotation.kind === 'invalid') throw unauthorized(INVALID_REFRESH);
      if (rotation.kind === 'reuse') {
        deps.sessionCache.forget(rotation.sessionId);
        audit(client.log, 'auth.refresh.reuse_detected', { userId: rotation.userId, sessionId: rotation.sessionId, ip: client.ip });
        throw unauthorized(INVALID_REFRESH);
      }
      const user = await db.user.findUnique({ where: { id: rotation.userId }, select: { ...userSelect, active: true } });
      if (!user?.active) {
        await revokeSession(db, { sessionId: rotation.sessionId, reason: 'account_deactivated', now: now() });
        throw unauthorized(INVALID_REFRESH);
      }
      const { active: _active, ...publicUser } = user;
      return authResult(publicUser, rotation);
    },

    /** Verifies an access token (and in strict mode that its session is still live). */
    async authenticate(token: string): Promise<AuthUser> {
      let claims: Awaited<ReturnType<AccessTokens['verify']>>;
      try {
        claims = await accessTokens.verify(token);
      } catch (error) {
        if (error instanceof InvalidAccessTokenError) throw unauthorized('Invalid or expired access token.');
        throw error;
      }
      if (config.auth.strictSessions) {
        const at = now();
        const active = await deps.sessionCache.isActive(claims.sid, at, () => isSessionActive(db, claims.sid, policy, at));
        if (!active) throw unauthorized('This session has ended. Sign in again.');
      }
      return { id: claims.sub, role: claims.role, sessionId: claims.sid };
    },

    async logout(user: AuthUser, client: ClientInfo): Promise<{ ok: true }> {
      await revokeSession(db, { sessionId: user.sessionId, reason: 'logout', now: now() });
      deps.sessionCache.forget(user.sessionId);
      audit(client.log, 'auth.logout', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
      return { ok: true };
    },

    async logoutAll(user: AuthUser, client: ClientInfo): Promise<{ count: number }> {
      const count = await revokeUserSessions(db, { userId: user.id, reason: 'logout_all', now: now() });
      deps.sessionCache.clear();
      audit(client.log, 'auth.sessions.revoked', { userId: user.id, sessionId: user.sessionId, ip: client.ip, count });
      return { count };
    },

    async me(user: AuthUser): Promise<User> {
      const row = await db.user.findUnique({ where: { id: user.id }, select: userSelect });
      if (!row) throw unauthorized('This account no longer exists.');
      return row;
    },

    async listSessions(user: AuthUser): Promise<SessionInfo[]> {
      const rows = await listLiveSessions(db, user.id, policy, now());
      return rows.map((s) => ({ ...s, current: s.id === user.sessionId }));
    },

    async revokeSession(user: AuthUser, sessionId: string, client: ClientInfo): Promise<{ ok: true }> {
      // Ownership in the query: another user's session is simply not found.
      const revoked = await revokeSession(db, { sessionId, userId: user.id, reason: 'revoked_by_user', now: now() });
      if (!revoked) throw new AppError('NOT_FOUND', 'Session not found.');
      deps.sessionCache.forget(sessionId);
      audit(client.log, 'auth.sessions.revoked', { userId: user.id, sessionId, ip: client.ip, count: 1 });
      return { ok: true };
    },

    changePassword(user: AuthUser, input: z.infer<typeof changePasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
      return withPasswordWork('changePassword', client, () => changePassword(user, input, client));
    },

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
          audit(client.log, 'auth.rate_limited', { userId: user.id, ip: client.ip, procedure: 'requestPasswordReset' });
          return;
        }
        await db.$transaction(async (tx) => {
          const token = await issueUserToken(tx, user.id, 'PASSWORD_RESET', config.auth.resetTokenTtlSeconds);
          const minutes = Math.round(config.auth.resetTokenTtlSeconds / 60);
          await enqueueMail(tx, {
            to: user.email,
            subject: 'Reset your password',
            text: `Someone asked to reset the password of your Keel account.\n\nTo choose a new password, open this link within ${minutes} minutes:\n${link('/reset-password', token)}\n\nIf it was not you, ignore this mail: your password stays as it is.\n`,
          });
        });
        deps.mailQueued();
        audit(client.log, 'auth.password.reset_requested', { userId: user.id, ip: client.ip });
      });
      return { ok: true };
    },

    resetPassword(input: z.infer<typeof resetPasswordInput>, client: ClientInfo): Promise<{ ok: true }> {
      return withPasswordWork('resetPassword', client, () => resetPassword(input, client));
    },

    async requestEmailVerification(user: AuthUser, client: ClientInfo): Promise<{ ok: true }> {
      await limited('requestEmailVerification', client, () => rateLimits.consumeIp('passwordReset', client.ip));
      const row = await db.user.findUnique({ where: { id: user.id }, select: { email: true, emailVerified: true } });
      if (!row) throw unauthorized('This account no longer exists.');
      if (row.emailVerified) return { ok: true };
      await db.$transaction(async (tx) => {
        const token = await issueUserToken(tx, user.id, 'EMAIL_VERIFICATION', config.auth.verificationTokenTtlSeconds);
        await enqueueMail(tx, {
          to: row.email,
          subject: 'Confirm your email address',
          text: `Confirm your email address by opening this link:\n${link('/verify-email', token)}\n`,
        });
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
