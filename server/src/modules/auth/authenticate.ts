/**
 * Verifying an access token into the caller it proves (and, with STRICT_SESSIONS, that its session
 * is still live), for the auth middleware (trpc/init.ts). Beside access-tokens.ts, which signs and
 * checks the token itself.
 */
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { type AccessClaims, type AccessTokens, InvalidAccessTokenError } from './access-tokens.js';
import { isSessionActive, type SessionCache } from './sessions.js';
import type { AuthUser } from './types.js';

export interface Authenticator {
  /** The caller `token` proves, or UNAUTHORIZED. */
  authenticate(token: string): Promise<AuthUser>;
}

export interface AuthenticatorDeps {
  db: PrismaClient;
  config: Pick<Config, 'auth'>;
  accessTokens: AccessTokens;
  sessionCache: SessionCache;
  now: () => Date;
}

export function createAuthenticator({ db, config, accessTokens, sessionCache, now }: AuthenticatorDeps): Authenticator {
  const policy = config.auth;
  return {
    async authenticate(token: string): Promise<AuthUser> {
      let claims: AccessClaims;
      try {
        claims = await accessTokens.verify(token);
      } catch (error) {
        if (error instanceof InvalidAccessTokenError) throw new AppError('UNAUTHORIZED', 'Invalid or expired access token.');
        throw error;
      }
      if (policy.strictSessions) {
        const at = now();
        const active = await sessionCache.isActive(claims.sid, at, () => isSessionActive(db, claims.sid, policy, at));
        if (!active) throw new AppError('UNAUTHORIZED', 'This session has ended. Sign in again.');
      }
      return { id: claims.sub, role: claims.role, sessionId: claims.sid };
    },
  };
}
