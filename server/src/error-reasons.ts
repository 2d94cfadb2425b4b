/**
 * Every machine-readable error reason the API answers (`data.reason` on /trpc, `reason` on /api),
 * gathered from the features that declare them. `code` says the class of an error (CONFLICT);
 * `reason` says which one (STALE_VERSION). The SDK exports the union; the OpenAPI error schema
 * lists it. Imports only the reason lists: anything may import this module.
 */
import { GENERAL_REASONS } from './lib/reasons.js';
import { LIVE_REASONS } from './live/reasons.js';
import { ACCOUNT_REASONS } from './modules/account/reasons.js';
import { PROJECT_REASONS } from './modules/projects/reasons.js';
import { SERVICE_ACCOUNT_REASONS } from './modules/service-accounts/reasons.js';
import { USER_REASONS } from './modules/users/reasons.js';

export const ERROR_REASONS = [
  ...GENERAL_REASONS,
  ...PROJECT_REASONS,
  ...USER_REASONS,
  ...ACCOUNT_REASONS,
  ...SERVICE_ACCOUNT_REASONS,
  ...LIVE_REASONS,
] as const;
export type ErrorReason = (typeof ERROR_REASONS)[number];
