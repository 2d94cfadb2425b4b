/**
 * @keel/client-sdk: a typed client for Keel. It knows the server only through the `AppRouter`
 * type; no server code is imported at run time.
 */
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import superjson from 'superjson';
import type { AppRouter } from '../../server/src/router.js';

export type { AppRouter };
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;

/** The server's default `TRPC_MAX_BATCH_SIZE`: a batch never holds more calls than the server accepts. */
export const DEFAULT_MAX_BATCH_SIZE = 50;

export interface KeelClientOptions {
  /** The server's base URL, e.g. `https://api.example.com` (the client adds `/trpc`). */
  url: string;
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  fetch?: typeof fetch;
  maxBatchSize?: number;
}

export function createKeelClient(options: KeelClientOptions) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${options.url.replace(/\/$/, '')}/trpc`,
        transformer: superjson,
        maxItems: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        headers: options.headers ?? {},
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    ],
  });
}

export type KeelClient = ReturnType<typeof createKeelClient>;

/** Narrows an unknown error to a Keel server error with its typed `data` (code, fieldErrors, requestId). */
export function isKeelError(error: unknown): error is TRPCClientError<AppRouter> {
  return error instanceof TRPCClientError;
}
