/**
 * The account service the `auth` router calls: credentials (credentials.ts), the session
 * lifecycle (session-lifecycle.ts) and mailed account tokens (account-tokens.ts), one object.
 * Dependencies come in as arguments; errors are `AppError`s. Transport concerns (cookies,
 * headers) stay in the router. Other modules name the caller through types.ts, never this file.
 */
import { createAccountTokens } from './account-tokens.js';
import { createCredentials } from './credentials.js';
import { createSessionLifecycle } from './session-lifecycle.js';
import type { AuthServiceDeps } from './types.js';

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: AuthServiceDeps) {
  return { ...createCredentials(deps), ...createSessionLifecycle(deps), ...createAccountTokens(deps) };
}
