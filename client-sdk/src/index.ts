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
  type KeelServiceGetTokenOptions,
  type KeelServiceTokenOptions,
  type KeelSessionHelpers,
  type SubscriptionContext,
  type SubscriptionTransport,
} from './client.js';
export {
  type ErrorReason,
  type FieldErrors,
  isKeelError,
  type KeelError,
  type KeelErrorCode,
  type KeelErrorData,
  type KeelErrorWithCode,
} from './errors.js';
export type { AuthMode, RefreshOutcome, SessionExpiredError } from './session.js';
export { type KeelTokens, memoryStorage, type TokenStorage } from './storage.js';
export type {
  AdminUser,
  AppRouter,
  AuthResult,
  Project,
  ProjectPage,
  Role,
  RouterInputs,
  RouterOutputs,
  SessionInfo,
  Task,
  TaskPage,
  TaskStatus,
  User,
} from './types.js';
