/**
 * The trace and span ids pino adds to every log line written inside a traced request (its
 * `mixin`, set only when tracing is configured). Tracing itself loads later and asynchronously
 * (observability/tracing.ts), so the mixin reads whatever this module holds at the time.
 */
type Fields = { trace_id: string; span_id: string } | undefined;

let source: (() => Fields) | undefined;

export function setTraceLogFields(read: (() => Fields) | undefined): void {
  source = read;
}

/** pino's mixin: the active span's ids, or no field. A new object each time: pino merges the line's fields into it. */
export function traceLogFields(): object {
  return source?.() ?? {};
}
