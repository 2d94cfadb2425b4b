/**
 * What a failed database call means for the request that made it. Decided from codes and classes
 * only: PostgreSQL's SQLSTATE, Node's socket error codes, the driver adapter's error kinds,
 * Prisma's error codes, and Keel's own `DatabaseConnectionError` for the failures pg reports
 * without any code. Message texts change between versions and languages (lc_messages), codes
 * do not. See docs/decisions/0012-database-faults-and-drain.md.
 */
import pg from 'pg';
import { Prisma } from '../generated/prisma/client.js';

/**
 * - `unavailable`: no connection could be had, or it was lost (database down, restarting,
 *   unreachable, out of connections); retry later. A connection lost during COMMIT leaves the
 *   outcome unknown to us: the write may have happened (retries need idempotency to be safe).
 * - `busy`: the database is up but this work lost a race for it: a transaction could not start or
 *   finish within its time (pool saturated, Prisma P2028), a deadlock or serialization failure
 *   (40P01, 40001). The transaction was rolled back whole: the same request may simply be retried.
 * - `timeout`: the database did not answer in time (statement timeout, query canceled, a lock not
 *   granted in time, no reply on the socket).
 */
export type DatabaseFault = 'unavailable' | 'busy' | 'timeout';

/** How a connection failed, for the failures pg reports as plain `Error`s with no code. */
export type ConnectionFailure = 'connect' | 'pool-timeout' | 'lost' | 'no-reply';

const CONNECTION_FAILURE_MESSAGES: Record<ConnectionFailure, string> = {
  connect: 'could not open a database connection',
  'pool-timeout': 'every database connection stayed busy for the whole connect timeout',
  lost: 'the database connection was lost',
  'no-reply': 'the database did not reply in time; the connection was closed',
};

/**
 * Raised by Keel's pool (db/connections.ts) in place of pg's code-less errors ("timeout exceeded
 * when trying to connect", "Connection terminated unexpectedly", "Client has encountered a
 * connection error and is not queryable", ...), so they can be told apart by class. The original
 * error is the cause.
 */
export class DatabaseConnectionError extends Error {
  override readonly name = 'DatabaseConnectionError';
  constructor(
    readonly failure: ConnectionFailure,
    options: { cause: unknown },
  ) {
    super(CONNECTION_FAILURE_MESSAGES[failure], options);
  }
}

const CONNECTION_FAULTS: Record<ConnectionFailure, DatabaseFault> = {
  connect: 'unavailable',
  'pool-timeout': 'busy',
  lost: 'unavailable',
  'no-reply': 'timeout',
};

/** Node's socket-level errors that mean the database host cannot be reached or dropped us. */
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL's error codes (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * class 08 connection exception, 53 insufficient resources (too many connections, out of memory
 * or disk), 57P01/57P02/57P03 admin shutdown, crash shutdown, cannot connect now (starting or
 * stopping); 57014 query canceled (statement_timeout), 55P03 lock not available (lock_timeout);
 * 40001/40P01 serialization failure and deadlock.
 */
export function faultOfSqlState(code: string): DatabaseFault | undefined {
  if (code.startsWith('08') || code.startsWith('53')) return 'unavailable';
  switch (code) {
    case '57P01':
    case '57P02':
    case '57P03':
      return 'unavailable';
    case '57014':
    case '55P03':
      return 'timeout';
    case '40001':
    case '40P01':
      return 'busy';
    default:
      return undefined;
  }
}

/** Prisma's own codes for the same situations (https://www.prisma.io/docs/orm/reference/error-reference). */
const PRISMA_FAULTS: Record<string, DatabaseFault> = {
  P1001: 'unavailable', // can't reach database server
  P1002: 'unavailable', // reached but timed out
  P1008: 'unavailable', // socket timeout
  P1011: 'unavailable', // TLS connection error
  P1017: 'unavailable', // server closed the connection
  P2024: 'unavailable', // timed out fetching a connection from the pool
  P2037: 'unavailable', // too many database connections
  P2028: 'busy', // transaction API: could not start in maxWait, or expired after timeout
  P2034: 'busy', // write conflict or deadlock
};

