/**
 * The one error type services throw. It carries a domain code that the tRPC layer maps to a
 * transport code in one place (trpc/errors.ts); services never import `@trpc/server`.
 */
import type { ErrorReason } from '../error-reasons.js';

/** Refusals the caller caused (4xx). */
const CALLER_ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'PRECONDITION_FAILED',
  'UNPROCESSABLE_CONTENT',
  'TOO_MANY_REQUESTS',
] as const;

export const APP_ERROR_CODES = [...CALLER_ERROR_CODES, 'SERVICE_UNAVAILABLE', 'TIMEOUT', 'INTERNAL'] as const;

export type AppErrorCode = (typeof APP_ERROR_CODES)[number];

/** Field errors keyed by the dotted path of the offending input (`items.0.name`); `_` for the input as a whole. */
export type FieldErrors = Record<string, string[]>;

export interface AppErrorOptions {
  cause?: unknown;
  /** Per-field messages a client can show next to inputs (e.g. `{ email: ['already taken'] }`). */
  fieldErrors?: FieldErrors;
  /** Seconds a client should wait before retrying (TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE). */
  retryAfterSeconds?: number;
  /** What exactly went wrong, for programs (`STALE_VERSION`, `IDEMPOTENCY_KEY_REUSED`): `code` says only the class. */
  reason?: ErrorReason;
}

/**
 * Refusals a caller caused (4xx): their stack says nothing an operator needs (they are never
 * logged with one), and capturing it was a tenth of what a shed sign-in cost under a flood.
 * Faults (INTERNAL, SERVICE_UNAVAILABLE, TIMEOUT) keep theirs.
 */
const WITHOUT_STACK = new Set<AppErrorCode>(CALLER_ERROR_CODES);

export class AppError extends Error {
  readonly fieldErrors: FieldErrors | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly reason: ErrorReason | undefined;

  constructor(
    readonly code: AppErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    const stackTraceLimit = Error.stackTraceLimit;
    if (WITHOUT_STACK.has(code)) Error.stackTraceLimit = 0;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'AppError';
    this.fieldErrors = options.fieldErrors;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.reason = options.reason;
  }
}

/** `<What> not found.`: the one answer for a row that is not there or not the caller's to see. */
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found.`);
