import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Prisma } from '../generated/prisma/client.js';
import { classifyDatabaseError, DatabaseConnectionError, faultOfSqlState, isRefusedValue } from './faults.js';

/** A server error as pg reports it (pg-protocol's DatabaseError), with its SQLSTATE. */
function pgError(code: string, message = 'whatever the server said'): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  error.severity = code.startsWith('57P') ? 'FATAL' : 'ERROR';
  return error;
}

/** What @prisma/adapter-pg throws (DriverAdapterError: recognised by name, as Prisma does). */
function adapterError(cause: Record<string, unknown>): Error {
  return Object.assign(new Error(String(cause.kind)), { name: 'DriverAdapterError', cause });
}

const prismaError = (code: string, meta?: Record<string, unknown>) =>
  new Prisma.PrismaClientKnownRequestError('prisma said no', { code, clientVersion: '7.10.1', ...(meta ? { meta } : {}) });

const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect', errno: -111 });

describe('faultOfSqlState', () => {
  it('classifies by SQLSTATE class and code', () => {
    for (const code of ['08000', '08001', '08003', '08006', '08P01', '57P01', '57P02', '57P03', '53000', '53100', '53200', '53300']) {
      expect(faultOfSqlState(code), code).toBe('unavailable');
    }
    expect(faultOfSqlState('57014')).toBe('timeout');
    expect(faultOfSqlState('55P03')).toBe('timeout');
    expect(faultOfSqlState('40001')).toBe('busy');
    expect(faultOfSqlState('40P01')).toBe('busy');
    for (const code of ['23505', '23503', '22P02', '42P01', '28P01', '3D000', 'XX000', '57P04', '40002']) {
      expect(faultOfSqlState(code), code).toBeUndefined();
    }
  });
});

describe('classifyDatabaseError', () => {
  it("reads pg's server errors by code, wherever they sit in the cause chain", () => {
    expect(classifyDatabaseError(pgError('57P01', 'terminating connection due to administrator command'))).toBe('unavailable');
    expect(classifyDatabaseError(new Error('wrapped', { cause: pgError('57014') }))).toBe('timeout');
    expect(classifyDatabaseError(pgError('23505'))).toBeUndefined();
  });

  it("reads Node's socket errors by code and syscall", () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']) {
      expect(classifyDatabaseError(socketError(code)), code).toBe('unavailable');
    }
    // A code alone is not a socket error: it must come from a system call.
    expect(classifyDatabaseError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
  });

  it("reads the driver adapter's error kinds, and the SQLSTATE of its `postgres` kind", () => {
    expect(classifyDatabaseError(adapterError({ kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }))).toBe('unavailable');
    expect(classifyDatabaseError(adapterError({ kind: 'ConnectionClosed' }))).toBe('unavailable');
    expect(classifyDatabaseError(adapterError({ kind: 'TooManyConnections', cause: 'sorry' }))).toBe('unavailable');
    expect(classifyDatabaseError(adapterError({ kind: 'TransactionWriteConflict', originalCode: '40P01' }))).toBe('busy');
    expect(classifyDatabaseError(adapterError({ kind: 'postgres', code: '57014', originalCode: '57014', severity: 'ERROR' }))).toBe(
      'timeout',
    );
    expect(classifyDatabaseError(adapterError({ kind: 'postgres', code: '08006', severity: 'FATAL' }))).toBe('unavailable');
    expect(classifyDatabaseError(adapterError({ kind: 'UniqueConstraintViolation', originalCode: '23505' }))).toBeUndefined();
  });

  it("reads Prisma's codes, and the adapter error a Prisma error carries in its meta", () => {
    for (const code of ['P1001', 'P1002', 'P1008', 'P1011', 'P1017', 'P2024', 'P2037'])
      expect(classifyDatabaseError(prismaError(code)), code).toBe('unavailable');
    expect(classifyDatabaseError(prismaError('P2028'))).toBe('busy');
    expect(classifyDatabaseError(prismaError('P2034'))).toBe('busy');
    // Raw query failed (P2010): the statement timeout is in the adapter error.
    const raw = prismaError('P2010', { driverAdapterError: adapterError({ kind: 'postgres', code: '57014', originalCode: '57014' }) });
    expect(classifyDatabaseError(raw)).toBe('timeout');
    expect(classifyDatabaseError(prismaError('P2002'))).toBeUndefined();
    expect(classifyDatabaseError(prismaError('P2025'))).toBeUndefined();
  });

  it("names pg's code-less failures by Keel's own class", () => {
    const cause = new Error('Connection terminated unexpectedly');
    expect(classifyDatabaseError(new DatabaseConnectionError('connect', { cause }))).toBe('unavailable');
    expect(classifyDatabaseError(new DatabaseConnectionError('lost', { cause }))).toBe('unavailable');
    expect(classifyDatabaseError(new DatabaseConnectionError('pool-timeout', { cause }))).toBe('busy');
    expect(classifyDatabaseError(new DatabaseConnectionError('no-reply', { cause }))).toBe('timeout');
  });

  it('never reads message text: look-alike messages without a code or class are not database faults', () => {
    for (const message of [
      'timeout exceeded when trying to connect',
      'Connection terminated unexpectedly',
      'Client has encountered a connection error and is not queryable',
      'terminating connection due to administrator command',
      'canceling statement due to statement timeout',
      'Query read timeout',
    ]) {
      expect(classifyDatabaseError(new Error(message)), message).toBeUndefined();
    }
    expect(classifyDatabaseError('57P01')).toBeUndefined();
    expect(classifyDatabaseError(undefined)).toBeUndefined();
  });

  it('survives a cause cycle', () => {
    const a: Error & { cause?: unknown } = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(classifyDatabaseError(a)).toBeUndefined();
  });
});

describe('isRefusedValue', () => {
  it("recognises a value the database refused: SQLSTATE class 22 from pg or the adapter, and Prisma's codes for it", () => {
    expect(isRefusedValue(pgError('22003'))).toBe(true); // numeric value out of range
    expect(isRefusedValue(new Error('wrapped', { cause: pgError('22P02') }))).toBe(true); // invalid text representation
    expect(isRefusedValue(adapterError({ kind: 'ValueOutOfRange', originalCode: '22003' }))).toBe(true);
    expect(
      isRefusedValue(prismaError('P2020', { driverAdapterError: adapterError({ kind: 'ValueOutOfRange', originalCode: '22003' }) })),
    ).toBe(true);
    for (const code of ['P2000', 'P2006', 'P2007', 'P2033']) expect(isRefusedValue(prismaError(code)), code).toBe(true);
  });

  it('leaves everything else alone: constraint violations, faults, other Prisma codes, plain errors', () => {
    for (const error of [
      pgError('23505'),
      pgError('57014'),
      pgError('40001'),
      prismaError('P2002'),
      prismaError('P2025'),
      new Error('22003'),
    ]) {
      expect(isRefusedValue(error)).toBe(false);
    }
  });
});
