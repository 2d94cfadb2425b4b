import { TRPCClientError } from '@trpc/client';
import type { AppErrorShape } from './router.js';
import type { AppRouter } from './types.js';

/** What a failed call throws: the server's error (`data` set) or a transport failure (`data` undefined). */
export type KeelError = TRPCClientError<AppRouter>;
/** The server's error details: tRPC `code`, `httpStatus`, `requestId`, `fieldErrors`, `retryAfterSeconds`. */
export type KeelErrorData = AppErrorShape['data'];
/** `UNAUTHORIZED`, `NOT_FOUND`, `CONFLICT`... */
export type KeelErrorCode = KeelErrorData['code'];
/** Messages by the dotted path of the offending input field (`name`, `items.0.title`); `_` for the input as a whole. */
export type FieldErrors = Record<string, string[]>;

/** A `KeelError` the server answered with `code`. */
export type KeelErrorWithCode<TCode extends KeelErrorCode> = KeelError & { readonly data: KeelErrorData & { code: TCode } };

/**
 * Narrows what a call threw to a `KeelError`, and with `code` to one the server answered with that
 * code (then `error.data` is set). Errors of another copy of `@trpc/client` count too.
 */
export function isKeelError(error: unknown): error is KeelError;
export function isKeelError<TCode extends KeelErrorCode>(error: unknown, code: TCode): error is KeelErrorWithCode<TCode>;
export function isKeelError(error: unknown, code?: KeelErrorCode): boolean {
  const isClientError = error instanceof TRPCClientError || (error instanceof Error && error.name === 'TRPCClientError');
  if (!isClientError) return false;
  return code === undefined || (error as KeelError).data?.code === code;
}

/**
 * The `reason` values of the account procedures (`error.data.reason`): what exactly went wrong,
 * beyond the class `code` says. Compare with `hasReason`, never with the message.
 */
export type AccountErrorReason =
  /** REQUIRE_VERIFIED_EMAIL is on and the email is not verified yet (FORBIDDEN). */
  | 'EMAIL_NOT_VERIFIED'
  /** The sign-in challenge expired, was used, or saw 5 wrong codes: sign in again (UNAUTHORIZED). */
  | 'TWO_FACTOR_CHALLENGE_INVALID'
  /** A wrong, reused or missing code of the authenticator app, or a used recovery code (BAD_REQUEST). */
  | 'INVALID_TWO_FACTOR_CODE'
  | 'TWO_FACTOR_ALREADY_ENABLED'
  | 'TWO_FACTOR_NOT_SET_UP'
  | 'TWO_FACTOR_NOT_ENABLED'
  /** The last active admin cannot be deleted (CONFLICT). */
  | 'LAST_ADMIN'
  /** A provider sign-in whose state is unknown, used or expired: start again (UNAUTHORIZED). */
  | 'OIDC_STATE_INVALID'
  /** The provider refused the code, or its ID token failed a check (UNAUTHORIZED). */
  | 'OIDC_EXCHANGE_FAILED'
  /** The provider's email belongs to an account: sign in to it and link the provider there (CONFLICT). */
  | 'OIDC_ACCOUNT_EXISTS'
  /** The provider did not verify the email, so no account is made (FORBIDDEN). */
  | 'OIDC_EMAIL_NOT_VERIFIED'
  /** The provider account is linked to another Keel account (CONFLICT). */
  | 'OIDC_IDENTITY_TAKEN';

/** Whether a call failed with this `reason` (a `KeelError` the server answered). */
export function hasReason(error: unknown, reason: AccountErrorReason): error is KeelError {
  return isKeelError(error) && (error.data as { reason?: unknown } | undefined)?.reason === reason;
}
