import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { AnyRouter } from '@trpc/server';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { AppDeps } from '../deps.js';
import { applySseOptions } from '../live/sse.js';
import { LazyChildLogger, type Logger, unredacted } from '../logger.js';
import { registerDevInbox } from '../mail/dev-inbox.js';
import { registerOpenApi } from '../openapi/index.js';
import { appRouter } from '../router.js';
import { errorHeaders, logProcedureError } from '../trpc/error-edge.js';
import { createAllowedMethods } from './allowed-methods.js';
import { beforeHandlerError, createParserRefusals } from './client-errors.js';
import { registerOAuthToken } from './oauth-token.js';
import { createRefusalPacer, retryAfterOf } from './refusal-pacing.js';
import { contextFor } from './request-facts.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { registerTrpcRoute } from './trpc-route.js';

/**
 * A GET batch puts every procedure path into the one `/trpc/:path` param (50 calls are ~1 KB):
 * Node's 16 KiB header limit already bounds the request line, so this only must not be smaller.
 */
const MAX_PARAM_LENGTH = 16_384;

/** A request's path, without its query (tRPC GET inputs travel there and may hold personal data). */
const pathOf = (req: FastifyRequest): string => req.url.split('?', 1)[0] as string;

/** Incoming request ids are kept only when they look like ids (no log injection, bounded size). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export interface BuildAppOptions {
  /** The router served at /trpc (and, for its procedures with `meta.openapi`, at /api); tests mount their own. */
  router?: AnyRouter;
}

