/**
 * The one error edge of both transports (/trpc and /api): whatever a procedure threw becomes a
 * tRPC error of the right code (`toTRPCError`, run by the procedures' pipeline in init.ts), then
 * one description of the answer, `{ status, code, reason, message, fieldErrors, headers }`
 * (`describeError`), which the tRPC error formatter and the REST routes both send, and one log line
 * (`logProcedureError`). Services throw `AppError`s and never import this module.
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { ZodError } from 'zod';
import { classifyDatabaseError, type DatabaseFault, isRefusedValue } from '../db/faults.js';
import type { ErrorReason } from '../error-reasons.js';
import { Prisma } from '../generated/prisma/client.js';
import { AppError, type AppErrorCode, type FieldErrors } from '../lib/errors.js';
import type { Log } from '../logger.js';
import { InsufficientScopeError, insufficientScopeChallenge } from '../modules/service-accounts/scopes.js';

const APP_TO_TRPC: Record<AppErrorCode, TRPC_ERROR_CODE_KEY> = {
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
  UNPROCESSABLE_CONTENT: 'UNPROCESSABLE_CONTENT',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  INTERNAL: 'INTERNAL_SERVER_ERROR',
};

/** The error's cause chain, outermost first, bounded against cycles. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 10 && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/** Seconds a client should wait before retrying a request the database could not serve. */
export const DATABASE_RETRY_AFTER_SECONDS = 1;

/** Database faults (db/faults.ts) in the transport's terms; 503s carry Retry-After through their AppError. */
function fromDatabaseFault(fault: DatabaseFault, cause: unknown): TRPCError {
  if (fault === 'timeout') {
    return new TRPCError({ code: 'TIMEOUT', message: 'The database did not answer in time. Retry later.', cause });
  }
  const message = fault === 'busy' ? 'The database is busy. Retry later.' : 'The database is unavailable. Retry later.';
  const appError = new AppError('SERVICE_UNAVAILABLE', message, { cause, retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS });
  return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message, cause: appError });
}

/**
 * Translates whatever a procedure threw into the transport's error, in one place:
 * domain errors by their code, Prisma's known request errors by theirs, database faults
 * (classified by SQLSTATE and error classes in db/faults.ts) into SERVICE_UNAVAILABLE (503, with
 * Retry-After) or TIMEOUT (504). Anything else stays INTERNAL_SERVER_ERROR, whose message the
 * formatter hides in production.
 */
export function toTRPCError(error: TRPCError): TRPCError {
  if (error.code !== 'INTERNAL_SERVER_ERROR') return error;
  for (const cause of causes(error.cause)) {
    if (cause instanceof AppError) {
      return new TRPCError({ code: APP_TO_TRPC[cause.code], message: cause.message, cause });
    }
    if (cause instanceof Prisma.PrismaClientKnownRequestError) {
      const mapped = fromPrismaError(cause);
      if (mapped) return mapped;
    }
  }
  const fault = classifyDatabaseError(error.cause);
  if (fault) return fromDatabaseFault(fault, error.cause);
  if (isRefusedValue(error.cause)) {
    const appError = new AppError('BAD_REQUEST', REFUSED_VALUE, { cause: error.cause });
    return new TRPCError({ code: 'BAD_REQUEST', message: REFUSED_VALUE, cause: appError });
  }
  return error;
}

const REFUSED_VALUE = 'A value in the input does not fit its field (out of range, too long or malformed).';

function fromPrismaError(error: Prisma.PrismaClientKnownRequestError): TRPCError | undefined {
  switch (error.code) {
    case 'P2002': {
      const fields = uniqueFields(error);
      const label = fields.length > 0 ? fields.join(', ') : 'value';
      const appError = new AppError('CONFLICT', `A record with this ${label} already exists.`, {
        cause: error,
        fieldErrors: Object.fromEntries(fields.map((f) => [f, ['already exists']])),
      });
      return new TRPCError({ code: 'CONFLICT', message: appError.message, cause: appError });
    }
    case 'P2025':
      return new TRPCError({ code: 'NOT_FOUND', message: 'Not found.', cause: error });
    case 'P2003':
      return new TRPCError({ code: 'BAD_REQUEST', message: 'A referenced record does not exist.', cause: error });
    default:
      return undefined;
  }
}

