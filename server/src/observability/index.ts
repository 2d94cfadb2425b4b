/**
 * Observability's start-up: tracing (OpenTelemetry), metrics (Prometheus) and slow logs, each
 * loaded and wired to the hooks (hooks.ts) only when configured. With nothing configured this
 * returns undefined, sets no hook and loads neither library: the request path pays one property
 * read per hook site. See README "Observability" and docs/decisions/0019-observability.md.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { unredacted } from '../logger.js';
import { hooks, type ProcedureHook, type QueryHook } from './hooks.js';
import { type HttpObservation, httpObservation } from './http.js';
import { setTraceLogFields } from './log-fields.js';
import type { Metrics } from './metrics.js';
import type { Tracing } from './tracing.js';

export interface Observability {
  /** For createDatabase: a span per SQL statement, slow-statement logs. */
  readonly query: QueryHook | undefined;
  /** For buildApp: HTTP spans and metrics, GET /metrics on the main port. */
  readonly http: HttpObservation;
  readonly metrics: Metrics | undefined;
  readonly tracing: Tracing | undefined;
  /** Pool, mail outbox and migration gauges on this database's pool. */
  watchDatabase(pool: import('pg').Pool, migrationsTable: string): void;
  migrationsApplied(count: number): void;
  /** Starts the METRICS_PORT listener when configured; its URL. */
  listen(): Promise<string | undefined>;
  /** Flushes the spans still buffered, closes the metrics listener, unsets the hooks. */
  stop(): Promise<void>;
}

/** The call a SQL statement runs for, for the slow-statement log line. */
interface CallScope {
  requestId: string;
  procedure: string;
}

const TRPC_CODE = /^[A-Z_]+$/;
const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRPC_CODE.test(code) ? code : 'INTERNAL_SERVER_ERROR';
};

export async function startObservability(config: Config, logger: Logger): Promise<Observability | undefined> {
  const { tracing: tracingConfig, metrics: metricsConfig, slowProcedureMs, slowQueryMs } = config.observability;
  if (!tracingConfig && !metricsConfig && slowProcedureMs === 0 && slowQueryMs === 0) return undefined;

  const tracing = tracingConfig ? await (await import('./tracing.js')).startTracing(tracingConfig) : undefined;
  const metrics = metricsConfig ? (await import('./metrics.js')).createMetrics(metricsConfig.token) : undefined;
  // Node 20's AsyncLocalStorage runs a hook on every promise once enabled: it is what tracing and
  // the slow-SQL attribution cost most (README "What it costs").
  const scope = slowQueryMs > 0 ? new AsyncLocalStorage<CallScope>() : undefined;
  const log = unredacted(logger);

  const procedure: ProcedureHook = (ctx, type, path, run) => {
    const started = performance.now();
    const finish = (code: string) => {
      const ms = performance.now() - started;
      metrics?.procedure(path, type, code, ms / 1000);
      if (slowProcedureMs > 0 && ms >= slowProcedureMs)
        log.warn({ reqId: ctx.request.requestId, procedure: path, type, code, durationMs: Math.round(ms * 10) / 10 }, 'slow procedure');
    };
    const exec = scope ? () => scope.run({ requestId: ctx.request.requestId, procedure: path }, run) : run;
    if (tracing) {
      let code = 'OK';
      return tracing.procedure(
        path,
        type,
        async () => {
          try {
            const result = await exec();
            if (!result.ok) code = codeOf(result.error);
            return result;
          } catch (error) {
            code = codeOf(error);
            throw error;
          }
        },
        (span) => {
          tracing.setProcedureOutcome(span, code, ctx.request.userId);
          finish(code);
        },
      );
    }
    return exec().then(
      (result) => {
        finish(result.ok ? 'OK' : codeOf(result.error));
        return result;
      },
      (error: unknown) => {
        finish(codeOf(error));
        throw error;
      },
    );
  };

  const query: QueryHook | undefined =
    tracing || slowQueryMs > 0
      ? (text) => {
          const started = performance.now();
          const span = tracing?.startQuery(text);
          return (error) => {
            if (span) tracing?.endQuery(span, error);
            if (slowQueryMs === 0) return;
            const ms = performance.now() - started;
            if (ms < slowQueryMs) return;
            const call = scope?.getStore();
            // The statement as sent: Prisma and Keel's typed SQL send parameters apart ($1, $2), never in the text.
            log.warn(
              {
                statement: text.slice(0, 2_000),
                durationMs: Math.round(ms * 10) / 10,
                procedure: call?.procedure,
                reqId: call?.requestId,
                failed: error ? true : undefined,
              },
              'slow query',
            );
          };
        }
      : undefined;

  hooks.procedure = procedure;
  hooks.span = tracing?.span;
  hooks.hashWaited = metrics ? (ms) => metrics.hashWaited(ms / 1000) : undefined;
  hooks.audit = metrics?.audit;
  setTraceLogFields(tracing?.logFields);

  const steps: string[] = [];
  if (tracingConfig)
    steps.push(
      `tracing to OTLP (${tracingConfig.protocol}, sampler ${tracingConfig.sampler}${tracingConfig.sampler.includes('ratio') ? ` ${tracingConfig.samplerArg}` : ''})`,
    );
  if (metricsConfig) steps.push(`metrics${metricsConfig.token ? ' at /metrics for bearers of METRICS_TOKEN' : ''}`);
  if (slowProcedureMs > 0) steps.push(`slow procedures over ${slowProcedureMs} ms logged`);
  if (slowQueryMs > 0) steps.push(`slow SQL over ${slowQueryMs} ms logged`);
  logger.info(`observability: ${steps.join('; ')}`);

  let stopped: Promise<void> | undefined;
  return {
    query,
    http: httpObservation({ tracing, metrics, metricsOnMainPort: metricsConfig?.token !== undefined }),
    metrics,
    tracing,
    watchDatabase(pool, migrationsTable) {
      metrics?.watchDatabase(pool, migrationsTable);
    },
    migrationsApplied(count) {
      metrics?.migrationsAppliedAtStart(count);
    },
    async listen() {
      if (!metrics || metricsConfig?.port === undefined) return undefined;
      const url = await metrics.listen(metricsConfig.host, metricsConfig.port);
      logger.info(`metrics: ${url}${metricsConfig.token ? ' (bearer METRICS_TOKEN)' : ''}`);
      return url;
    },
    stop() {
      stopped ??= (async () => {
        hooks.procedure = undefined;
        hooks.span = undefined;
        hooks.hashWaited = undefined;
        hooks.audit = undefined;
        setTraceLogFields(undefined);
        await metrics?.close();
        await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'tracing: flushing the last spans failed'));
      })();
      return stopped;
    },
  };
}
