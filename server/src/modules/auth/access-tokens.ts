/**
 * Access tokens: JWTs as RFC 9068 describes them (`typ: at+jwt`), signed with an asymmetric key
 * and verified as RFC 8725 asks: algorithm pinned to the configured keys, issuer, audience and type
 * checked, at most 30 s of clock skew, keys only from our own set (never from the token).
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { KeySet } from './keys.js';
import { roleSchema } from './schemas.js';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
const CLOCK_SKEW_SECONDS = 30;

const claimsSchema = z.object({
  sub: z.uuid(),
  sid: z.uuid(),
  role: roleSchema,
  jti: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
});

export type AccessClaims = z.infer<typeof claimsSchema>;

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
}

export class InvalidAccessTokenError extends Error {
  override name = 'InvalidAccessTokenError';
}

export interface AccessTokens {
  issue(subject: { userId: string; sessionId: string; role: AccessClaims['role'] }): Promise<IssuedAccessToken>;
  /** The token's claims, or InvalidAccessTokenError (never anything else). */
  verify(token: string): Promise<AccessClaims>;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A JWS compact serialisation in canonical base64url: three segments, no padding, and no bits set
 * beyond the data in a segment's last character. jose decodes leniently, so without this check
 * `...Q` and `...R` (or `...Q==`) would both pass as the same signed token: one token must have
 * one spelling (it is also the key of the verified-token cache).
 */
export function isCanonicalCompactJws(token: string): boolean {
  const segments = token.split('.');
  if (segments.length !== 3) return false;
  for (const segment of segments) {
    if (!/^[A-Za-z0-9_-]+$/.test(segment)) return false;
    const tail = segment.length % 4;
    if (tail === 1) return false;
    if (tail === 0) continue;
    // 2 characters carry 8 bits (4 left over), 3 carry 16 (2 left over): those must be zero.
    const unused = tail === 2 ? 0b1111 : 0b11;
    if ((BASE64URL.indexOf(segment.charAt(segment.length - 1)) & unused) !== 0) return false;
  }
  return true;
}

/** Verified tokens kept in memory: ~1 KB each, so at most ~10 MB. */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * The time checks of a verification, for a token whose signature, issuer, audience, type and
 * claims were already verified: not expired, not issued in the future, not older than allowed.
 */
function timely(claims: AccessClaims, nowSeconds: number, ttlSeconds: number): boolean {
  return (
    claims.exp > nowSeconds - CLOCK_SKEW_SECONDS &&
    claims.iat <= nowSeconds + CLOCK_SKEW_SECONDS &&
    nowSeconds - claims.iat <= ttlSeconds + 2 * CLOCK_SKEW_SECONDS
  );
}

export function createAccessTokens(keys: KeySet, config: Config['auth'], now: () => Date): AccessTokens {
  /**
   * A client sends the same token with every call for up to 15 minutes; verifying its Ed25519
   * signature each time was the largest single cost of an authenticated call (bench/run.ts).
   * A verified token's claims are kept (bounded, least recently used evicted first); the time
   * checks still run on every use. Only tokens that passed the full verification are ever stored.
   */
  const verified = new LRUCache<string, AccessClaims>({ max: VERIFIED_CACHE_SIZE });

  return {
    async issue({ userId, sessionId, role }) {
      const issuedAt = Math.floor(now().getTime() / 1000);
      const expiresAt = issuedAt + config.accessTokenTtlSeconds;
      const token = await new SignJWT({ sid: sessionId, role })
        .setProtectedHeader({ alg: keys.algorithm, kid: keys.kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(config.issuer)
        .setAudience(config.audience)
        .setSubject(userId)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(keys.signingKey);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },
    async verify(token) {
      const nowSeconds = Math.floor(now().getTime() / 1000);
      const known = verified.get(token);
      if (known) {
        if (timely(known, nowSeconds, config.accessTokenTtlSeconds)) return known;
        verified.delete(token);
        throw new InvalidAccessTokenError('ERR_JWT_EXPIRED');
      }
      if (!isCanonicalCompactJws(token)) throw new InvalidAccessTokenError('not canonical base64url');
      try {
        const { payload } = await jwtVerify(token, keys.verificationKeys, {
          algorithms: keys.algorithms,
          issuer: config.issuer,
          audience: config.audience,
          typ: ACCESS_TOKEN_TYPE,
          clockTolerance: CLOCK_SKEW_SECONDS,
          maxTokenAge: config.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS,
          requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
          currentDate: now(),
        });
        const claims = claimsSchema.safeParse(payload);
        if (!claims.success) throw new InvalidAccessTokenError('unexpected claims');
        verified.set(token, claims.data);
        return claims.data;
      } catch (error) {
        if (error instanceof InvalidAccessTokenError) throw error;
        if (error instanceof errors.JOSEError) throw new InvalidAccessTokenError(error.code);
        throw new InvalidAccessTokenError('malformed');
      }
    },
  };
}
