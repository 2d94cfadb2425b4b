import { type AppRouter, createKeelClient, isKeelError } from '@keel/client-sdk';
import { keelSubscriptions } from '@keel/client-sdk/live';
import { createTRPCContext } from '@trpc/tanstack-react-query';

/** The API (`pnpm dev` serves it on port 3000); VITE_KEEL_API_URL points elsewhere. */
export const API_URL: string = import.meta.env.VITE_KEEL_API_URL ?? 'http://127.0.0.1:3000';

/** Fired when the server refuses to refresh the session (expired, revoked, signed out elsewhere). */
export const sessionEvents = new EventTarget();

/**
 * One client for the page: cookie mode (the refresh token lives in an HttpOnly cookie, the access
 * token in memory), and live updates over SSE with the access token in a header.
 */
export const keel = createKeelClient({
  url: API_URL,
  auth: 'cookie',
  subscriptions: keelSubscriptions(),
  onSessionExpired: () => sessionEvents.dispatchEvent(new Event('expired')),
});

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

/** The server's per-field messages (`fieldErrors`), or none. */
export function fieldErrorsOf(error: unknown): Record<string, string[]> {
  return isKeelError(error) ? (error.data?.fieldErrors ?? {}) : {};
}

/** A sentence for the user: the server's message, or a network failure's. */
export function messageOf(error: unknown): string {
  if (isKeelError(error)) return error.message;
  return error instanceof Error ? error.message : 'Something went wrong.';
}
