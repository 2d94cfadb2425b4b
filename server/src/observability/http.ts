/**
 * The HTTP side of observability: the server span of each request (started in `onRequest`,
 * active while the handler runs, ended with the status in `onResponse`), HTTP metrics by route
 * pattern and status, and GET /metrics on the main port for bearers of METRICS_TOKEN.
 */
import type { Context as TraceContext } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from './metrics.js';
import type { Tracing } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's trace context (its server span); set only when tracing is on. */
    traceContext: TraceContext | undefined;
  }
}

export interface HttpObservation {
  /** Adds the hooks and the /metrics route; call before the routes are registered. */
  register(app: FastifyInstance): void;
  /** Ends the request's span and counts it; the ids for its log line when it was traced and sampled. */
  end(req: FastifyRequest, reply: FastifyReply): { traceId: string; spanId: string } | undefined;
}

const UNMATCHED = 'unmatched';

export function httpObservation(options: {
  tracing: Tracing | undefined;
  metrics: Metrics | undefined;
  metricsOnMainPort: boolean;
}): HttpObservation {
  const { tracing, metrics } = options;
  return {
    register(app) {
      if (tracing) {
        app.decorateRequest('traceContext', undefined);
        app.addHook('onRequest', (req, _reply, done) => {
          req.traceContext = tracing.startRequest(req.method, req.routeOptions.url, req.url.split('?', 1)[0] as string, req.headers);
          done();
        });
        // The handler runs inside `done`: what it awaits (procedures, Prisma, pg) is in the request's context.
        app.addHook('preHandler', (req, _reply, done) => {
          if (req.traceContext) tracing.within(req.traceContext, done);
          else done();
        });
      }
      // Read at scrape time: the pacer is decorated on the app after this runs.
      metrics?.watchHeldRefusals(() => app.refusalPacer.held);
      if (metrics && options.metricsOnMainPort) {
        app.get('/metrics', async (req, reply) => {
          reply.header('cache-control', 'no-store');
          if (!metrics.authorized(req.headers.authorization)) {
            return reply
              .status(401)
              .header('www-authenticate', 'Bearer realm="keel-metrics"')
              .send({ code: 'UNAUTHORIZED', message: 'A bearer METRICS_TOKEN is required.', requestId: req.id });
          }
          const { contentType, body } = await metrics.scrape();
          return reply.type(contentType).send(body);
        });
      }
    },
    end(req, reply) {
      metrics?.http(req.routeOptions.url ?? UNMATCHED, req.method, reply.statusCode, reply.elapsedTime / 1000);
      if (!tracing || !req.traceContext) return undefined;
      return tracing.endRequest(req.traceContext, reply.statusCode);
    },
  };
}
