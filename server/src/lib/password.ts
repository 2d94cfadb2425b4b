import { performance } from 'node:perf_hooks';
import { type Algorithm, hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';
import type { Config } from '../config.js';
import { hooks } from '../observability/hooks.js';

/** `Algorithm.Argon2id`: the package exports a const enum, which isolated modules cannot read. */
const ARGON2ID = 2 as Algorithm;

export type PasswordParams = Config['passwords'];

/** The hashing slots: at most `concurrency` jobs run, the rest wait in order (p-limit). */
const slots = pLimit(1);
/** Password operations admitted and not yet finished (see `admitPasswordWork`). */
let admitted = 0;
/** Moving average of one hashing job's run time, for the Retry-After of a refused operation. */
let averageJobMs = 50;

/**
 * At most `limit` hashes at once in this process. Hashing runs on libuv's thread pool (4 threads),
 * so the event loop keeps serving; but more hashes than cores only make them contend with the
 * event loop and each other, and each holds `memoryKib` of memory (19 MiB by default) while it runs.
 * Waiters are served in order, and a freed slot goes to the next one, so the limit is never overshot.
 */
export function withHashingSlot<T>(limit: number, work: () => Promise<T>): Promise<T> {
  if (slots.concurrency !== limit) slots.concurrency = limit;
  const asked = hooks.hashWaited === undefined ? 0 : performance.now();
  return slots(async () => {
    const started = performance.now();
    hooks.hashWaited?.(started - asked);
    try {
      return await work();
    } finally {
      averageJobMs = 0.9 * averageJobMs + 0.1 * (performance.now() - started);
    }
  });
}

export type PasswordAdmission = { admitted: true; release: () => void } | { admitted: false; retryAfterSeconds: number };

/**
 * A place for one password operation (a sign-in, registration, change or reset: one or two hashes
 * and the queries around them) among the `concurrency + queue` this process accepts at once.
 * Taken before the operation's first query and released when it ends, so a flood of sign-ins
 * neither waits unboundedly for a hashing slot nor holds database connections while it waits:
 * the excess is refused at once, at the price of parsing the request. `release` is idempotent.
 */
export function admitPasswordWork(params: Pick<PasswordParams, 'concurrency' | 'queue'>): PasswordAdmission {
  if (admitted >= params.concurrency + params.queue) {
    // About when the operations already admitted will have run: a client retrying then finds room.
    const retryAfterSeconds = Math.max(1, Math.ceil((admitted * averageJobMs) / params.concurrency / 1000));
    return { admitted: false, retryAfterSeconds };
  }
  admitted++;
  let released = false;
  return {
    admitted: true,
    release: () => {
      if (released) return;
      released = true;
      admitted--;
    },
  };
}

/** argon2id through @node-rs/argon2, off the event loop, at most `params.concurrency` at a time. */
export function hashPassword(password: string, params: PasswordParams): Promise<string> {
  const work = () =>
    withHashingSlot(params.concurrency, () =>
      hash(password, { algorithm: ARGON2ID, memoryCost: params.memoryKib, timeCost: params.iterations, parallelism: params.parallelism }),
    );
  // The span covers the wait for a slot too: under a login burst that is where the time goes.
  return hooks.span === undefined ? work() : hooks.span('argon2.hash', { 'argon2.memory_kib': params.memoryKib }, work);
}

/** Password operations now: hashing (`active`), waiting for a slot (`waiting`), admitted in all (`admitted`). */
export function passwordWork(): { active: number; waiting: number; admitted: number } {
  return { active: slots.activeCount, waiting: slots.pendingCount, admitted };
}

export async function verifyPassword(
  passwordHash: string,
  password: string,
  params: Pick<PasswordParams, 'concurrency'>,
): Promise<boolean> {
  try {
    const work = () => withHashingSlot(params.concurrency, () => verify(passwordHash, password));
    return await (hooks.span === undefined ? work() : hooks.span('argon2.verify', {}, work));
  } catch {
    return false; // a malformed stored hash never matches
  }
}

/** True when a stored hash was made with other parameters than the configured ones (rehash on login). */
export function needsRehash(passwordHash: string, params: PasswordParams): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash);
  if (!match) return true;
  return Number(match[1]) !== params.memoryKib || Number(match[2]) !== params.iterations || Number(match[3]) !== params.parallelism;
}
