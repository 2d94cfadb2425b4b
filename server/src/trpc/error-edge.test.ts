import { TRPCError } from '@trpc/server';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DatabaseConnectionError } from '../db/faults.js';
import { Prisma } from '../generated/prisma/client.js';
import { AppError } from '../lib/errors.js';
import { DATABASE_RETRY_AFTER_SECONDS, describeError, errorHeaders, toTRPCError } from './error-edge.js';

const internal = (cause: unknown) => new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause });
const prismaError = (code: string, meta?: Record<string, unknown>) =>
  new Prisma.PrismaClientKnownRequestError('prisma said no', { code, clientVersion: 'test', ...(meta ? { meta } : {}) });

describe('toTRPCError', () => {
  it('maps domain errors by their code and keeps the domain error as cause', () => {
    const appError = new AppError('CONFLICT', 'Stale version.', { fieldErrors: { version: ['stale'] } });
    const mapped = toTRPCError(internal(appError));
    expect(mapped.code).toBe('CONFLICT');
    expect(mapped.message).toBe('Stale version.');
    expect(mapped.cause).toBe(appError);
    expect(toTRPCError(internal(new AppError('INTERNAL', 'boom'))).code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('maps a value the database refused (out of range, too long, malformed) to BAD_REQUEST, not INTERNAL', () => {
    const outOfRange = prismaError('P2020', {
      driverAdapterError: { name: 'DriverAdapterError', cause: { kind: 'ValueOutOfRange', originalCode: '22003' } },
    });
    const mapped = toTRPCError(internal(outOfRange));
    expect(mapped.code).toBe('BAD_REQUEST');
    expect(mapped.message).toMatch(/does not fit its field/);
    const fromPg = Object.assign(new pg.DatabaseError('invalid input syntax for type uuid', 0, 'error'), { code: '22P02' });
    expect(toTRPCError(internal(fromPg)).code).toBe('BAD_REQUEST');
    expect(describeError(mapped, { production: true, requestId: 'r' })).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it('maps a unique violation to CONFLICT naming the field', () => {
    const mapped = toTRPCError(internal(prismaError('P2002', { target: ['email'] })));
    expect(mapped.code).toBe('CONFLICT');
    expect(mapped.message).toBe('A record with this email already exists.');
    expect((mapped.cause as AppError).fieldErrors).toEqual({ email: ['already exists'] });
    const viaAdapter = toTRPCError(
      internal(prismaError('P2002', { driverAdapterError: { cause: { constraint: { fields: ['"name"'] } } } })),
    );
    expect(viaAdapter.message).toBe('A record with this name already exists.');
    // What @prisma/adapter-pg 7.10 really reports for `user.create` with a taken email: the index, not the fields.
    const realAdapter = toTRPCError(
      internal(
        prismaError('P2002', {
          driverAdapterError: {
            name: 'DriverAdapterError',
            cause: {
              originalCode: '23505',
              originalMessage: 'duplicate key value violates unique constraint "users_email_key"',
              kind: 'UniqueConstraintViolation',
              constraint: { index: 'users_email_key' },
              table: 'users',
            },
          },
          modelName: 'User',
        }),
      ),
    );
    expect(realAdapter.message).toBe('A record with this email already exists.');
    expect((realAdapter.cause as AppError).fieldErrors).toEqual({ email: ['already exists'] });
    const snakeColumn = toTRPCError(
      internal(
        prismaError('P2002', { driverAdapterError: { cause: { constraint: { index: 'teams_display_name_key' }, table: 'teams' } } }),
      ),
    );
    expect(snakeColumn.message).toBe('A record with this displayName already exists.');
    const unknownIndex = toTRPCError(
      internal(prismaError('P2002', { driverAdapterError: { cause: { constraint: { index: 'custom_idx' }, table: 'teams' } } })),
    );
    expect(unknownIndex.message).toBe('A record with this value already exists.');
  });

  it('maps P2025 to NOT_FOUND and P2003 to BAD_REQUEST, and leaves other Prisma codes internal', () => {
    expect(toTRPCError(internal(prismaError('P2025'))).code).toBe('NOT_FOUND');
    expect(toTRPCError(internal(prismaError('P2003'))).code).toBe('BAD_REQUEST');
    expect(toTRPCError(internal(prismaError('P2010'))).code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('maps an unreachable database to SERVICE_UNAVAILABLE with Retry-After, and a statement timeout to TIMEOUT without', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' });
    const unavailable = toTRPCError(internal(new Error('wrapped', { cause: refused })));
    expect(unavailable.code).toBe('SERVICE_UNAVAILABLE');
    expect(unavailable.message).toBe('The database is unavailable. Retry later.');
    expect(unavailable.cause).toBeInstanceOf(AppError);
    expect((unavailable.cause as AppError).retryAfterSeconds).toBe(DATABASE_RETRY_AFTER_SECONDS);
    const terminated = Object.assign(new pg.DatabaseError('terminating connection due to administrator command', 0, 'error'), {
      code: '57P01',
    });
    expect(toTRPCError(internal(terminated)).code).toBe('SERVICE_UNAVAILABLE');
    const timeout = toTRPCError(internal(Object.assign(new pg.DatabaseError('canceling statement', 0, 'error'), { code: '57014' })));
    expect(timeout.code).toBe('TIMEOUT');
    expect(timeout.message).toBe('The database did not answer in time. Retry later.');
    expect(timeout.cause).not.toBeInstanceOf(AppError);
  });

  it('maps a transaction that could not start or finish in time (P2028), a deadlock and an exhausted pool to SERVICE_UNAVAILABLE "busy"', () => {
    for (const cause of [
      prismaError('P2028'),
      prismaError('P2034'),
      new DatabaseConnectionError('pool-timeout', { cause: new Error('timeout exceeded when trying to connect') }),
    ]) {
      const mapped = toTRPCError(internal(cause));
      expect(mapped.code).toBe('SERVICE_UNAVAILABLE');
      expect(mapped.message).toBe('The database is busy. Retry later.');
      expect((mapped.cause as AppError).retryAfterSeconds).toBe(DATABASE_RETRY_AFTER_SECONDS);
      expect((mapped.cause as AppError).cause).toBe(cause);
    }
  });

  it('maps what Prisma 7 with adapter-pg really throws for a stopped and for an unresponsive database', () => {
    // Seen in tests/e2e/database-outage.test.ts: connection refused, then connect timeout (DATABASE_CONNECT_TIMEOUT_MS).
    const refused = new Prisma.PrismaClientKnownRequestError(
      "\nInvalid `prisma.user.count()` invocation:\n\n\nCan't reach database server at 127.0.0.1:41385",
      { code: 'P1001', clientVersion: '7.10.1' },
    );
    expect(toTRPCError(internal(refused)).code).toBe('SERVICE_UNAVAILABLE');
    // pg's own error has no code: Keel's pool names it (server/src/db/connections.ts).
    const timedOut = new DatabaseConnectionError('connect', {
      cause: new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') }),
    });
    expect(toTRPCError(internal(timedOut)).code).toBe('SERVICE_UNAVAILABLE');
    expect(toTRPCError(internal(new DatabaseConnectionError('no-reply', { cause: new Error('x') }))).code).toBe('TIMEOUT');
  });

  it('reads no message text: an error that only says "timeout exceeded when trying to connect" stays internal', () => {
    expect(toTRPCError(internal(new Error('timeout exceeded when trying to connect'))).code).toBe('INTERNAL_SERVER_ERROR');
    expect(toTRPCError(internal(new Error('canceling statement due to statement timeout'))).code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('passes non-internal errors and unknown failures through unchanged', () => {
    const notFound = new TRPCError({ code: 'NOT_FOUND' });
    expect(toTRPCError(notFound)).toBe(notFound);
    const unknown = internal(new Error('something else'));
    expect(toTRPCError(unknown)).toBe(unknown);
  });
});

describe('describeError (the answer both transports send)', () => {
  const dev = { production: false, requestId: 'req-1' };

  it('answers a domain error with its status, reason, field errors and Retry-After header', () => {
    const appError = new AppError('CONFLICT', 'A call is running.', {
      reason: 'IDEMPOTENCY_KEY_IN_PROGRESS',
      retryAfterSeconds: 2,
      fieldErrors: { version: ['is stale'] },
    });
    const answer = describeError(toTRPCError(internal(appError)), dev);
    expect(answer).toEqual({
      status: 409,
      code: 'CONFLICT',
      reason: 'IDEMPOTENCY_KEY_IN_PROGRESS',
      message: 'A call is running.',
      fieldErrors: { version: ['is stale'] },
      retryAfterSeconds: 2,
      headers: { 'cache-control': 'no-store', 'retry-after': '2' },
    });
  });

  it('turns a zod failure into "Invalid input." with field errors keyed by dotted path', () => {
    const zodError = z.object({ items: z.array(z.object({ name: z.string() })) }).safeParse({ items: [{ name: 1 }] }).error;
    const answer = describeError(new TRPCError({ code: 'BAD_REQUEST', cause: zodError }), dev);
    expect(answer.status).toBe(400);
    expect(answer.message).toBe('Invalid input.');
    expect(Object.keys(answer.fieldErrors ?? {})).toEqual(['items.0.name']);
  });

  it('answers TIMEOUT with 504, not 408, and asks for a Bearer token on UNAUTHORIZED', () => {
    expect(describeError(new TRPCError({ code: 'TIMEOUT', message: 'slow' }), dev).status).toBe(504);
    const unauthorized = describeError(new TRPCError({ code: 'UNAUTHORIZED', message: 'no' }), dev);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['www-authenticate']).toBe('Bearer realm="keel"');
  });

  it('hides the message of an unexpected error in production behind the request id, and keeps it outside', () => {
    const error = internal(new Error('secret detail'));
    error.message = 'secret detail';
    expect(describeError(error, { production: true, requestId: 'req-9' }).message).toBe('Internal server error. Reference: req-9.');
    expect(describeError(error, dev).message).toBe('secret detail');
  });

  it('gives every answer cache-control: no-store, errors or none', () => {
    expect(errorHeaders([])).toEqual({ 'cache-control': 'no-store' });
  });
});
