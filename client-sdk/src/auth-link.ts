import { TRPCClientError, type TRPCLink } from '@trpc/client';
import { observable, type Unsubscribable } from '@trpc/server/observable';
import { isKeelError } from './errors.js';
import type { Session } from './session.js';
import { type AppRouter, type AuthResult, isTwoFactorChallenge, type LoginResult } from './types.js';

/** Set on each operation by the HTTP links' `headers`: the access token its request actually carried. */
export const SENT_TOKEN = 'keelSentAccessToken';

/** Their results are sessions: the link keeps the tokens. */
const SIGN_IN = new Set(['auth.login', 'auth.register', 'auth.refresh', 'auth.twoFactor.verify', 'auth.oidc.finish']);
const SIGN_OUT = new Set(['auth.logout', 'auth.logoutAll']);
/** Their UNAUTHORIZED is about a password or a mailed token, not the access token: never a reason to refresh. */
const CREDENTIAL_CALLS = new Set([...SIGN_IN, 'auth.requestPasswordReset', 'auth.resetPassword', 'auth.verifyEmail']);

const isUnauthorized = (error: unknown) => isKeelError(error, 'UNAUTHORIZED');

/**
 * Attaches the session to every call (through `session`, read by the HTTP links' headers) and
 * keeps it alive: before a call it waits for a running refresh, or refreshes when the access
 * token is about to expire; a call answered UNAUTHORIZED is retried once, after one shared
 * refresh unless another call already refreshed since it was sent. Sign-in results are stored,
 * sign-outs clear the tokens.
 */
export function authLink(session: Session): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        let closed = false;
        let subscription: Unsubscribable | undefined;
        // Results go out in order, each after the tokens it carries are stored.
        let queue = Promise.resolve();
        const fail = (error: unknown) => observer.error(TRPCClientError.from(error instanceof Error ? error : new Error(String(error))));
        const inOrder = (step: () => void | Promise<void>) => {
          queue = queue
            .then(() => (closed ? undefined : step()))
            .catch((error: unknown) => {
              if (!closed) fail(error);
            });
        };

        const attempt = async (retried: boolean): Promise<void> => {
          let mayRetry = !retried && !CREDENTIAL_CALLS.has(op.path);
          if (!CREDENTIAL_CALLS.has(op.path)) {
            // A refresh that just ended the session has told the app already: no second one for this call.
            if ((await session.beforeCall())?.status === 'expired') mayRetry = false;
          }
          if (closed) return;
          // The session this call is sent for: its UNAUTHORIZED is never retried as someone else.
          const generation = session.generation;
          const context = { ...op.context };
          subscription = next({ ...op, context }).subscribe({
            next: (envelope) =>
              inOrder(async () => {
                if (SIGN_IN.has(op.path) && 'data' in envelope.result) {
                  const data = envelope.result.data as LoginResult;
                  // A challenge carries no tokens: the session starts with `auth.twoFactor.verify`.
                  if (!isTwoFactorChallenge(data)) await session.store(data as AuthResult, op.path !== 'auth.refresh');
                }
                if (SIGN_OUT.has(op.path)) await session.clear();
                observer.next(envelope);
              }),
            complete: () => inOrder(() => observer.complete()),
            error: (error) =>
              inOrder(async () => {
                if (!mayRetry || !isUnauthorized(error) || session.generation !== generation) {
                  if (SIGN_OUT.has(op.path) && isUnauthorized(error)) await session.clear();
                  observer.error(error);
                  return;
                }
                const current = await session.accessToken();
                if (current !== undefined && current !== context[SENT_TOKEN]) return attempt(true);
                const outcome = await session.refresh();
                if (outcome.status === 'refreshed') return attempt(true);
                if (SIGN_OUT.has(op.path)) await session.clear();
                // A refresh that got no answer says more than the UNAUTHORIZED it was meant to cure.
                if (outcome.status === 'failed') fail(outcome.error);
                else observer.error(error);
              }),
          });
        };

        attempt(false).catch((error: unknown) => {
          if (!closed) fail(error);
        });
        return () => {
          closed = true;
          subscription?.unsubscribe();
        };
      });
}
