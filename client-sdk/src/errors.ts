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
export type FieldErrors = NonNullable<KeelErrorData['fieldErrors']>;
/** What exactly went wrong, for programs (`STALE_VERSION`, `LAST_ADMIN`...): `code` says only the class. */
export type ErrorReason = NonNullable<KeelErrorData['reason']>;

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
