/**
 * What every transport (the tRPC route, the REST routes) knows of a Fastify request, as the
 * procedures' context wants it (trpc/context.ts knows no HTTP framework).
 */
import { isIP } from 'node:net';
// Types only: the cookie methods of Fastify's request and reply (the plugin is registered in app.ts).
import type {} from '@fastify/cookie';
import { TRPCError } from '@trpc/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../deps.js';
import { type AuthMode, type Context, type CookieJar, type CookieOptions, createContextInner, type RequestFacts } from '../trpc/context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The facts handed to procedures; the request's log line reads the user id back from them. */
    facts: RequestFacts | undefined;
  }
}

/** The request's cookies, and a way to set them on its reply. */
class FastifyCookieJar implements CookieJar {
  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  get(name: string): string | undefined {
    return this.req.cookies[name];
  }

  set(name: string, value: string, options: CookieOptions): void {
    this.reply.setCookie(name, value, options);
  }

  clear(name: string, options: Pick<CookieOptions, 'path'>): void {
    this.reply.clearCookie(name, options);
  }
}

/**
 * The Authorization header, refusing a request that sends two: Node keeps only the first, so the
 * second would be silently ignored, and proxies may pick the other one (RFC 9110 allows a header
 * field to repeat only when its value is a list, which Authorization's is not).
 */
function authorizationOf(req: FastifyRequest): string | undefined {
  const value = req.headers.authorization;
  if (value === undefined) return undefined;
  const raw = req.raw.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && name.toLowerCase() === 'authorization') seen += 1;
  }
  if (seen > 1) throw new TRPCError({ code: 'BAD_REQUEST', message: 'Send one Authorization header, not several.' });
  return value;
}

export interface FactsOptions {
  /** Procedure calls the request carries. */
  calls: number;
  /** The tRPC API's browsers may keep their refresh token in a cookie; REST is bearer only. */
  cookies: boolean;
}

/** The request's facts. Throws BAD_REQUEST on two Authorization headers. */
export function httpRequestFacts(req: FastifyRequest, reply: FastifyReply, options: FactsOptions): RequestFacts {
  const authMode: AuthMode = options.cookies && req.headers['x-keel-auth'] === 'cookie' ? 'cookie' : 'bearer';
  const ip = req.ip;
  return {
    requestId: req.id,
    // Behind a misconfigured proxy chain req.ip could be any text a client wrote: only addresses pass.
    ip: isIP(ip) === 0 ? undefined : ip,
    userAgent: req.headers['user-agent']?.slice(0, 512),
    authorization: authorizationOf(req),
    origin: req.headers.origin,
    cookies: options.cookies ? new FastifyCookieJar(req, reply) : undefined,
    authMode,
    calls: options.calls,
    userId: undefined,
    idempotencyKey: req.headers['idempotency-key'],
    replayed: false,
  };
}

/** The procedures' context for a Fastify request; the request keeps its facts for its log line. */
export function contextFor(
  deps: Pick<AppDeps, 'services' | 'config' | 'logger'>,
  req: FastifyRequest,
  reply: FastifyReply,
  options: FactsOptions & { procedure: string },
): Context {
  const ctx = createContextInner({
    services: deps.services,
    config: deps.config,
    logger: deps.logger,
    request: httpRequestFacts(req, reply, options),
    procedure: options.procedure,
  });
  req.facts = ctx.request;
  return ctx;
}
