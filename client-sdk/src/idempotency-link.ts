import type { TRPCLink } from '@trpc/client';
import { observable, type Unsubscribable } from '@trpc/server/observable';
import { isKeelError } from './errors.js';
import type { AppRouter } from './types.js';

/** Set on a mutation's operation: the Idempotency-Key its requests carry (the retry's too). */
export const IDEMPOTENCY_KEY = 'keelIdempotencyKey';

/**
 * The mutations whose input or answer holds a password or a token: the server stores nothing of
 * them and refuses an Idempotency-Key (their `handlesSecrets` meta; a test keeps the lists equal).
 */
export const SECRET_CALLS: ReadonlySet<string> = new Set([
  'auth.register',
  'auth.login',
  'auth.refresh',
  'auth.changePassword',
  'auth.resetPassword',
  'auth.verifyEmail',
]);

/** How long to wait before the one retry of a mutation whose answer was lost. */
export const RETRY_DELAY_MS = 300;

/**
 * A failure after which the mutation may have run, or not: no answer at all (the connection
 * dropped), a gateway or the database not answering, or the same key still running.
 */
function answerLost(error: unknown): boolean {
  if (!isKeelError(error)) return false;
  const data = error.data;
  if (!data) return true;
  if (data.code === 'SERVICE_UNAVAILABLE' || data.code === 'TIMEOUT' || data.code === 'GATEWAY_TIMEOUT' || data.code === 'BAD_GATEWAY')
    return true;
  return data.code === 'CONFLICT' && data.reason === 'IDEMPOTENCY_KEY_IN_PROGRESS';
}

const newKey = (): string => globalThis.crypto.randomUUID();

/**
 * Gives every mutation (but those handling credentials) an Idempotency-Key, and retries it once,
 * with the same key, when its answer was lost: the server runs it at most once and replays the
 * first answer to the retry (lost answers no longer make two projects). Queries are left alone.
 */
export function idempotencyLink(): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        if (op.type !== 'mutation' || SECRET_CALLS.has(op.path)) return next(op).subscribe(observer);
        const context = { ...op.context, [IDEMPOTENCY_KEY]: (op.context[IDEMPOTENCY_KEY] as string | undefined) ?? newKey() };
        let subscription: Unsubscribable | undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const attempt = (retried: boolean) => {
          subscription = next({ ...op, context }).subscribe({
            next: (envelope) => observer.next(envelope),
            complete: () => observer.complete(),
            error: (error) => {
              if (retried || !answerLost(error)) return observer.error(error);
              const wait = Math.max(
                RETRY_DELAY_MS,
                ((error.data as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 0) * 1000,
              );
              timer = setTimeout(() => attempt(true), wait);
            },
          });
        };
        attempt(false);
        return () => {
          if (timer) clearTimeout(timer);
          subscription?.unsubscribe();
        };
      });
}
