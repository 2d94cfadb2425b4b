/**
 * tRPC over real HTTP, as a client without the SDK sees it: a mutation is a POST with a superjson
 * body, a query a GET; the answer's superjson envelope is decoded, and its status and headers kept
 * for assertions.
 */
import superjson from 'superjson';

/** A value as superjson serializes it: `{ json, meta? }`. */
export type SuperJsonEnvelope = Parameters<typeof superjson.deserialize>[0];

/** An error as the server's error formatter shapes it (server/src/trpc/init.ts), once decoded. */
export interface TrpcErrorShape {
  message: string;
  code: number;
  data: {
    code: string;
    httpStatus: number;
    path?: string;
    requestId?: string;
    reason?: string;
    fieldErrors?: Record<string, string[]>;
    retryAfterSeconds?: number;
    stack?: string;
  };
}

/** One decoded answer: `data` on success, `error` on failure. */
export interface TrpcAnswer<T> {
  status: number;
  headers: Headers;
  data: T | undefined;
  error: TrpcErrorShape | undefined;
}

/** What auth.login, auth.register and auth.refresh return (the refresh token in bearer mode only). */
export interface AuthBody {
  user: { id: string };
  accessToken: string;
  refreshToken?: string;
}

export type RequestHeaders = Record<string, string>;

/** Decodes one error envelope, e.g. an item of a batch answer. */
export const decodeTrpcError = (envelope: SuperJsonEnvelope): TrpcErrorShape => superjson.deserialize<TrpcErrorShape>(envelope);

/** Decodes the superjson envelope of a single (not batched) call's response. */
export async function decodeAnswer<T>(response: Response): Promise<TrpcAnswer<T>> {
  const body = (await response.json()) as { result?: { data: SuperJsonEnvelope }; error?: SuperJsonEnvelope };
  return {
    status: response.status,
    headers: response.headers,
    data: body.result ? superjson.deserialize<T>(body.result.data) : undefined,
    error: body.error ? decodeTrpcError(body.error) : undefined,
  };
}

/** POSTs `input` to the mutation at `path` (e.g. `auth.login`) of the server at `base`. */
export async function mutate<T = AuthBody>(
  base: string,
  path: string,
  input: unknown,
  headers: RequestHeaders = {},
): Promise<TrpcAnswer<T>> {
  const response = await fetch(`${base}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(superjson.serialize(input)),
  });
  return decodeAnswer<T>(response);
}

/** GETs the query at `pathAndQuery` (e.g. `auth.me`, or `auth.me?token=…` to send a URL parameter), without input. */
export async function query<T = unknown>(base: string, pathAndQuery: string, headers: RequestHeaders = {}): Promise<TrpcAnswer<T>> {
  return decodeAnswer<T>(await fetch(`${base}/trpc/${pathAndQuery}`, { headers }));
}
