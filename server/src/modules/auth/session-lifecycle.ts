/**
 * The session lifecycle of a signed-in user: the answer of a sign-in (tokens), refresh with
 * rotation, sign-out (one session or all), the user's own sessions and profile. The storage of
 * sessions and refresh tokens is sessions.ts; verifying an access token is authenticate.ts.
 */

import { AppError } from '../../lib/errors.js';
import type { AccessTokens } from './access-tokens.js';
import { INVALID_REFRESH, unauthorized, userSelect } from './account-rules.js';
import { audit } from './audit.js';
import type { AuthResult, SessionInfo, User } from './schemas.js';
import {
  type IssuedRefreshToken,
  listLiveSessions,
  type RotationResult,
  revokeSession,
  revokeUserSessions,
  rotateRefreshToken,
  type SessionPolicy,
} from './sessions.js';
import type { AuthServiceDeps, AuthUser, ClientInfo } from './types.js';

/** What a sign-in, registration or refresh answers: the user, a new access token, the session's refresh token. */
export async function authResult(accessTokens: AccessTokens, user: User, issued: IssuedRefreshToken): Promise<AuthResult> {
  const access = await accessTokens.issue({ userId: user.id, sessionId: issued.sessionId, role: user.role });
  return {
    user,
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt,
    refreshToken: issued.refreshToken,
    refreshTokenExpiresAt: issued.refreshTokenExpiresAt,
  };
}

export type SessionLifecycle = ReturnType<typeof createSessionLifecycle>;

export function createSessionLifecycle(deps: AuthServiceDeps) {
  const { db, config, accessTokens, now } = deps;
  const policy: SessionPolicy = config.auth;
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

  return {
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
      return authResult(accessTokens, publicUser, rotation);
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
  };
}
