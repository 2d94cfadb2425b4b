import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { classifyDatabaseError, type DatabaseFault } from '../db/faults.js';
import { Prisma } from '../generated/prisma/client.js';
import { AppError, type AppErrorCode } from '../lib/errors.js';

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
  return fault ? fromDatabaseFault(fault, error.cause) : error;
}

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
