/**
 * The few places the request path, the database client, password hashing and the mail worker
 * call into observability. Every hook is undefined unless tracing, metrics or slow logs are
 * configured (observability/index.ts sets them once at start-up), so with all of it off a call
 * costs one property read and no allocation. This module imports nothing: OpenTelemetry and
 * prom-client are loaded (dynamic import) only when configured.
 */

/** What a tRPC middleware returns: a result, or an error with a tRPC code. */
export interface ProcedureOutcome {
  ok: boolean;
  error?: { code: string };
}

/** The facts a procedure hook reads of its call (a subset of the tRPC context). */
export interface ProcedureCallFacts {
  request: { requestId: string; userId: string | undefined };
}

export type ProcedureHook = <R extends ProcedureOutcome>(
  ctx: ProcedureCallFacts,
  type: string,
  path: string,
  run: () => Promise<R>,
) => Promise<R>;

export type SpanAttributes = Record<string, string | number | boolean>;

/** Runs `work` in a child span of the active one (a root span outside requests). */
export type SpanHook = <T>(name: string, attributes: SpanAttributes, work: () => Promise<T>) => Promise<T>;

/** Called when one SQL statement is sent; the returned function when its answer (or error) arrives. */
export type QueryHook = (text: string) => (error: Error | null) => void;

export interface Hooks {
  /** Around every procedure call (tRPC, each call of a batch, REST): span, RED metrics, slow log. */
  procedure: ProcedureHook | undefined;
  /** Around argon2 hashing and mail delivery. */
  span: SpanHook | undefined;
  /** How long a password operation waited for a hashing slot. */
  hashWaited: ((ms: number) => void) | undefined;
  /** Every audit event (rate-limit refusals and refresh-token reuse are counted from here). */
  audit: ((event: string, fields: Readonly<Record<string, unknown>>) => void) | undefined;
}

export const hooks: Hooks = { procedure: undefined, span: undefined, hashWaited: undefined, audit: undefined };