/** Builds the HTTP host: every route and hook, no listening. Tests call it with their own deps. */
export async function buildApp(deps: AppDeps, options: BuildAppOptions = {}) {
  const { config, logger, database } = deps;
  const router = options.router ?? appRouter;
  const parserRefusals = createParserRefusals(logger, SECURITY_HEADERS);
  const app = Fastify({
    // Typed as Fastify's base logger: request loggers are lazy children (below), not pino instances.
    loggerInstance: logger as FastifyBaseLogger,
    // Fastify gives every request a child logger; most requests never log through it (their one
    // line is written below with the root logger), so it is made only when used.
    // (Its parent is the pino `logger` given as loggerInstance.)
    childLoggerFactory: (parent, bindings) => new LazyChildLogger(parent as Logger, bindings),
    genReqId: requestId,
    requestIdHeader: false,
    // Fastify's own two lines per request are replaced by the single line of the onResponse hook.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    connectionTimeout: config.http.requestTimeoutMs + config.http.headersTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: parserRefusals.handler,
    // Errors Fastify raises before routing (a URL with a bad percent-encoding): no hook has run yet,
    // so the answer gets Keel's headers and error shape here instead of Fastify's, which echoed the URL.
    frameworkErrors: (error, req, res) => {
      const reply = res as FastifyReply;
      const code = error.code === 'FST_ERR_BAD_URL' ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR';
      if (code === 'INTERNAL_SERVER_ERROR') req.log.error({ err: error }, 'request failed before routing');
      const message =
        code === 'BAD_REQUEST'
          ? 'The request URL is not valid (a malformed percent-encoding).'
          : `Internal server error. Reference: ${req.id}.`;
      return reply
        .headers(SECURITY_HEADERS)
        .header('x-request-id', req.id)
        .header('cache-control', 'no-store')
        .status(code === 'BAD_REQUEST' ? 400 : 500)
        .send({ code, message, requestId: req.id });
    },
  });
  // Node's defaults (60 s for headers) leave slow-loris connections open far too long.
  app.server.headersTimeout = config.http.headersTimeoutMs;

  // Which methods each path takes, for the 405 a known path gives to any other (not-found handler).
  const allowedMethods = createAllowedMethods({ maxParamLength: MAX_PARAM_LENGTH });
  app.addHook('onRoute', (route) => allowedMethods.add(route.url ?? route.path, route.method));

  app.decorateRequest('facts', undefined);
  // Traces and metrics (server/src/observability): hooks only when configured.
  const observed = deps.observability?.http;
  observed?.register(app);
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', req.id);
    done();
  });
  // The root logger with the request id as a field (a per-request child would cost more than the
  // line), unredacted: these fields are fixed, and the path is written without its query (tRPC GET
  // inputs travel there and may hold personal data).
  const requestLog = unredacted(logger);
  /** The request's one line; `aborted` when its client left before the answer was sent. */
  const logRequest = (req: FastifyRequest, reply: FastifyReply, traced: { traceId: string; spanId: string } | undefined, aborted?: true) =>
    requestLog.info(
      {
        reqId: req.id,
        method: req.method,
        path: pathOf(req),
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        userId: req.facts?.userId,
        // Refused requests name their client, so an operator can see who is knocking.
        ip: reply.statusCode === 401 || reply.statusCode === 403 || reply.statusCode === 429 ? req.ip : undefined,
        aborted,
        trace_id: traced?.traceId,
        span_id: traced?.spanId,
      },
      'request',
    );
  app.addHook('onResponse', (req, reply, done) => {
    logRequest(req, reply, observed?.end(req, reply));
    done();
  });

  // 429 answers are held a moment before they go (http/refusal-pacing.ts); all sent at once on close.
  const pacer = createRefusalPacer({ delayMs: config.http.refusalDelayMs, maxHeld: config.http.refusalMaxHeld });
  app.decorate('refusalPacer', pacer);
  app.addHook('onSend', (req, reply, payload, done) => {
    const held = reply.statusCode === 429 ? pacer.hold(retryAfterOf(reply.getHeader('retry-after'))) : undefined;
    if (held === undefined) return done(null, payload);
    // A client that leaves before its refusal is sent frees the place at once, and its request
    // still gets its line (a response that never finishes has none from onResponse).
    const gone = () => {
      held.cancel();
      logRequest(req, reply, undefined, true);
    };
    reply.raw.once('close', gone);
    void held.released.then(() => {
      reply.raw.off('close', gone);
      done(null, payload);
    });
  });
  app.addHook('preClose', (done) => {
    pacer.releaseAll();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    parserRefusals.flush();
    done();
  });

  await app.register(cookie);
  await app.register(cors, {
    // A function, not the list: for an origin it refuses, the plugin then adds no CORS header at all.
    origin: (origin, callback) => callback(null, origin === undefined || config.http.corsOrigins.includes(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'content-type',
      'authorization',
      'x-request-id',
      'x-keel-auth',
      'trpc-accept',
      'x-trpc-source',
      'idempotency-key',
      'last-event-id',
    ],
    exposedHeaders: ['x-request-id', 'retry-after', 'idempotent-replayed'],
    maxAge: 600,
    // An OPTIONS without Origin is not a preflight; the strict default answered it 400 in text/plain.
    strictPreflight: false,
  });
  // Every OPTIONS the CORS plugin did not answer (a preflight from an origin it refuses): 204 with
  // no CORS header on every route alike, so the browser refuses the call. Before this, the answer
  // depended on the route (tRPC's 405 or 415, a 404 elsewhere).
  app.addHook('onRequest', (req, reply, done) => {
    if (req.method === 'OPTIONS') return reply.code(204).header('content-length', '0').send();
    done();
  });

  app.setErrorHandler<FastifyError>((error, req, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err: error }, 'unhandled error');
      return reply
        .status(status)
        .send({ code: 'INTERNAL_SERVER_ERROR', message: `Internal server error. Reference: ${req.id}.`, requestId: req.id });
    }
    const known = beforeHandlerError(status) ?? { code: 'BAD_REQUEST' as const, message: error.message };
    return reply.status(status).send({ ...known, requestId: req.id });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = pathOf(req);
    const allow = allowedMethods.of(path);
    if (allow) {
      return reply
        .status(405)
        .header('allow', allow.join(', '))
        .send({
          code: 'METHOD_NOT_SUPPORTED',
          message: `${req.method} is not supported on ${path}: use ${allow.join(', ')}.`,
          requestId: req.id,
        });
    }
    reply.status(404).send({ code: 'NOT_FOUND', message: `No route for ${req.method} ${path}.`, requestId: req.id });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    // Stopping (server.ts): out of the balancer's rotation first, while requests are still served.
    if (deps.lifecycle.draining) return reply.status(503).header('cache-control', 'no-store').send({ status: 'draining' });
    const ready = await database.ping(1_000);
    reply.header('cache-control', 'no-store');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', database: ready ? 'up' : 'down' });
  });

  // Public halves of the signing keys, so other services verify access tokens without calling Keel.
  app.get('/.well-known/jwks.json', async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return { keys: deps.keys.publicJwks };
  });

  // Service accounts get their access tokens here (OAuth 2.0 client credentials).
  await registerOAuthToken(app, deps);

  // Live streams never finish by themselves: end them first (their clients reconnect elsewhere).
  applySseOptions(router, deps.config.live);
  app.addHook('preClose', async () => deps.services.live.stop());
  await registerTrpcRoute(app, '/trpc', {
    router,
    maxBatchSize: config.http.maxBatchSize,
    adapter: config.http.trpcAdapter,
    createContext: (req, reply, paths) =>
      contextFor(deps, req, reply, {
        calls: paths.length,
        cookies: true,
        procedure: paths.length === 1 ? (paths[0] as string) : paths.join(','),
      }),
    responseHeaders: errorHeaders,
    onError: ({ error, path, ctx, req }) => logProcedureError(ctx?.log ?? req.log, error, path),
  });

  if (deps.devInbox) registerDevInbox(app, deps.devInbox);

  // The same procedures as REST under /api, their OpenAPI document and Swagger UI (server/src/openapi).
  await registerOpenApi(app, deps, router);

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
