/**
 * Retries that lose nothing: a mutation sent with an `Idempotency-Key` header runs once per key;
 * a retry of the same call (same caller, key and input) within the key's lifetime gets the first
 * answer again instead of running twice (two projects from one lost answer). The design follows
 * the IETF draft "The Idempotency-Key HTTP Header Field" (docs/decisions/0017-idempotency.md):
 *
 * - `claim` inserts the key before the call; only one caller wins it. A key whose call is still
 *   running answers CONFLICT (retry shortly); a key met with another input is a CONFLICT for good.
 * - `complete` stores the answer (superjson's form) after the call succeeded; a failed call
 *   `release`s its claim, so that a retry runs again (a failed call wrote nothing).
 * - A claim left without an answer for longer than a request can run (a crash mid-call) may be
 *   claimed again.
 *
 * Kept in PostgreSQL, so every instance sees every key; rows expire after IDEMPOTENCY_TTL_SECONDS.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import superjson from 'superjson';
import { AppError } from './errors.js';

/** What the IETF draft and common practice accept: visible ASCII, at most 255 characters. */
const KEY = /^[\x21-\x7e]{1,255}$/;

export type Claim =
  /** Run the call, then `complete` or `release`. */
  | { kind: 'run' }
  /** The call ran before: its answer. */
  | { kind: 'replay'; answer: unknown };

export interface IdempotencyStore {
  claim(input: { scope: string; key: string; path: string; rawInput: unknown }): Promise<Claim>;
  complete(input: { scope: string; key: string; answer: unknown }): Promise<void>;
  release(input: { scope: string; key: string }): Promise<void>;
  /** Deletes expired keys (done every few minutes once keys are used). */
  sweep(): Promise<number>;
  /** Stops the sweeping. */
  stop(): void;
}

export interface IdempotencyOptions {
  ttlSeconds: number;
  /** After this long a claim without an answer is taken to be abandoned (longer than any request). */
  abandonedAfterMs: number;
  now: () => Date;
}

/** The client's key, or BAD_REQUEST when it is not one. */
export function parseIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !KEY.test(value)) {
    throw new AppError('BAD_REQUEST', 'Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is best).', {
      reason: 'INVALID_IDEMPOTENCY_KEY',
    });
  }
  return value;
}

const fingerprintOf = (path: string, rawInput: unknown): string =>
  createHash('sha256')
    .update(path)
    .update('\u0000')
    .update(JSON.stringify(rawInput) ?? '')
    .digest('hex');

const CLAIM = `
  INSERT INTO idempotency_keys AS k (scope, key, path, fingerprint, created_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (scope, key) DO UPDATE
    SET path = EXCLUDED.path, fingerprint = EXCLUDED.fingerprint, answer = NULL,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    -- taken over only when expired, or claimed long ago and never answered (a crash mid-call)
    WHERE k.expires_at <= $5 OR (k.answer IS NULL AND k.created_at < $7)
  RETURNING 1`;

const SWEEP_EVERY_MS = 5 * 60_000;

export function createIdempotencyStore(pool: pg.Pool, options: IdempotencyOptions): IdempotencyStore {
  let sweeper: NodeJS.Timeout | undefined;
  let stopped = false;
  const sweep = async () => {
    const { rowCount } = await pool.query('DELETE FROM idempotency_keys WHERE expires_at <= $1', [options.now()]);
    return rowCount ?? 0;
  };
  return {
    async claim({ scope, key, path, rawInput }) {
      if (!sweeper && !stopped) {
        sweeper = setInterval(() => void sweep().catch(() => {}), SWEEP_EVERY_MS);
        sweeper.unref();
      }
      const fingerprint = fingerprintOf(path, rawInput);
      const at = options.now();
      const expires = new Date(at.getTime() + options.ttlSeconds * 1000);
      const abandoned = new Date(at.getTime() - options.abandonedAfterMs);
      const won = await pool.query(CLAIM, [scope, key, path, fingerprint, at, expires, abandoned]);
      if (won.rowCount === 1) return { kind: 'run' };
      const { rows } = await pool.query<{ fingerprint: string; answer: string | null }>(
        'SELECT fingerprint, answer FROM idempotency_keys WHERE scope = $1 AND key = $2',
        [scope, key],
      );
      const row = rows[0];
      // Gone between the two statements (released by a failed call): the caller may retry at once.
      if (!row) throw inProgress();
      if (row.fingerprint !== fingerprint) {
        throw new AppError('CONFLICT', 'This Idempotency-Key was used for another call. Use a new key for a new call.', {
          reason: 'IDEMPOTENCY_KEY_REUSED',
          fieldErrors: { 'Idempotency-Key': ['was used for another call'] },
        });
      }
      if (row.answer === null) throw inProgress();
      return { kind: 'replay', answer: superjson.deserialize(JSON.parse(row.answer)) };
    },

    async complete({ scope, key, answer }) {
      await pool.query('UPDATE idempotency_keys SET answer = $3 WHERE scope = $1 AND key = $2', [
        scope,
        key,
        JSON.stringify(superjson.serialize(answer)),
      ]);
    },

    async release({ scope, key }) {
      await pool.query('DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND answer IS NULL', [scope, key]);
    },

    sweep,

    stop() {
      stopped = true;
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
    },
  };
}

const inProgress = () =>
  new AppError('CONFLICT', 'A call with this Idempotency-Key is still running. Retry in a moment.', {
    reason: 'IDEMPOTENCY_KEY_IN_PROGRESS',
    retryAfterSeconds: 1,
  });
