import type { Config } from '../../config.js';
import { AppError } from '../../lib/errors.js';
import { InvalidAccessTokenError } from '../auth/access-tokens.js';
import type { AuthUser } from '../auth/types.js';
import type { ServiceAccountService } from './service.js';
import type { ServiceTokens } from './tokens.js';

/**
 * The caller behind a service token: a USER-role principal carrying the token's grant, which the
 * procedure middleware checks against the procedure's scope. In strict mode (AUTH_STRICT_SESSIONS)
 * every call also checks that the account is not revoked: revocation then stops tokens at once;
 * otherwise they live until their expiry (SERVICE_TOKEN_TTL_SECONDS, 5 minutes by default).
 */
export async function authenticateService(
  services: { serviceTokens: ServiceTokens; serviceAccounts: ServiceAccountService },
  config: Config,
  token: string,
): Promise<AuthUser> {
  let grant: Awaited<ReturnType<ServiceTokens['verify']>>;
  try {
    grant = await services.serviceTokens.verify(token);
  } catch (error) {
    if (error instanceof InvalidAccessTokenError) throw new AppError('UNAUTHORIZED', 'Invalid or expired access token.');
    throw error;
  }
  if (config.auth.strictSessions && !(await services.serviceAccounts.isActive(grant.accountId))) {
    throw new AppError('UNAUTHORIZED', 'This service account is revoked.');
  }
  return {
    id: grant.accountId,
    role: 'USER',
    sessionId: grant.jti,
    service: { accountId: grant.accountId, clientId: grant.clientId, scopes: grant.scopes },
  };
}
