/**
 * Load generation for benchmarks: autocannon (typed here, as the package ships no types), a
 * steady latency sampler for "how fast is a cheap call while something else floods", and the
 * arithmetic both share.
 */
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

/** One request autocannon sends; `setupRequest` may rewrite it before every send. */
export interface LoadRequest {
  method?: 'GET' | 'POST';
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: LoadRequest, context: Record<string, unknown>) => LoadRequest | null;
  /** Called with each response (the body is only collected when this is set). */
  onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  requests?: LoadRequest[];
  /** Seconds before a request counts as a timeout. */
  timeout?: number;
}

interface Histogram {
  average: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  total: number;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: Histogram;
  requests: Histogram & { sent: number };
  statusCodeStats?: Record<string, { count: number }>;
}

type Autocannon = (
  options: LoadOptions & { setupClient?: unknown },
  done: (error: Error | null, result: AutocannonResult) => void,
) => { stop(): void };

let loaded: Autocannon | undefined;

/** autocannon, or a message saying how to get it. */
export function loadAutocannon(): Autocannon {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('autocannon') as Autocannon;
    return loaded;
  } catch (error) {
    throw new Error(
      `autocannon is not installed (${error instanceof Error ? error.message.split('\n')[0] : String(error)}). ` +
        'It is a root devDependency: run `pnpm install` at the repository root.',
    );
  }
}

export interface LoadResult {
  /** Successful (2xx) responses per second over the whole run. */
  okPerSecond: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  /** Milliseconds, as autocannon measures them (whole milliseconds). */
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  /** Responses by HTTP status. */
  statuses: Record<string, number>;
}

/** Runs autocannon to the end of its duration (bounded: duration plus the request timeout). */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const autocannon = loadAutocannon();
  return new Promise((resolve, reject) => {
    const instance = autocannon({ timeout: 10, ...options }, (error, result) => {
      clearTimeout(guard);
      if (error) return reject(error);
      resolve({
        okPerSecond: result['2xx'] / result.duration,
        ok: result['2xx'],
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        durationSeconds: result.duration,
        latencyP50: result.latency.p50,
        latencyP99: result.latency.p99,
        latencyMax: result.latency.max,
        statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count])),
      });
    });
    // autocannon stops itself; this only guards against it never calling back.
    const guard = setTimeout(() => instance.stop(), (options.duration + (options.timeout ?? 10) + 5) * 1000);
  });
}

export interface LatencySample {
  samples: number;
  failures: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface SamplerOptions {
  url: string;
  headers?: Record<string, string>;
  /** One request every `intervalMs` (the next waits for the previous: at most one in flight). */
  intervalMs: number;
  durationMs: number;
}

/**
 * A steady sampler: GET `url` at a fixed pace over one keep-alive connection, timing each request
 * with sub-millisecond resolution. Non-2xx answers and errors count as failures (not as samples).
 */
export async function sampleLatency(options: SamplerOptions): Promise<LatencySample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const target = new URL(options.url);
  const timings: number[] = [];
  let failures = 0;
  const end = performance.now() + options.durationMs;
  try {
    while (performance.now() < end) {
      const started = performance.now();
      const ok = await new Promise<boolean>((resolve) => {
        const req = request(
          {
            agent,
            host: target.hostname,
            port: target.port,
            path: `${target.pathname}${target.search}`,
            headers: options.headers,
            timeout: 10_000,
          },
          (res) => {
            res.resume();
            res.once('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
          },
        );
        req.once('timeout', () => req.destroy(new Error('timeout')));
        req.once('error', () => resolve(false));
        req.end();
      });
      const elapsed = performance.now() - started;
      if (ok) timings.push(elapsed);
      else failures += 1;
      const wait = options.intervalMs - elapsed;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } finally {
    agent.destroy();
  }
  timings.sort((a, b) => a - b);
  return {
    samples: timings.length,
    failures,
    p50: percentile(timings, 50),
    p90: percentile(timings, 90),
    p99: percentile(timings, 99),
    max: timings.at(-1) ?? Number.NaN,
  };
}

/** Nearest-rank percentile of sorted values (NaN when there are none). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Runs `task` on up to `concurrency` items at a time; resolves with the results in order. */
export async function mapConcurrent<T, R>(items: T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
