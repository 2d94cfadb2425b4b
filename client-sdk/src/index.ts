/**
 * @keel/client-sdk: the typed client of Keel's API. It knows the server only through types; no
 * server code is part of it.
 */
export {
  createKeelClient,
  createKeelServiceClient,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_URL_LENGTH,
  DEFAULT_REFRESH_MARGIN_SECONDS,
  type FetchLike,
  type HeadersOption,
  type KeelClient,
  type KeelClientOptions,
  type KeelServiceClientOptions,
  type KeelServiceCredentialsOptions,
  type KeelServiceGetTokenOptions,
  type KeelServiceTokenOptions,
  type KeelSessionHelpers,
  type SubscriptionContext,
  type SubscriptionTransport,
} from './client.js';
export {
  type ErrorReason,
  type FieldErrors,
  hasReason,
  isKeelError,
  type KeelError,
  type KeelErrorCode,
  type KeelErrorData,
  type KeelErrorWithCode,
} from './errors.js';
export { DEFAULT_SERVICE_REFRESH_MARGIN_SECONDS, KeelTokenError } from './service-token.js';
export type { AuthMode, RefreshOutcome, SessionExpiredError } from './session.js';
export { type KeelTokens, memoryStorage, type TokenStorage } from './storage.js';
export type {
  AdminUser,
  AppRouter,
  AuthResult,
  LoginResult,
  Project,
  ProjectPage,
  Role,
  RouterInputs,
  RouterOutputs,
  SessionInfo,
  Task,
  TaskPage,
  TaskStatus,
  TwoFactorChallenge,
  TwoFactorStatus,
  User,
} from './types.js';
export { isTwoFactorChallenge } from './types.js';
