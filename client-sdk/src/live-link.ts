/**
 * Subscriptions that outlive a token: the stream's request carries the access token of the moment
 * (fetch-based EventSource, event-source.ts); when the server ends a stream UNAUTHORIZED (the token
 * expired, or it was refused at connect), the session is refreshed once and the subscription
 * reopened from the last event id it received, so nothing within the server's replay window is
 * missed. A stream dropped for any other passing reason (network, SERVICE_UNAVAILABLE, a 5xx) is
 * reopened after a growing delay. A session that cannot be refreshed ends the subscription with
 * UNAUTHORIZED (and `onSessionExpired`).
 */
import type { TRPCClientError, TRPCLink } from '@trpc/client';
import { observable, type Unsubscribable } from '@trpc/server/observable';
import type { RefreshOutcome } from './session.js';
import type { AppRouter } from './types.js';

/** What the link needs of the client's session. */
export interface LiveSession {
  beforeCall(): Promise<RefreshOutcome | undefined>;
  refresh(): Promise<RefreshOutcome>;
}

export interface ResumeOptions {
  /** First and longest wait before reopening a stream that dropped. */
  initialDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
}

type ClientError = TRPCClientError<AppRouter>;

const codeOf = (error: ClientError): string | undefined => (error.data as { code?: string } | undefined)?.code;
/** Passing failures: the stream is reopened. Anything else (FORBIDDEN, NOT_FOUND, a limit) ends it. */
const TRANSIENT = new Set(['SERVICE_UNAVAILABLE', 'BAD_GATEWAY', 'GATEWAY_TIMEOUT', 'INTERNAL_SERVER_ERROR', 'TIMEOUT']);

export function resumingLink(session: LiveSession, options: ResumeOptions = {}): TRPCLink<AppRouter> {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 15_000;
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        let closed = false;
        let lastEventId: string | undefined;
        let inner: Unsubscribable | undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        let failures = 0;
        /** UNAUTHORIZED answers since the last event: a second one after a refresh ends the stream. */
        let refusals = 0;

        const open = async () => {
          const before = await session.beforeCall();
          if (closed) return;
          if (before?.status === 'expired') {
            refusals = 1;
          }
          const input =
            lastEventId === undefined ? op.input : { ...(typeof op.input === 'object' && op.input !== null ? op.input : {}), lastEventId };
          inner = next({ ...op, input }).subscribe({
            next(envelope) {
              const result = envelope.result as { id?: unknown; type?: string };
              if (typeof result.id === 'string') {
                lastEventId = result.id;
                failures = 0;
                refusals = 0;
              }
              observer.next(envelope);
            },
            complete() {
              if (!closed) observer.complete();
            },
            error(error) {
              if (closed) return;
              void recover(error);
            },
          });
        };

        const reopenLater = () => {
          const delay = Math.min(max, initial * 2 ** Math.min(failures, 10));
          failures++;
          timer = setTimeout(() => void open().catch((e: unknown) => observer.error(e as ClientError)), delay);
        };

        const recover = async (error: ClientError) => {
          const code = codeOf(error);
          if (code === 'UNAUTHORIZED') {
            if (refusals > 0) return observer.error(error);
            refusals++;
            const outcome = await session.refresh();
            if (closed) return;
            if (outcome.status === 'refreshed') return open();
            if (outcome.status === 'failed') return reopenLater();
            return observer.error(error);
          }
          // No code: the request itself failed (network, a refused connection): passing.
          if (code === undefined || TRANSIENT.has(code)) return reopenLater();
          observer.error(error);
        };

        open().catch((error: unknown) => observer.error(error as ClientError));
        return () => {
          closed = true;
          clearTimeout(timer);
          inner?.unsubscribe();
        };
      });
}
