import type { AppDeps } from '../../server/src/deps.js';
import { createSession } from '../../server/src/modules/auth/sessions.js';
import type { AuthUser } from '../../server/src/modules/auth/types.js';
import { createCaller } from '../../server/src/router.js';
import { type Context, createContextInner, type RequestFacts, requestFacts } from '../../server/src/trpc/context.js';
import type { TestUser } from './factories.js';

/** The context of an in-process call with these request facts (defaults for the rest). */
export function contextOf(deps: AppDeps, request: Partial<RequestFacts> = {}): Context {
  return createContextInner({ services: deps.services, config: deps.config, logger: deps.logger, request: requestFacts(request) });
}

/** Calls procedures in-process, through the same middleware and error mapping as HTTP. */
export function callerWith(deps: AppDeps, request: Partial<RequestFacts> = {}) {
  return createCaller(contextOf(deps, request));
}

export interface SignedIn {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

/** A real session and access token for `user`, as a login would create them (without the hashing). */
export async function signIn(deps: AppDeps, user: Pick<TestUser, 'id' | 'role'>): Promise<SignedIn> {
  const issued = await createSession(deps.database.prisma, {
    userId: user.id,
    userAgent: 'vitest',
    ip: '127.0.0.1',
    now: deps.now(),
    policy: deps.config.auth,
  });
  const access = await deps.accessTokens.issue({ userId: user.id, sessionId: issued.sessionId, role: user.role });
  return { accessToken: access.token, refreshToken: issued.refreshToken, sessionId: issued.sessionId };
}

/** A caller acting as `user` (through a real access token and the real auth middleware), or anonymous. */
export async function callerFor(deps: AppDeps, user: Pick<TestUser, 'id' | 'role'> | null, meta: Partial<RequestFacts> = {}) {
  if (!user) return callerWith(deps, meta);
  const { accessToken } = await signIn(deps, user);
  return callerWith(deps, { ip: '127.0.0.1', ...meta, authorization: `Bearer ${accessToken}` });
}

/**
 * A caller acting as `principal` without any token: the context carries the caller directly
 * (trpc/context.ts `principal`), as a script or a test of a service's rules may want.
 */
export function callerAs(deps: AppDeps, principal: AuthUser, request: Partial<RequestFacts> = {}) {
  return createCaller(
    createContextInner({ services: deps.services, config: deps.config, logger: deps.logger, request: requestFacts(request), principal }),
  );
}