/** The driver adapter's error kinds (`DriverAdapterError.cause.kind`, @prisma/driver-adapter-utils). */
const ADAPTER_FAULTS: Record<string, DatabaseFault> = {
  DatabaseNotReachable: 'unavailable',
  ConnectionClosed: 'unavailable',
  SocketTimeout: 'unavailable',
  TlsConnectionError: 'unavailable',
  TooManyConnections: 'unavailable',
  TransactionWriteConflict: 'busy',
};

type Fields = Record<string, unknown>;
const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null;
const stringField = (value: Fields, key: string): string | undefined => (typeof value[key] === 'string' ? value[key] : undefined);

/** The adapter's error, recognised as Prisma recognises it: by name, with an object cause that has a kind. */
function adapterErrorCause(value: Fields): Fields | undefined {
  return value.name === 'DriverAdapterError' && isObject(value.cause) && typeof value.cause.kind === 'string' ? value.cause : undefined;
}

/** The SQLSTATE a server error carries: pg's own, or the one the driver adapter passes on. */
function sqlStateOf(value: Fields): string | undefined {
  const adapterCause = adapterErrorCause(value);
  if (adapterCause) return stringField(adapterCause, 'originalCode') ?? stringField(adapterCause, 'code');
  return value instanceof pg.DatabaseError ? value.code : undefined;
}

function faultOf(value: Fields): DatabaseFault | undefined {
  if (value instanceof DatabaseConnectionError) return CONNECTION_FAULTS[value.failure];
  if (value instanceof Prisma.PrismaClientKnownRequestError) return PRISMA_FAULTS[value.code];
  const adapterCause = adapterErrorCause(value);
  const kind = adapterCause?.kind as string | undefined;
  if (kind !== undefined && kind in ADAPTER_FAULTS) return ADAPTER_FAULTS[kind];
  const sqlState = sqlStateOf(value);
  if (sqlState !== undefined) return faultOfSqlState(sqlState);
  if (adapterCause) return undefined;
  const code = stringField(value, 'code');
  if (code !== undefined && typeof value.syscall === 'string' && SOCKET_ERRORS.has(code)) return 'unavailable';
  return undefined;
}

/** The error, its causes and the adapter error a Prisma error carries, outermost first, bounded against cycles. */
function related(error: unknown): Fields[] {
  const seen: Fields[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.length < 20) {
    const current = queue.shift();
    if (!isObject(current) || seen.includes(current)) continue;
    seen.push(current);
    queue.push(current.cause);
    if (isObject(current.meta)) queue.push(current.meta.driverAdapterError);
  }
  return seen;
}

/**
 * What `error` (anything a database call threw, wrapped or not) means for the request, or
 * undefined when it is not a database fault (a bug, a constraint violation, bad input).
 * The outermost recognised error decides.
 */
export function classifyDatabaseError(error: unknown): DatabaseFault | undefined {
  for (const value of related(error)) {
    const fault = faultOf(value);
    if (fault) return fault;
  }
  return undefined;
}

/**
 * Prisma's codes for a value its column cannot hold: too long (P2000), invalid (P2006), failed
 * validation (P2007), out of range (P2020), not fitting 64 bits (P2033).
 */
const PRISMA_VALUE_ERRORS = new Set(['P2000', 'P2006', 'P2007', 'P2020', 'P2033']);

/**
 * Whether the database refused a value the call carried (SQLSTATE class 22, data exception: out
 * of range, too long, not a valid uuid or date; or Prisma's codes for the same): the input, not
 * the server, was wrong. Input schemas bound what their columns hold, so this is the net under a
 * bound that is missing; the error edge answers 400 and logs it at warn, so the gap gets closed.
 */
export function isRefusedValue(error: unknown): boolean {
  return related(error).some((value) =>
    value instanceof Prisma.PrismaClientKnownRequestError
      ? PRISMA_VALUE_ERRORS.has(value.code)
      : sqlStateOf(value)?.startsWith('22') === true,
  );
}
