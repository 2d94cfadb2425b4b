import { randomUUID } from 'node:crypto';
import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';

/**
 * Everything a procedure may depend on that outlives a request. Built once by the composition
 * root (http/app.ts, or a test with its own database and fakes).
 */
export interface AppDeps {
  config: Config;
  database: Database;
  logger: Logger;
  /** The time source, so tests can move time without sleeping. */
  now: () => Date;
}

/** What the transport knows about the caller. Absent for in-process calls. */
export interface RequestMeta {
  requestId: string;
  ip: string | undefined;
  userAgent: string | undefined;
  log: Logger;
}

export interface Context extends AppDeps {
  db: Database['prisma'];
  requestId: string;
  ip: string | undefined;
  userAgent: string | undefined;
  /** A child logger carrying the request id and procedure path(s). */
  log: Logger;
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
  };
}

/** The tRPC adapter's context factory: adds request-derived parts on top of `createContextInner`. */
export function createContextFactory(deps: AppDeps) {
  return ({ req, info }: CreateFastifyContextOptions): Context => {
    const procedures = info.calls.map((call) => call.path).join(',');
    return createContextInner(deps, {
      requestId: req.id,
      ip: req.ip,
      userAgent: truncateHeader(req.headers['user-agent']),
      log: deps.logger.child({ reqId: req.id, procedure: procedures }),
    });
  };
}

function truncateHeader(value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.slice(0, 512);
}
