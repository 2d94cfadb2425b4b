/**
 * The services procedures call, as one type: the composition root (deps.ts) builds them, the
 * tRPC context carries a reference to them. Types only, so `trpc/` need not import the root.
 */
import type { IdempotencyStore } from './lib/idempotency.js';
import type { LiveHub } from './live/hub.js';
import type { AccountService } from './modules/account/service.js';
import type { Authenticator } from './modules/auth/authenticate.js';
import type { OidcService } from './modules/auth/oidc/service.js';
import type { RateLimits } from './modules/auth/rate-limits.js';
import type { AuthService } from './modules/auth/service.js';
import type { TwoFactorService } from './modules/auth/two-factor/service.js';
import type { ProjectService } from './modules/projects/service.js';
import type { ServiceAccountService } from './modules/service-accounts/service.js';
import type { ServiceTokens } from './modules/service-accounts/tokens.js';
import type { TaskService } from './modules/tasks/service.js';
import type { UserService } from './modules/users/service.js';

export interface Services {
  auth: AuthService;
  /** `auth.twoFactor.*` (modules/auth/two-factor). */
  twoFactor: TwoFactorService;
  /** `auth.oidc.*` (modules/auth/oidc). */
  oidc: OidcService;
  /** Account deletion and export (modules/account). */
  account: AccountService;
  /** Access token to caller, for the auth middleware (trpc/init.ts). */
  authenticator: Authenticator;
  /** The general limit's `checkApi`, called by every procedure (trpc/init.ts). */
  rateLimits: RateLimits;
  /** Answers of mutations sent with an Idempotency-Key (trpc/init.ts). */
  idempotency: IdempotencyStore;
  projects: ProjectService;
  tasks: TaskService;
  users: UserService;
  serviceAccounts: ServiceAccountService;
  /** Service access tokens: issued by POST /oauth/token, verified by the procedure middleware. */
  serviceTokens: ServiceTokens;
  /** Live updates: the LISTEN connection and the open streams (server/src/live). */
  live: LiveHub;
}
