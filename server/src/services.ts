/**
 * The services procedures call, as one type: the composition root (deps.ts) builds them, the
 * tRPC context carries a reference to them. Types only, so `trpc/` need not import the root.
 */
import type { IdempotencyStore } from './lib/idempotency.js';
import type { LiveHub } from './live/hub.js';
import type { Authenticator } from './modules/auth/authenticate.js';
import type { RateLimits } from './modules/auth/rate-limits.js';
import type { AuthService } from './modules/auth/service.js';
import type { ProjectService } from './modules/projects/service.js';
import type { TaskService } from './modules/tasks/service.js';
import type { UserService } from './modules/users/service.js';

export interface Services {
  auth: AuthService;
  /** Access token to caller, for the auth middleware (trpc/init.ts). */
  authenticator: Authenticator;
  /** The general limit's `checkApi`, called by every procedure (trpc/init.ts). */
  rateLimits: RateLimits;
  /** Answers of mutations sent with an Idempotency-Key (trpc/init.ts). */
  idempotency: IdempotencyStore;
  projects: ProjectService;
  tasks: TaskService;
  users: UserService;
  /** Live updates: the LISTEN connection and the open streams (server/src/live). */
  live: LiveHub;
}
