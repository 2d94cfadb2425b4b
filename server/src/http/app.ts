import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { AnyRouter } from '@trpc/server';
import { type FastifyTRPCPluginOptions, fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import Fastify, { type FastifyError, LogController } from 'fastify';
import { AppError } from '../lib/errors.js';
import { registerOpenApi } from '../openapi/index.js';
import { appRouter } from '../router.js';
import { type AppDeps, createContextFactory } from '../trpc/context.js';
import { beforeHandlerError } from './client-errors.js';

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
  const app = Fastify({
    loggerInstance: logger,
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
    // A GET batch puts every procedure path into the one `/trpc/:path` param (50 calls are ~1 KB):
    // Node's 16 KiB header limit already bounds the request line, so this only must not be smaller.
    routerOptions: { maxParamLength: 16_384 },
  });
  // Node's defaults (60 s for headers) leave slow-loris connections open far too long.
  app.server.headersTimeout = config.http.headersTimeoutMs;

  app.decorateRequest('userId', undefined);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    // The path without its query: tRPC GET inputs travel there and may hold personal data.
    req.log.info(
      {
        method: req.method,
        path: req.url.split('?', 1)[0],
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        userId: req.userId,
      },
      'request',
    );
  });

  await app.register(helmet, { global: true });
  await app.register(cookie);
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin === undefined || config.http.corsOrigins.includes(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['content-type', 'authorization', 'x-request-id', 'x-keel-auth', 'trpc-accept', 'x-trpc-source'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
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
    reply.status(404).send({ code: 'NOT_FOUND', message: `No route for ${req.method} ${req.url.split('?', 1)[0]}.`, requestId: req.id });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = await database.ping(1_000);
    reply.header('cache-control', 'no-store');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', database: ready ? 'up' : 'down' });
  });

  // Public halves of the signing keys, so other services verify access tokens without calling Keel.
  app.get('/.well-known/jwks.json', async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return { keys: deps.keys.publicJwks };
  });

  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: options.router ?? appRouter,
      createContext: createContextFactory(deps),
      maxBatchSize: config.http.maxBatchSize,
      responseMeta({ errors }) {
        // API answers carry personal data and tokens: never cached by browsers or proxies.
        const headers: Record<string, string> = { 'cache-control': 'no-store' };
        if (errors.some((e) => e.code === 'UNAUTHORIZED')) headers['www-authenticate'] = 'Bearer realm="keel"';
        const retryAfter = Math.max(0, ...errors.map((e) => (e.cause instanceof AppError ? (e.cause.retryAfterSeconds ?? 0) : 0)));
        if (retryAfter > 0) headers['retry-after'] = String(retryAfter);
        return { headers };
      },
      onError({ error, path, ctx, req }) {
        const log = ctx?.log ?? req.log;
        if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error, path }, 'procedure failed');
        else log.debug({ code: error.code, path }, 'procedure rejected');
      },
    } satisfies FastifyTRPCPluginOptions<AnyRouter>['trpcOptions'],
  });

  // The same procedures as REST under /api, their OpenAPI document and Swagger UI (server/src/openapi).
  await registerOpenApi(app, deps, options.router ?? appRouter);

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
