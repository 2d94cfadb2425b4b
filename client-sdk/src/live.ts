/**
 * `@keel/client-sdk/live`: subscriptions for `createKeelClient`. A separate entry point, so that
 * apps without live updates ship none of it.
 *
 * Usage: `createKeelClient({ url, auth: 'cookie', subscriptions: keelSubscriptions() })`, with
 * `keelSubscriptions` taken from `@keel/client-sdk/live`; then
 * `keel.projects.onChange.subscribe(undefined, { onData: ({ data }) => ... })`.
 */
import { httpSubscriptionLink } from '@trpc/client';
import superjson from 'superjson';
import type { SubscriptionTransport } from './client.js';
import { fetchEventSource } from './event-source.js';
import { type ResumeOptions, resumingLink } from './live-link.js';

export type { KeelSourceEvent } from './event-source.js';
export type { LiveSession, ResumeOptions } from './live-link.js';

export interface KeelSubscriptionOptions extends ResumeOptions {
  /** Wait before the event source reconnects a dropped connection (the server may set its own). */
  retryMs?: number | undefined;
}

/** The subscription transport: SSE over fetch with the session's access token, resumed across refreshes. */
export function keelSubscriptions(options: KeelSubscriptionOptions = {}): SubscriptionTransport {
  return ({ url, fetch, credentials, headers, session }) => [
    resumingLink(session, options),
    httpSubscriptionLink({
      url,
      transformer: superjson,
      EventSource: fetchEventSource({ fetch, headers, credentials, retryMs: options.retryMs }),
    }),
  ];
}
