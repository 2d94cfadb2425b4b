import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
// Types only: the cookie methods of Fastify's request and reply (the plugin is registered in http/app.ts).
import type {} from '@fastify/cookie';
import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify';
import type { FastifyRequest } from 'fastify';
import type { AppDeps } from '../deps.js';
import type { Logger } from '../logger.js';
import type { AuthUser } from '../modules/auth/service.js';

export type { AppDeps };

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, once a procedure has verified the access token. */
    userId: string | undefined;
  }
}

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

/** What the transport knows about the caller. Absent for in-process calls. */
export interface RequestMeta {
  requestId: string;
  ip: string | undefined;
  userAgent: string | undefined;
  log: Logger;
  /** The raw Authorization header. Tokens are read from there only, never from the URL. */
  authorization: string | undefined;
  origin: string | undefined;
  cookies: CookieJar | undefined;
  authMode: AuthMode;
  /** Called once the caller is authenticated, so the transport's request log line names the user. */
  identify?: ((userId: string) => void) | undefined;
}

export interface Context extends AppDeps, RequestMeta {
  db: AppDeps['database']['prisma'];
  /** Set by `authedProcedure`; null on public procedures. */
  user: AuthUser | null;
  /** Queries of this request still running, by path and input (see `sharedQueries` in init.ts). */
  runningQueries: Map<string, Promise<unknown>>;
}

/** The composition root for one call: dependencies plus what is known of the request. */
export function createContextInner(deps: AppDeps, meta: Partial<RequestMeta> = {}): Context {
  const requestId = meta.requestId ?? randomUUID();
  return {
    ...deps,
    db: deps.database.prisma,
    requestId,
    ip: meta.ip,
    userAgent: meta.userAgent,
    log: meta.log ?? deps.logger.child({ reqId: requestId }),
    authorization: meta.authorization,
    origin: meta.origin,
    cookies: meta.cookies,
    authMode: meta.authMode ?? 'bearer',
    identify: meta.identify,
    user: null,
    runningQueries: new Map(),
  };
}

/**
 * What every transport knows of a Fastify request: id, address, agent, the bearer header, the
 * origin, a logger bound to the request and procedure, and how to name the user on the request's
 * log line. tRPC and REST both build their context from it.
 */
export function requestMetaFrom(deps: AppDeps, req: FastifyRequest, procedure: string): Omit<RequestMeta, 'authMode' | 'cookies'> {
  return {
    requestId: req.id,
    // Behind a misconfigured proxy chain req.ip could be any text a client wrote: only addresses pass.
    ip: isIP(req.ip) === 0 ? undefined : req.ip,
    userAgent: req.headers['user-agent']?.slice(0, 512),
    log: deps.logger.child({ reqId: req.id, procedure }),
    authorization: req.headers.authorization,
    origin: req.headers.origin,
    // The request's log line (onResponse hook) names the user (a batch shares one token).
    identify: (userId) => {
      req.userId = userId;
    },
  };
}

/** The tRPC adapter's context factory: adds request-derived parts on top of `createContextInner`. */
export function createContextFactory(deps: AppDeps) {
  return ({ req, res, info }: CreateFastifyContextOptions): Context =>
    createContextInner(deps, {
      ...requestMetaFrom(deps, req, info.calls.map((call) => call.path).join(',')),
      authMode: req.headers['x-keel-auth'] === 'cookie' ? 'cookie' : 'bearer',
      cookies: {
        get: (name) => req.cookies[name],
        set: (name, value, options) => void res.setCookie(name, value, options),
        clear: (name, options) => void res.clearCookie(name, options),
      },
    });
}
