import type { TRPCLink } from '@trpc/client';
import type { AppRouter } from './types.js';

/** Set on an operation: the W3C trace headers of the span that was active when the call was made. */
export const TRACE_HEADERS = 'keelTraceHeaders';

/**
 * OpenTelemetry's API keeps its global context manager and propagator under this symbol (one per
 * major version of `@opentelemetry/api`, stable across every 1.x). Reading them from there sends
 * `traceparent` when the calling app uses OpenTelemetry, without the SDK depending on it.
 */
const OTEL_API_1 = Symbol.for('opentelemetry.js.api.1');

interface OtelGlobals {
  context?: { active(): unknown };
  propagation?: {
    inject(
      context: unknown,
      carrier: Record<string, string>,
      setter: { set(carrier: Record<string, string>, key: string, value: string): void },
    ): void;
  };
}

const setter = {
  set(carrier: Record<string, string>, key: string, value: string) {
    carrier[key] = value;
  },
};

/** The active span's `traceparent` (and `tracestate`, `baggage`), or undefined without an active span. */
export function activeTraceHeaders(): Record<string, string> | undefined {
  const otel = (globalThis as Record<symbol, OtelGlobals | undefined>)[OTEL_API_1];
  if (!otel?.context || !otel.propagation) return undefined;
  const carrier: Record<string, string> = {};
  try {
    otel.propagation.inject(otel.context.active(), carrier, setter);
  } catch {
    return undefined; // a broken propagator never fails the call
  }
  return carrier.traceparent === undefined ? undefined : carrier;
}

/**
 * Reads the trace headers when the call is made, in the caller's context (the HTTP request is
 * sent later: batched, or after a token refresh), for the transport to send.
 */
export function traceLink(): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) => {
      const headers = activeTraceHeaders();
      if (headers) op.context[TRACE_HEADERS] = headers;
      return next(op);
    };
}
