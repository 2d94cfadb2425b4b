/**
 * OpenTelemetry tracing, loaded (dynamic import from observability/index.ts) only when an OTLP
 * endpoint is configured. The SDK is set up by hand rather than with `@opentelemetry/sdk-node`:
 * Keel needs a tracer provider, a context manager, the W3C propagators, one exporter and Prisma's
 * instrumentation, not the metrics and logs SDKs, gRPC and the auto-instrumentation loader that
 * sdk-node brings (docs/decisions/0019-observability.md).
 *
 * Spans: the HTTP server span (Fastify hooks, http.ts), one span per procedure call, Prisma's
 * spans (@prisma/instrumentation), a span per SQL statement under them (db/connections.ts), and
 * argon2 and mail spans. The OTLP exporter reads its own standard variables
 * (OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION...), the resource reads
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; Keel's config reads the sampler's and the batch
 * processor's (OTEL_BSP_*), which SDK 3 no longer reads itself.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { PrismaInstrumentation } from '@prisma/instrumentation';
import type { Config, TracesSampler } from '../config.js';
import { VERSION } from '../version.js';
import type { SpanAttributes, SpanHook } from './hooks.js';

type TracingConfig = NonNullable<Config['observability']['tracing']>;

function samplerFor(name: TracesSampler, ratio: number): Sampler {
  const ratioSampler = () => new TraceIdRatioBasedSampler(ratio);
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratioSampler();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratioSampler() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * Prisma's instrumentation starts a trace for every query made outside a request (the mail
 * worker polls its outbox every few seconds): those would bury the requests' traces. Its spans
 * are kept only under a span of Keel's (a procedure, a mail delivery).
 */
function withoutPrismaRoots(sampler: Sampler): Sampler {
  const drop = { decision: SamplingDecision.NOT_RECORD };
  return {
    shouldSample(ctx, traceId, name, kind, attributes, links) {
      if (name.startsWith('prisma:') && trace.getSpan(ctx) === undefined) return drop;
      return sampler.shouldSample(ctx, traceId, name, kind, attributes, links);
    },
    toString: () => `WithoutPrismaRoots{${sampler.toString()}}`,
  };
}

/** The exporter for Keel's validated endpoint; headers, timeout and compression come from the exporter's own variables. */
async function exporterFor({ protocol, url }: TracingConfig): Promise<SpanExporter> {
  if (protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url });
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({ url });
}

/** Node's incoming headers as OpenTelemetry's propagators read them. */
const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** What the rest of Keel uses of tracing (observability/index.ts wires it to the hooks). */
export interface Tracing {
  /** The server span of an HTTP request, continuing the caller's `traceparent` when there is one. */
  startRequest(method: string, route: string | undefined, path: string, headers: Record<string, string | string[] | undefined>): Context;
  /** Ends the request's span with its status; its ids for the request's log line (undefined when not sampled). */
  endRequest(request: Context, status: number): { traceId: string; spanId: string } | undefined;
  /** Runs `work` with `ctx` active (`work` is Fastify's `done`, so the handler runs in the request's context). */
  within<T>(ctx: Context, work: () => T): T;
  /**
   * A span for one procedure call, child of the active context; `finish` ends it. Inside a trace
   * its caller did not sample (a parent-based sampler), no span is made (`finish` gets undefined).
   */
  procedure<R>(path: string, type: string, work: () => Promise<R>, finish: (span: Span | undefined) => void): Promise<R>;
  span: SpanHook;
  /** A span for one SQL statement, only inside a trace (the mail poller's statements would each start one). */
  startQuery(text: string): Span | undefined;
  endQuery(span: Span, error: Error | null): void;
  /** The active span's ids for a log line, when it is sampled. */
  logFields(): { trace_id: string; span_id: string } | undefined;
  setProcedureOutcome(span: Span | undefined, code: string, userId: string | undefined): void;
  shutdown(): Promise<void>;
}

const OK = 'OK';

export async function startTracing(config: TracingConfig): Promise<Tracing> {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'keel', 'service.version': VERSION }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({
    resource,
    sampler: withoutPrismaRoots(samplerFor(config.sampler, config.samplerArg)),
    spanProcessors: [new BatchSpanProcessor({ exporter: await exporterFor(config), ...config.batch })],
  });
  trace.setGlobalTracerProvider(provider);
  const prisma = new PrismaInstrumentation();
  prisma.setTracerProvider(provider);
  prisma.enable();
  const tracer = provider.getTracer('keel', VERSION);
  // With a parent-based sampler (the default) a child of an unsampled span is never sampled:
  // making it would only cost time.
  const parentBased = config.sampler.startsWith('parentbased_');
  const unsampledParent = (): boolean => {
    const parent = trace.getSpan(context.active());
    return parent !== undefined && !parent.isRecording();
  };

  const fail = (span: Span, error: unknown) => {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
  };

  return {
    startRequest(method, route, path, headers) {
      const parent = propagation.extract(ROOT_CONTEXT, headers, headerGetter);
      const span = tracer.startSpan(
        route === undefined ? method : `${method} ${route}`,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': method, 'url.path': path, ...(route === undefined ? {} : { 'http.route': route }) },
        },
        parent,
      );
      return trace.setSpan(parent, span);
    },
    endRequest(request, status) {
      const span = trace.getSpan(request);
      if (!span) return undefined;
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      const ids = span.spanContext();
      return ids.traceFlags & 1 ? { traceId: ids.traceId, spanId: ids.spanId } : undefined;
    },
    within: (ctx, work) => context.with(ctx, work),
    procedure(path, type, work, finish) {
      if (parentBased && unsampledParent()) return work().finally(() => finish(undefined));
      const span = tracer.startSpan(path, {
        kind: SpanKind.INTERNAL,
        attributes: { 'rpc.system': 'trpc', 'rpc.method': path, 'trpc.type': type },
      });
      return context.with(trace.setSpan(context.active(), span), work).finally(() => finish(span));
    },
    setProcedureOutcome(span, code, userId) {
      if (!span) return;
      span.setAttribute('trpc.code', code);
      if (userId !== undefined) span.setAttribute('enduser.id', userId);
      if (code !== OK) span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      span.end();
    },
    span<T>(name: string, attributes: SpanAttributes, work: () => Promise<T>): Promise<T> {
      return tracer.startActiveSpan(name, { attributes }, async (span) => {
        try {
          return await work();
        } catch (error) {
          fail(span, error);
          throw error;
        } finally {
          span.end();
        }
      });
    },
    startQuery(text) {
      const active = context.active();
      const parent = trace.getSpan(active);
      if (parent === undefined || (parentBased && !parent.isRecording())) return undefined;
      const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
      return tracer.startSpan(
        operation,
        {
          kind: SpanKind.CLIENT,
          attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'db.query.text': text.slice(0, 2_000) },
        },
        active,
      );
    },
    endQuery(span, error) {
      if (error) fail(span, error);
      span.end();
    },
    logFields() {
      const ids = trace.getSpan(context.active())?.spanContext();
      return ids && ids.traceFlags & 1 ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
    },
    async shutdown() {
      prisma.disable();
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
