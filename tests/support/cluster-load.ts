/**
 * A bounded mixed load through a balancer, for the cluster scenarios: `connections` loops, each
 * sending reads (projects.list) and, every fourth call, a write (projects.create with a unique
 * name), until `stop()`. Every outcome is kept: which instance answered (X-Keel-Server), when it
 * started and ended, and the id of every acknowledged write, to look for it in the database.
 */
import superjson from 'superjson';

export interface Outcome {
  kind: 'read' | 'write';
  /** performance.now() at the send and at the end of the answer. */
  start: number;
  end: number;
  status: number | 'network-error';
  server: string | undefined;
  detail?: string;
}

export interface LoadRun {
  outcomes: Outcome[];
  /** Ids of the projects whose creation was answered 200. */
  acknowledged: string[];
  /** Ends the loops after their current call; resolves once all have. */
  stop(): Promise<void>;
  /** Resolves once `count` more calls have completed. */
  completed(count: number): Promise<void>;
}

const LIST_INPUT = encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 20 })));

export function startLoad(options: { url: string; accessTokens: string[]; connections: number; tag: string }): LoadRun {
  const outcomes: Outcome[] = [];
  const acknowledged: string[] = [];
  let running = true;
  let waiters: { target: number; resolve: () => void }[] = [];
  const record = (outcome: Outcome) => {
    outcomes.push(outcome);
    const reached = waiters.filter((w) => outcomes.length >= w.target);
    if (reached.length === 0) return;
    waiters = waiters.filter((w) => outcomes.length < w.target);
    for (const w of reached) w.resolve();
  };

  async function loop(worker: number): Promise<void> {
    for (let n = 0; running; n++) {
      const token = options.accessTokens[(worker + n) % options.accessTokens.length] as string;
      const write = n % 4 === 3;
      const start = performance.now();
      try {
        const response = write
          ? await fetch(`${options.url}/trpc/projects.create`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: JSON.stringify(superjson.serialize({ name: `${options.tag}-${worker}-${n}` })),
            })
          : await fetch(`${options.url}/trpc/projects.list?input=${LIST_INPUT}`, { headers: { authorization: `Bearer ${token}` } });
        const body = await response.text();
        const outcome: Outcome = {
          kind: write ? 'write' : 'read',
          start,
          end: performance.now(),
          status: response.status,
          server: response.headers.get('x-keel-server') ?? undefined,
        };
        if (response.status !== 200) outcome.detail = body.slice(0, 300);
        else if (write) {
          const parsed = JSON.parse(body) as { result: { data: Parameters<typeof superjson.deserialize>[0] } };
          acknowledged.push(superjson.deserialize<{ id: string }>(parsed.result.data).id);
        }
        record(outcome);
      } catch (error) {
        record({
          kind: write ? 'write' : 'read',
          start,
          end: performance.now(),
          status: 'network-error',
          server: undefined,
          detail: error instanceof Error ? `${error.message} ${String(error.cause ?? '')}` : String(error),
        });
      }
    }
  }

  const loops = Array.from({ length: options.connections }, (_, worker) => loop(worker));
  return {
    outcomes,
    acknowledged,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
    completed(count) {
      const target = outcomes.length + count;
      return new Promise<void>((resolve) => {
        if (outcomes.length >= target) resolve();
        else waiters.push({ target, resolve });
      });
    },
  };
}

export const failed = (outcomes: Outcome[]): Outcome[] => outcomes.filter((o) => o.status !== 200);
