/**
 * Refusal pacing: a 429 answer is held for a moment before it is sent.
 *
 * A client that never waits (a credential-stuffing script, a retry loop without backoff) turns
 * every cheap refusal into its next request at once: 200 such connections kept one core busy
 * answering 429s, and every other request queued behind their sockets (issue 13, `pnpm
 * bench:auth`). Holding each refusal for up to `delayMs` (never longer than its own Retry-After,
 * with jitter so the held clients do not come back in step) bounds what such a connection costs to
 * about one request per `delayMs`, whatever it does, while a well-behaved client, which waits for
 * Retry-After anyway, loses nothing. The refusal itself is still decided before any query: holding
 * costs a timer, not a database connection or a hashing slot.
 *
 * At most `maxHeld` answers are held at once (a timer and the connection each, which the client
 * holds open anyway); past that, refusals are answered at once. On shutdown every held answer is
 * sent at once (`releaseAll`), so a stop never waits for them.
 */

export interface RefusalPacerOptions {
  /** The longest hold, ms; 0 turns pacing off. */
  delayMs: number;
  /** Answers held at once, at most. */
  maxHeld: number;
  /** For tests: [0, 1) like Math.random. */
  random?: () => number;
}

/** One held answer: `released` resolves when it may be sent; `cancel` frees its place at once (its client left). */
export interface HeldAnswer {
  released: Promise<void>;
  cancel(): void;
}

export interface RefusalPacer {
  /**
   * Holds a refusal with this Retry-After (seconds), or undefined for "send it now" (pacing off,
   * or `maxHeld` answers already held).
   */
  hold(retryAfterSeconds: number | undefined): HeldAnswer | undefined;
  /** Sends every held answer now (shutdown). Later refusals are answered at once. */
  releaseAll(): void;
  /** Answers held now. */
  readonly held: number;
}

export function createRefusalPacer(options: RefusalPacerOptions): RefusalPacer {
  const random = options.random ?? Math.random;
  const waiting = new Map<NodeJS.Timeout, () => void>();
  let stopped = false;
  const release = (timer: NodeJS.Timeout) => {
    const resolve = waiting.get(timer);
    if (!resolve) return;
    clearTimeout(timer);
    waiting.delete(timer);
    resolve();
  };
  return {
    hold(retryAfterSeconds) {
      if (stopped || options.delayMs <= 0 || waiting.size >= options.maxHeld) return undefined;
      // Between half and all of the delay: clients refused in the same instant come back spread out.
      const ceiling = Math.min(options.delayMs, (retryAfterSeconds ?? Number.POSITIVE_INFINITY) * 1000);
      const ms = Math.round(ceiling * (0.5 + random() / 2));
      if (ms <= 0) return undefined;
      let timer: NodeJS.Timeout | undefined;
      const released = new Promise<void>((resolve) => {
        timer = setTimeout(() => release(timer as NodeJS.Timeout), ms);
        waiting.set(timer, resolve);
      });
      return { released, cancel: () => release(timer as NodeJS.Timeout) };
    },
    releaseAll() {
      stopped = true;
      for (const timer of [...waiting.keys()]) release(timer);
    },
    get held() {
      return waiting.size;
    },
  };
}

/** The Retry-After (whole seconds) of an answer's header, if it has one. */
export function retryAfterOf(header: unknown): number | undefined {
  const value = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's refusal pacer (held answers, for metrics and tests). */
    refusalPacer: RefusalPacer;
  }
}
