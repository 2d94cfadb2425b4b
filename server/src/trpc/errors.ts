import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
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

const UNAVAILABLE_PATTERNS = [
  /timeout exceeded when trying to connect/i,
  /connection terminated/i,
  /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT/,
  /the database system is (starting up|shutting down)/i,
  /terminating connection due to administrator command/i,
  /Connection (closed|ended)/i,
  /can't reach database server/i,
  /database (server )?not reachable/i,
];

/**
 * Translates whatever a procedure threw into the transport's error, in one place:
 * domain errors by their code, Prisma's known request errors by theirs, database outages and
 * timeouts into SERVICE_UNAVAILABLE / TIMEOUT. Anything else stays INTERNAL_SERVER_ERROR,
 * whose message the formatter hides in production.
 */
export function toTRPCError(error: TRPCError): TRPCError {
  if (error.code !== 'INTERNAL_SERVER_ERROR') return error;
  const chain = causes(error.cause);
  for (const cause of chain) {
    if (cause instanceof AppError) {
      return new TRPCError({ code: APP_TO_TRPC[cause.code], message: cause.message, cause });
    }
    if (cause instanceof Prisma.PrismaClientKnownRequestError) {
      const mapped = fromPrismaError(cause);
      if (mapped) return mapped;
    }
  }
  for (const cause of chain) {
    const code = (cause as { code?: unknown }).code;
    const message = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
    if (code === '57014' || /statement timeout|canceling statement|Query read timeout/i.test(message)) {
      return new TRPCError({ code: 'TIMEOUT', message: 'The database did not answer in time. Retry later.', cause: error.cause });
    }
    if (UNAVAILABLE_PATTERNS.some((p) => p.test(message)) || (typeof code === 'string' && UNAVAILABLE_PATTERNS.some((p) => p.test(code)))) {
      return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The database is unavailable. Retry later.', cause: error.cause });
    }
  }
  return error;
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
