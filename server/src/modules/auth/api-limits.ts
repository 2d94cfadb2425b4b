/**
 * The general limit on every procedure: calls per client address and per user in one-minute
 * windows, shared by every instance, without a database round trip per call.
 *
 * Each instance counts in memory and decides on (shared total at its last sync) + (its own calls
 * not yet in that total). About once a second (`RATE_LIMIT_API_SYNC_MS`) one statement adds the
 * instance's new calls to `api_rate_limits` and reads back the totals, which now include the other
 * instances' calls. What an instance cannot see is what the others admitted since its last sync,
 * so with N instances and sync interval T a key gets at most the limit plus what the other N - 1
 * instances admit for it within about one T (their calls reach the shared total at their next
 * sync), and never more than N x limit per window (each instance alone stops at the limit).
 * If the database is away, each instance keeps limiting with what it knows and sends its counts
 * when it is back.
 */
import type pg from 'pg';
import type { Logger } from '../../logger.js';
import { addressKey } from './address-key.js';

/** Who makes a call: the client address (absent for in-process calls) and, once known, the user. */
export interface ApiCaller {
  ip?: string | undefined;
  userId?: string | undefined;
}

export type ApiDecision = { allowed: true } | { allowed: false; limit: 'ip' | 'user'; retryAfterSeconds: number };

export interface ApiLimiter {
  /** Counts one call of `caller` (its address and/or user) unless one of them is spent; synchronous. */
  check(caller: ApiCaller): ApiDecision;
  /** Sends this instance's new counts and reads the shared totals now (otherwise every `syncMs`). */
  sync(): Promise<void>;
  /** Stops the background sync after a last one. */
  stop(): Promise<void>;
}

export interface ApiLimiterOptions {
  pool: pg.Pool;
  perIp: number;
  perUser: number;
  syncMs: number;
  /** Epoch milliseconds. */
  now: () => number;
  log: Logger;
  /** Keys kept in memory at most; the oldest goes first (its count restarts from the shared total). */
  maxKeys?: number;
}

const WINDOW_MS = 60_000;
/** ~100 bytes each: 100k keys (distinct addresses and users in one minute) stay near 10 MiB. */
const DEFAULT_MAX_KEYS = 100_000;
const ALLOWED: ApiDecision = { allowed: true };

interface Counter {
  window: number;
  /** The shared total at the last sync (this instance's earlier calls included). */
  shared: number;
  /** Calls being added by the sync in flight. */
  sending: number;
  /** Calls since, not yet sent. */
  pending: number;
}

/**
 * One statement per sync: adds the increments and returns the new totals. Keys are sorted, so two
 * instances lock the rows they share in the same order and never deadlock each other.
 */
const ADD_AND_READ = `
  INSERT INTO api_rate_limits AS r (key, window_start, count)
  SELECT t.key, $1, t.n FROM unnest($2::text[], $3::int[]) AS t(key, n) ORDER BY t.key
  ON CONFLICT (key, window_start) DO UPDATE SET count = r.count + EXCLUDED.count
  RETURNING key, count`;

export function createApiLimiter(options: ApiLimiterOptions): ApiLimiter {
  const { pool, now, log } = options;
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  const counters = new Map<string, Counter>();
  /** Counters with calls not yet sent. */
  const dirty = new Map<string, Counter>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let sweptWindow = -1;
  let failing = false;
  let stopped = false;

  function counterFor(key: string, window: number): Counter {
    let counter = counters.get(key);
    if (counter && counter.window !== window) {
      counters.delete(key);
      counter = undefined;
    }
    if (!counter) {
      if (counters.size >= maxKeys) {
        const oldest = counters.keys().next().value;
        if (oldest !== undefined) counters.delete(oldest);
      }
      counter = { window, shared: 0, sending: 0, pending: 0 };
      counters.set(key, counter);
    }
    return counter;
  }

  async function syncOnce(): Promise<void> {
    const window = Math.floor(now() / WINDOW_MS);
    const windowStart = new Date(window * WINDOW_MS);
    const cleanup = window !== sweptWindow;
    if (cleanup) {
      for (const [key, counter] of counters) if (counter.window !== window) counters.delete(key);
      sweptWindow = window;
    }
    // Calls of a window that has ended no longer decide anything: they are not sent.
    const batch = [...dirty].filter(([, counter]) => counter.window === window && counter.pending > 0);
    dirty.clear();
    if (batch.length > 0) {
      batch.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, counter] of batch) {
        counter.sending = counter.pending;
        counter.pending = 0;
      }
      try {
        const { rows } = await pool.query<{ key: string; count: number }>(ADD_AND_READ, [
          windowStart,
          batch.map(([key]) => key),
          batch.map(([, counter]) => counter.sending),
        ]);
        const totals = new Map(rows.map((row) => [row.key, Number(row.count)]));
        for (const [key, counter] of batch) {
          counter.shared = Math.max(counter.shared + counter.sending, totals.get(key) ?? 0);
          counter.sending = 0;
        }
        if (failing) log.info('general rate limit: shared counts are reachable again');
        failing = false;
      } catch (error) {
        // Kept for the next sync: meanwhile this instance limits on what it knows.
        for (const [key, counter] of batch) {
          counter.pending += counter.sending;
          counter.sending = 0;
          dirty.set(key, counter);
        }
        if (!failing) log.warn({ err: error }, 'general rate limit: cannot share counts; limiting per instance until the database answers');
        failing = true;
      }
    }
    if (cleanup && batch.length > 0 && !failing) {
      // Once a window: rows of windows before the previous one are never read again.
      await pool.query('DELETE FROM api_rate_limits WHERE window_start < $1', [new Date((window - 1) * WINDOW_MS)]).catch(() => {});
    }
  }

  function sync(): Promise<void> {
    running ??= syncOnce().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    check(caller) {
      // In-process calls (no transport, no address) are the server's own: only their user counts.
      if (caller.ip === undefined && caller.userId === undefined) return ALLOWED;
      const at = now();
      const window = Math.floor(at / WINDOW_MS);
      const ipKey = caller.ip === undefined ? undefined : `ip:${addressKey(caller.ip)}`;
      const userKey = caller.userId === undefined ? undefined : `user:${caller.userId}`;
      const ip = ipKey === undefined ? undefined : counterFor(ipKey, window);
      const user = userKey === undefined ? undefined : counterFor(userKey, window);
      const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - at) / 1000));
      if (ip && ip.shared + ip.sending + ip.pending >= options.perIp) return { allowed: false, limit: 'ip', retryAfterSeconds };
      if (user && user.shared + user.sending + user.pending >= options.perUser) return { allowed: false, limit: 'user', retryAfterSeconds };
      if (ip && ipKey) {
        ip.pending += 1;
        dirty.set(ipKey, ip);
      }
      if (user && userKey) {
        user.pending += 1;
        dirty.set(userKey, user);
      }
      if (!timer && !stopped) {
        timer = setInterval(() => void sync(), options.syncMs);
        timer.unref();
      }
      return ALLOWED;
    },
    sync,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
      if (dirty.size > 0) await sync();
    },
  };
}
