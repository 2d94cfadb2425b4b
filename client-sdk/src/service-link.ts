import type { TRPCLink } from '@trpc/client';
import { observable, type Unsubscribable } from '@trpc/server/observable';
import { SENT_TOKEN } from './auth-link.js';
import { isKeelError } from './errors.js';
import type { ServiceTokenSource } from './service-token.js';
import type { AppRouter } from './types.js';

/**
 * A call answered UNAUTHORIZED is sent once more with a fresh token (the one it carried is
 * forgotten first, unless another call already replaced it). A second UNAUTHORIZED is the answer.
 */
export function serviceRetryLink(source: ServiceTokenSource): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        let subscription: Unsubscribable | undefined;
        let closed = false;
        const attempt = (retried: boolean) => {
          const context = { ...op.context };
          subscription = next({ ...op, context }).subscribe({
            next: (envelope) => observer.next(envelope),
            complete: () => observer.complete(),
            error: (error) => {
              if (retried || closed || !isKeelError(error, 'UNAUTHORIZED')) return observer.error(error);
              const sent = context[SENT_TOKEN];
              if (typeof sent === 'string') source.invalidate(sent);
              attempt(true);
            },
          });
        };
        attempt(false);
        return () => {
          closed = true;
          subscription?.unsubscribe();
        };
      });
}
