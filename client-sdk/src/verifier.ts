/**
 * `@keel/client-sdk/verifier`: checks Keel access tokens in another service, offline, against
 * Keel's published keys (`/.well-known/jwks.json`). Its own entry point, so browser apps never
 * bundle it or jose.
 *
 * ```ts
 * const verify = createKeelTokenVerifier({ issuer: 'keel', audience: 'keel-api', jwksUrl: 'https://keel.internal/.well-known/jwks.json' });
 * const principal = await verify(bearerToken); // { kind: 'user', role, ... } | { kind: 'service', scopes, ... }
 * ```
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';

export type KeelRole = 'USER' | 'ADMIN';

export interface KeelUserPrincipal {
  kind: 'user';
  userId: string;
  sessionId: string;
  role: KeelRole;
  expiresAt: Date;
}

export interface KeelServicePrincipal {
  kind: 'service';
  serviceAccountId: string;
  clientId: string;
  /** The scopes the token grants (e.g. `projects:read`). */
  scopes: string[];
  expiresAt: Date;
}

export type KeelPrincipal = KeelUserPrincipal | KeelServicePrincipal;

/** The token is not a valid Keel access token for this issuer and audience; `reason` says why (jose's code). */
export class KeelTokenInvalidError extends Error {
  override name = 'KeelTokenInvalidError';
  constructor(readonly reason: string) {
    super(`Invalid Keel access token: ${reason}`);
  }
}

export interface KeelTokenVerifierOptions {
  /** Keel's JWT_ISSUER. */
  issuer: string;
  /** Keel's JWT_AUDIENCE: a token minted for another audience is refused. */
  audience: string;
  /** Keel's `<url>/.well-known/jwks.json`. */
  jwksUrl: string | URL;
  /** Seconds of clock difference tolerated (default 30). */
  clockToleranceSeconds?: number;
  /**
   * The least time between two fetches of the key set when a token names an unknown key (default
   * 30 s): a flood of tokens with made-up `kid`s cannot turn into a flood of requests to Keel.
   */
  refetchCooldownSeconds?: number;
  /** How long fetched keys are trusted before they are fetched again (default 10 minutes). */
  cacheMaxAgeSeconds?: number;
}

const ALGORITHMS = ['EdDSA', 'ES256'];

const str = (payload: JWTPayload, name: string): string | undefined => {
  const value = payload[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
};

function principalOf(payload: JWTPayload): KeelPrincipal {
  const sub = str(payload, 'sub');
  const expiresAt = new Date((payload.exp ?? 0) * 1000);
  if (!sub || payload.exp === undefined) throw new KeelTokenInvalidError('missing sub or exp');
  const clientId = str(payload, 'client_id');
  if (clientId !== undefined) {
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    return { kind: 'service', serviceAccountId: sub, clientId, scopes: scope.split(' ').filter((s) => s.length > 0), expiresAt };
  }
  const sid = str(payload, 'sid');
  const role = payload.role;
  if (!sid || (role !== 'USER' && role !== 'ADMIN')) throw new KeelTokenInvalidError('neither a user nor a service token');
  return { kind: 'user', userId: sub, sessionId: sid, role, expiresAt };
}

/** A function that verifies a Keel access token and returns who it speaks for, or throws KeelTokenInvalidError. */
export function createKeelTokenVerifier(options: KeelTokenVerifierOptions): (token: string) => Promise<KeelPrincipal> {
  const keys = createRemoteJWKSet(new URL(String(options.jwksUrl)), {
    cooldownDuration: (options.refetchCooldownSeconds ?? 30) * 1000,
    cacheMaxAge: (options.cacheMaxAgeSeconds ?? 600) * 1000,
    timeoutDuration: 5_000,
  });
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ALGORITHMS,
        typ: 'at+jwt',
        clockTolerance: options.clockToleranceSeconds ?? 30,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      return principalOf(payload);
    } catch (error) {
      if (error instanceof KeelTokenInvalidError) throw error;
      if (error instanceof errors.JOSEError) throw new KeelTokenInvalidError(error.code);
      throw new KeelTokenInvalidError('malformed');
    }
  };
}
