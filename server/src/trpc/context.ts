/**
 * The per-call context: what a procedure reads, and nothing else. The long-lived dependencies are
 * referenced (`services`, `config`), never spread, and the request's facts sit in one object, so
 * the context that tRPC copies at each middleware level stays a handful of keys.
 *
 * Transports (the tRPC route, the REST routes, `createCaller` in tests) build it with
 * `createContextInner`; this module knows no HTTP framework.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { LazyChildLogger, type Log, type Logger } from '../logger.js';
import type { AuthUser } from '../modules/auth/types.js';
import type { Services } from '../services.js';

export interface CookieOptions {
  httpOnly: boolean;
  sameSite: 'strict' | 'lax';
  secure: boolean;
  path: string;
  expires?: Date;
}

/** The request's cookies, and a way to set them on the response. */
export interface CookieJar {
  get(name: string): string | undefined;
  set(name: string, value: string, options: CookieOptions): void;
  clear(name: string, options: Pick<CookieOptions, 'path' | 'secure'>): void;
}

/** How the client wants its refresh token: in the body (default) or only in an HttpOnly cookie. */
export type AuthMode = 'bearer' | 'cookie';

/** What the transport knows about the request. In-process calls get defaults. */
export interface RequestFacts {
  requestId: string;
  ip: string | undefined;
  userAgent: string | undefined;
  /** The raw Authorization header. Tokens are read from there only, never from the URL. */
  authorization: string | undefined;
  origin: string | undefined;
  cookies: CookieJar | undefined;
  authMode: AuthMode;
  /** Procedure calls carried by this request: identical concurrent queries are shared only in a batch. */
  calls: number;
  /** Set once a procedure has authenticated the caller, so the transport's log line can name the user. */
  userId: string | undefined;
  /** The request's `Idempotency-Key` header, as sent (checked by the mutation that uses it). */
  idempotencyKey: string | string[] | undefined;
  /** Set when a mutation's answer was replayed for its Idempotency-Key: the transport says so in a header. */
  replayed: boolean;
}

export interface Context {
  services: Services;
  config: Config;
  request: RequestFacts;
  /** A logger bound to the request id (and procedure), created only when something is logged. */
  log: Log;
  /**
   * The caller: set by `authedProcedure` from the access token; null on public procedures. An
   * in-process call (tests, scripts) may start with one (`principal`), which then needs no token.
   */
  user: AuthUser | null;
  /** Queries of this request still running, by path and input (batches only; see `pipeline` in init.ts). */
  runningQueries: Map<string, Promise<unknown>> | undefined;
}

export interface ContextInput {
  services: Services;
  config: Config;
  logger: Logger;
  /** The transport's facts; in-process calls (tests, scripts) get `requestFacts()`'s defaults. */
  request?: RequestFacts | undefined;
  /** Bound to the request's log lines beside the request id (the transport names the procedure). */
  procedure?: string | undefined;
  /**
   * The caller, already known: authenticated procedures take it instead of reading a token. Only
   * in-process callers pass one; the HTTP transports never do (their caller proves itself).
   */
  principal?: AuthUser | undefined;
}

/** Request facts for a call made without HTTP: the given ones, defaults for the rest. */
export function requestFacts(facts: Partial<RequestFacts> = {}): RequestFacts {
  return {
    requestId: facts.requestId ?? randomUUID(),
    ip: facts.ip,
    userAgent: facts.userAgent,
    authorization: facts.authorization,
    origin: facts.origin,
    cookies: facts.cookies,
    authMode: facts.authMode ?? 'bearer',
    calls: facts.calls ?? 1,
    userId: undefined,
    idempotencyKey: facts.idempotencyKey,
    replayed: false,
  };
}

/** The context of one call (or of one batch's calls). Tests call it directly with their own services. */
export function createContextInner({ services, config, logger, request = requestFacts(), procedure, principal }: ContextInput): Context {
  const reqId = request.requestId;
  return {
    services,
    config,
    request,
    log: new LazyChildLogger(logger, procedure === undefined ? { reqId } : { reqId, procedure }),
    user: principal ?? null,
    runningQueries: request.calls > 1 ? new Map() : undefined,
  };
}