/** The fields of a violated unique constraint, whichever way this Prisma version reports them. */
function uniqueFields(error: Prisma.PrismaClientKnownRequestError): string[] {
  const meta = error.meta as
    | { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown; index?: unknown }; table?: unknown } } }
    | undefined;
  const cause = meta?.driverAdapterError?.cause;
  const fromAdapter = cause?.constraint?.fields;
  const target = Array.isArray(fromAdapter) ? fromAdapter : meta?.target;
  if (Array.isArray(target)) return target.map((f) => String(f).replace(/^"|"$/g, ''));
  if (typeof target === 'string') return [target];
  // @prisma/adapter-pg reports only the index when PostgreSQL names it (it always does):
  // Prisma names unique indexes `<table>_<column>_key`, and Keel maps camelCase fields to snake_case columns.
  const index = cause?.constraint?.index;
  if (typeof index === 'string' && typeof cause?.table === 'string' && index.startsWith(`${cause.table}_`) && index.endsWith('_key')) {
    const column = index.slice(cause.table.length + 1, -'_key'.length);
    if (column !== '') return [column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())];
  }
  return [];
}

/** What an error answers, whichever the transport. */
export interface ErrorAnswer {
  /** The HTTP status (TIMEOUT is 504, see below). */
  status: number;
  code: TRPC_ERROR_CODE_KEY;
  reason: ErrorReason | undefined;
  /** For people; an unexpected error's says only "Internal server error" and the reference in production. */
  message: string;
  fieldErrors: FieldErrors | undefined;
  retryAfterSeconds: number | undefined;
  /** Headers the error calls for (WWW-Authenticate, Retry-After), beside those of every answer. */
  headers: Record<string, string>;
}

/**
 * tRPC answers TIMEOUT with 408, which tells a client that *it* was too slow, and some clients
 * (OkHttp) resend the request on a 408, even a POST. Keel's TIMEOUT is the database not answering
 * in time: 504, like a gateway whose upstream timed out.
 */
export const httpStatusOf = (code: string, status: number): number => (code === 'TIMEOUT' ? 504 : status);

function zodFieldErrors(error: ZodError): FieldErrors {
  const fields: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '_';
    fields[key] = [...(fields[key] ?? []), issue.message];
  }
  return fields;
}

/** The answer to `error` (already mapped by `toTRPCError`). Without `production` known, assume it. */
export function describeError(error: TRPCError, options: { production: boolean; requestId: string | undefined }): ErrorAnswer {
  const isInputError = error.code === 'BAD_REQUEST' && error.cause instanceof ZodError;
  const appError = error.cause instanceof AppError ? error.cause : undefined;
  // A malformed body or ?input= fails JSON.parse: say so in our words, not the parser's.
  const isMalformed = error.code === 'BAD_REQUEST' && error.cause instanceof SyntaxError;
  let message = error.message;
  if (isInputError) message = 'Invalid input.';
  else if (isMalformed) message = 'Malformed request: the input is not valid JSON.';
  else if (error.code === 'INTERNAL_SERVER_ERROR' && options.production)
    message = `Internal server error. Reference: ${options.requestId ?? 'unknown'}.`;
  return {
    status: httpStatusOf(error.code, getHTTPStatusCodeFromError(error)),
    code: error.code,
    reason: appError?.reason,
    message,
    fieldErrors: isInputError ? zodFieldErrors(error.cause) : appError?.fieldErrors,
    retryAfterSeconds: appError?.retryAfterSeconds,
    headers: errorHeaders([error]),
  };
}

/** Headers of every API answer, and those its errors call for: one set for /trpc and /api alike. */
export function errorHeaders(errors: readonly TRPCError[]): Record<string, string> {
  // API answers carry personal data and tokens: never cached by browsers or proxies.
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (errors.length === 0) return headers;
  if (errors.some((e) => e.code === 'UNAUTHORIZED')) headers['www-authenticate'] = 'Bearer realm="keel"';
  const scopeError = errors.find((e) => e.cause instanceof InsufficientScopeError)?.cause;
  if (scopeError instanceof InsufficientScopeError) headers['www-authenticate'] ??= insufficientScopeChallenge(scopeError);
  const retryAfter = Math.max(0, ...errors.map((e) => (e.cause instanceof AppError ? (e.cause.retryAfterSeconds ?? 0) : 0)));
  if (retryAfter > 0) headers['retry-after'] = String(retryAfter);
  return headers;
}

/**
 * One log line per failed call: an unexpected error with its cause (error level), a value the
 * database refused (warn: an input schema lacks a bound), any other refusal at debug.
 */
export function logProcedureError(log: Log, error: TRPCError, path: string | undefined): void {
  if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error, path }, 'procedure failed');
  else if (error.code === 'BAD_REQUEST' && isRefusedValue(error.cause))
    log.warn({ err: error.cause, path }, 'the database refused a value of the input: its schema lacks a bound');
  else log.debug({ code: error.code, path }, 'procedure rejected');
}
