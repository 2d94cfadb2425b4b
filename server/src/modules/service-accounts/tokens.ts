/**
 * Service access tokens: JWTs of RFC 9068 signed by the same keys as user tokens (so the JWKS
 * already serves what verifies them). `sub` is the service account, `client_id` its client id,
 * `scope` the granted scopes (space-separated); no `sid` and no `role`, which is how a verifier
 * tells them from a user's.
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt, errors, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { ACCESS_TOKEN_TYPE, InvalidAccessTokenError, isCanonicalCompactJws } from '../auth/access-tokens.js';
import type { KeySet } from '../auth/keys.js';
import { isScope, type ServiceGrant } from './scopes.js';

const CLOCK_SKEW_SECONDS = 30;

const claimsSchema = z.object({
  sub: z.uuid(),
  client_id: z.string().min(1).max(200),
  scope: z.string().max(1000),
  jti: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
});

export interface IssuedServiceToken {
  token: string;
  expiresIn: number;
}

/**
 * Whether a token (verified or not) claims to be a service's: it has `client_id`. Only routes the
 * token to the right verification, each of which checks everything: a forged claim gains nothing.
 */
export function looksLikeServiceToken(token: string): boolean {
  try {
    return typeof decodeJwt(token).client_id === 'string';
  } catch {
    return false;
  }
}

/** Verified service tokens kept in memory (~1 KB each, so at most ~5 MB), as for user tokens. */
const VERIFIED_CACHE_SIZE = 5_000;

type Verified = ServiceGrant & { jti: string; exp: number };

export function createServiceTokens(keys: KeySet, auth: Config['auth'], ttlSeconds: number, now: () => Date) {
  /**
   * A service sends the same token with every call for its lifetime: its signature is verified
   * once, then its grant is kept (bounded, least recently used evicted first); expiry is checked
   * on every use.
   */
  const verified = new LRUCache<string, Verified>({ max: VERIFIED_CACHE_SIZE });

  return {
    /** Whether `token` is a service token verified before (and so, routed to `verify` first). */
    isKnown: (token: string): boolean => verified.has(token),

    async issue(client: { id: string; clientId: string }, scopes: string[]): Promise<IssuedServiceToken> {
      const issuedAt = Math.floor(now().getTime() / 1000);
      const token = await new SignJWT({ client_id: client.clientId, scope: scopes.join(' ') })
        .setProtectedHeader({ alg: keys.algorithm, kid: keys.kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(auth.issuer)
        .setAudience(auth.audience)
        .setSubject(client.id)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttlSeconds)
        .setJti(randomUUID())
        .sign(keys.signingKey);
      return { token, expiresIn: ttlSeconds };
    },

    /** The token's grant, or InvalidAccessTokenError (never anything else). */
    async verify(token: string): Promise<ServiceGrant & { jti: string }> {
      const known = verified.get(token);
      if (known) {
        if (known.exp > Math.floor(now().getTime() / 1000) - CLOCK_SKEW_SECONDS) return known;
        verified.delete(token);
        throw new InvalidAccessTokenError('ERR_JWT_EXPIRED');
      }
      if (!isCanonicalCompactJws(token)) throw new InvalidAccessTokenError('not canonical base64url');
      try {
        const { payload } = await jwtVerify(token, keys.verificationKeys, {
          algorithms: keys.algorithms,
          issuer: auth.issuer,
          audience: auth.audience,
          typ: ACCESS_TOKEN_TYPE,
          clockTolerance: CLOCK_SKEW_SECONDS,
          maxTokenAge: ttlSeconds + CLOCK_SKEW_SECONDS,
          requiredClaims: ['sub', 'client_id', 'jti', 'iat', 'exp'],
          currentDate: now(),
        });
        const claims = claimsSchema.safeParse(payload);
        if (!claims.success) throw new InvalidAccessTokenError('unexpected claims');
        const scopes = claims.data.scope.split(' ').filter(isScope);
        const grant = { accountId: claims.data.sub, clientId: claims.data.client_id, scopes, jti: claims.data.jti, exp: claims.data.exp };
        verified.set(token, grant);
        return grant;
      } catch (error) {
        if (error instanceof InvalidAccessTokenError) throw error;
        if (error instanceof errors.JOSEError) throw new InvalidAccessTokenError(error.code);
        throw new InvalidAccessTokenError('malformed');
      }
    },
  };
}

export type ServiceTokens = ReturnType<typeof createServiceTokens>;
