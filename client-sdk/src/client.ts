import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  type Operation,
  splitLink,
  type TRPCClient,
  TRPCClientError,
  type TRPCLink,
} from '@trpc/client';
import { observable } from '@trpc/server/observable';
import superjson from 'superjson';
import { authLink, SENT_TOKEN } from './auth-link.js';
import { isKeelError } from './errors.js';
import { IDEMPOTENCY_KEY, idempotencyLink } from './idempotency-link.js';
import { serviceRetryLink } from './service-link.js';
import { serviceTokenSource } from './service-token.js';
import { type AuthMode, type RefreshOutcome, Session, type SessionExpiredError } from './session.js';
import { type KeelTokens, memoryStorage, type TokenStorage } from './storage.js';
import { TRACE_HEADERS, traceLink } from './trace-link.js';
import type { AppRouter, AuthResult, LoginResult, RouterInputs } from './types.js';

/** The server's default `TRPC_MAX_BATCH_SIZE`: a batch never holds more calls than the server accepts. */
export const DEFAULT_MAX_BATCH_SIZE = 50;
/** GET batches carry their inputs in the URL: split them before common proxy limits. */
export const DEFAULT_MAX_URL_LENGTH = 8_000;
/** Refresh this long before the access token expires (the server's shortest lifetime is 60 s). */
export const DEFAULT_REFRESH_MARGIN_SECONDS = 30;

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;
export type HeadersOption = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

interface TransportOptions {
  /** The server's base URL, such as `https://api.example.com`: calls go to `<url>/trpc`. */
  url: string;
  /** Extra headers on every request (static, or computed per request). */
  headers?: HeadersOption | undefined;
  /** A `fetch` to use instead of the global one (tests, instrumentation, older runtimes). */
  fetch?: FetchLike | undefined;
  /** At most this many calls in one HTTP request; keep it at or below the server's `TRPC_MAX_BATCH_SIZE`. */
  maxBatchSize?: number | undefined;
  /** A batch of queries whose URL would be longer is split. */
  maxURLLength?: number | undefined;
}

/** What a subscription transport gets from the client it is part of. */
export interface SubscriptionContext {
  /** The tRPC endpoint (`<url>/trpc`). */
  url: string;
  fetch: FetchLike;
  credentials: RequestCredentials | undefined;
  /** The headers of a request made now: custom ones and the current access token. */
  headers(): Promise<Record<string, string>>;
  session: { beforeCall(): Promise<RefreshOutcome | undefined>; refresh(): Promise<RefreshOutcome> };
}

/** Builds the links subscriptions go through: `keelSubscriptions()` from `@keel/client-sdk/live`. */
export type SubscriptionTransport = (context: SubscriptionContext) => TRPCLink<AppRouter> | TRPCLink<AppRouter>[];

export interface KeelClientOptions extends TransportOptions {
  /**
   * `bearer` (default): the client keeps both tokens in `storage`; for Node, React Native, tests.
   * `cookie`: for browsers. The refresh token lives in an HttpOnly cookie that JavaScript never
   * sees; requests carry credentials (`credentials: 'include'`), and the page's origin must be in
   * the server's `CORS_ORIGINS`.
   */
  auth?: AuthMode | undefined;
  /** Where the tokens are kept; memory by default. */
  storage?: TokenStorage | undefined;
  /**
   * Called, with the server's UNAUTHORIZED answer, when the server refuses to refresh the session
   * (it expired, was revoked or signed out elsewhere, or the stored refresh token is malformed or
   * unknown): the tokens are gone and the failed call rejects with UNAUTHORIZED. The place to send
   * the user to the sign-in page. In cookie mode it is also called when a page that has no session
   * at all makes an authenticated call (unless `refresh()` already found none). Any other failure
   * of the refresh (network, 5xx, 429, a FORBIDDEN foreign Origin) keeps the tokens and rejects the
   * call with that error instead.
   */
  onSessionExpired?: ((error: SessionExpiredError) => void) | undefined;
  /** Refresh this many seconds before the access token expires. */
  refreshMarginSeconds?: number | undefined;
  /**
   * Live updates (`projects.onChange`, `tasks.onChange`): pass `keelSubscriptions()` from
   * `@keel/client-sdk/live`. Without it a subscription fails at once, and the client stays small.
   */
  subscriptions?: SubscriptionTransport | undefined;
}

/** The session helpers a `KeelClient` has beside its procedures. */
export interface KeelSessionHelpers {
  /**
   * Signs in and keeps the tokens; for an account with two-factor sign-in, answers a challenge
   * instead (`isTwoFactorChallenge(result)`), which `verifyTwoFactor` completes.
   */
  login(input: RouterInputs['auth']['login']): Promise<LoginResult>;
  /** Completes a sign-in challenge with a code of the authenticator app or a recovery code, and keeps the tokens. */
  verifyTwoFactor(input: RouterInputs['auth']['twoFactor']['verify']): Promise<AuthResult>;
  /** Creates the account, signs in and keeps the tokens. */
  register(input: RouterInputs['auth']['register']): Promise<AuthResult>;
  /**
   * Ends the session on the server and forgets the tokens. The tokens are forgotten even when
   * the server cannot be reached (that error is rethrown) or the session was already over.
   */
  logout(): Promise<void>;
  /**
   * Refreshes the session now; true when it worked. In cookie mode, call it when a page loads to
   * pick up the session the refresh cookie holds. It never calls `onSessionExpired`: `false` says
   * there is no session (and the client stops refreshing on its own until the next sign-in).
   */
  refresh(): Promise<boolean>;
  /** The tokens held now (cookie mode: no refresh token), or null when signed out. */
  getTokens(): Promise<KeelTokens | null>;
}

/** A typed tRPC client of Keel (`client.projects.list.query()`) with the session helpers. */
export type KeelClient = TRPCClient<AppRouter> & KeelSessionHelpers;

function trpcUrl(url: string): string {
  return `${url.replace(/\/+$/, '')}/trpc`;
}

async function resolveHeaders(headers: HeadersOption | undefined): Promise<Record<string, string>> {
  return typeof headers === 'function' ? await headers() : (headers ?? {});
}

/** The Idempotency-Key of a mutation's request (idempotency-link.ts), when it has one. */
const idempotencyHeader = (op: Operation): Record<string, string> => {
  const key = op.context[IDEMPOTENCY_KEY];
  return typeof key === 'string' ? { 'idempotency-key': key } : {};
};

/**
 * Batches queries; sends mutations and `auth.refresh` one per request. A mutation's
 * Idempotency-Key belongs to its request, and its retry must be the same call at the same place
 * (the server keys each call of a batch by its position), which a batch re-formed on retry is not.
 */
function transportLink(
  options: TransportOptions & { credentials?: RequestCredentials },
  headersFor: (ops: Operation[]) => Promise<Record<string, string>>,
): TRPCLink<AppRouter> {
  // Called as a method: a detached `window.fetch` throws "Illegal invocation" in browsers.
  const baseFetch: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const credentials = options.credentials ? { credentials: options.credentials } : {};
  // tRPC passes a URL string and a RequestInit-compatible object.
  const fetch = (url: unknown, init?: object) => baseFetch(String(url), { ...(init as RequestInit), ...credentials });
  const url = trpcUrl(options.url);
  return splitLink({
    // The refresh cookie's Path is /trpc/auth.refresh: a batch URL (/trpc/a,b?batch=1) would not carry it.
    condition: (op) => op.path === 'auth.refresh' || op.type === 'mutation',
    true: httpLink({
      url,
      transformer: superjson,
      fetch,
      headers: async ({ op }) => ({ ...(await headersFor([op])), ...idempotencyHeader(op) }),
    }),
    false: httpBatchLink({
      url,
      transformer: superjson,
      fetch,
      maxItems: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
      maxURLLength: options.maxURLLength ?? DEFAULT_MAX_URL_LENGTH,
      headers: ({ opList }) => headersFor(opList),
    }),
  });
}

/** Subscriptions without a transport: a clear error, not a request the batch link cannot make. */
const noSubscriptions: TRPCLink<AppRouter> = () => () =>
  observable((observer) => {
    observer.error(
      TRPCClientError.from(
        new Error(
          'Subscriptions need a transport: createKeelClient({ subscriptions: keelSubscriptions() }) with keelSubscriptions from @keel/client-sdk/live.',
        ),
      ),
    );
  });

/** Adds the helpers to the tRPC client without touching its procedures. */
function withHelpers(client: TRPCClient<AppRouter>, helpers: KeelSessionHelpers): KeelClient {
  return new Proxy(client, {
    get(target, key, receiver) {
      return typeof key === 'string' && Object.hasOwn(helpers, key)
        ? helpers[key as keyof KeelSessionHelpers]
        : Reflect.get(target, key, receiver);
    },
  }) as KeelClient;
}

/**
 * A client for apps: typed procedures, batching, superjson, and a session that refreshes itself.
 *
 * ```ts
 * const keel = createKeelClient({ url: 'https://api.example.com', auth: 'cookie', onSessionExpired: () => router.push('/login') });
 * await keel.login({ email, password });
 * const projects = await keel.projects.list.query();
 * ```
 */
export function createKeelClient(options: KeelClientOptions): KeelClient {
  const mode = options.auth ?? 'bearer';
  const storage = options.storage ?? memoryStorage();

  const headersFor = async (ops: Operation[]) => {
    const [custom, token] = await Promise.all([resolveHeaders(options.headers), session.accessToken()]);
    for (const op of ops) op.context[SENT_TOKEN] = token;
    // A batch continues the trace of its first call's caller.
    const trace = ops[0]?.context[TRACE_HEADERS] as Record<string, string> | undefined;
    return {
      ...trace,
      ...custom,
      ...(mode === 'cookie' ? { 'x-keel-auth': 'cookie' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    };
  };
  const transport = transportLink({ ...options, ...(mode === 'cookie' ? { credentials: 'include' as const } : {}) }, headersFor);
  // Refreshes go straight to the transport: the auth link must not retry or refresh for them.
  const refresher = createTRPCClient<AppRouter>({ links: [transport] });
  const session: Session = new Session({
    mode,
    storage,
    callRefresh: (refreshToken) => refresher.auth.refresh.mutate(refreshToken ? { refreshToken } : undefined),
    onSessionExpired: options.onSessionExpired,
    refreshMarginMs: (options.refreshMarginSeconds ?? DEFAULT_REFRESH_MARGIN_SECONDS) * 1000,
  });
  const baseFetch: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const live = options.subscriptions?.({
    url: trpcUrl(options.url),
    fetch: baseFetch,
    credentials: mode === 'cookie' ? 'include' : undefined,
    headers: () => headersFor([]),
    session,
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      traceLink(),
      idempotencyLink(),
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: live ?? noSubscriptions,
        false: [authLink(session), transport],
      }),
    ],
  });

  return withHelpers(client, {
    login: (input) => client.auth.login.mutate(input),
    verifyTwoFactor: (input) => client.auth.twoFactor.verify.mutate(input),
    register: (input) => client.auth.register.mutate(input),
    async logout() {
      try {
        await client.auth.logout.mutate();
      } catch (error) {
        if (!isKeelError(error, 'UNAUTHORIZED')) throw error;
      } finally {
        await session.clear();
      }
    },
    refresh: async () => (await session.refresh('explicit')).status === 'refreshed',
    getTokens: () => session.tokens(),
  });
}

/** A service account's own identity: the client gets, caches and renews its token at `<url>/oauth/token`. */
export interface KeelServiceCredentialsOptions extends TransportOptions {
  /** The service account's client id (`serviceAccounts.create` shows it). */
  clientId: string;
  /** Its secret: sent only to the token endpoint, never logged or put in an error. */
  clientSecret: string;
  /** Ask for fewer scopes than the account holds (least privilege); all of them when absent. */
  scopes?: readonly string[] | undefined;
  /** Renew the token this many seconds before it expires (default 30). */
  refreshMarginSeconds?: number | undefined;
  token?: never;
  getToken?: never;
}

export interface KeelServiceTokenOptions extends TransportOptions {
  /** A fixed access token from elsewhere, sent as `Authorization: Bearer <token>`. */
  token: string;
  getToken?: never;
  clientId?: never;
}

export interface KeelServiceGetTokenOptions extends TransportOptions {
  /** Called before every request: return a cached token, renewed by whatever issues it. */
  getToken: () => string | Promise<string>;
  token?: never;
  clientId?: never;
}

export type KeelServiceClientOptions = KeelServiceCredentialsOptions | KeelServiceTokenOptions | KeelServiceGetTokenOptions;

/**
 * A client for internal services: typed procedures, batching and superjson, authenticated as a
 * service account (OAuth 2.0 client credentials; see the README's "Internal services").
 *
 * ```ts
 * const keel = createKeelServiceClient({ url, clientId, clientSecret }); // from the service's secret store
 * const page = await keel.projects.list.query({ ownerId });
 * ```
 *
 * With credentials it fetches its token on first use, renews it before it expires (one request
 * for all concurrent calls) and retries a call once, with a new token, when the server answers
 * UNAUTHORIZED (a key rotation, a clock jump). `token` and `getToken` take a token from elsewhere.
 */
export function createKeelServiceClient(options: KeelServiceClientOptions): TRPCClient<AppRouter> {
  if (options.clientId !== undefined) {
    const source = serviceTokenSource({ ...options, clientId: options.clientId, clientSecret: options.clientSecret });
    const headersFor = async (ops: Operation[]) => {
      const [custom, token] = await Promise.all([resolveHeaders(options.headers), source.token()]);
      for (const op of ops) op.context[SENT_TOKEN] = token;
      return { ...custom, authorization: `Bearer ${token}` };
    };
    return createTRPCClient<AppRouter>({ links: [idempotencyLink(), serviceRetryLink(source), transportLink(options, headersFor)] });
  }
  const headersFor = async () => {
    const [custom, token] = await Promise.all([resolveHeaders(options.headers), options.getToken ? options.getToken() : options.token]);
    return { ...custom, authorization: `Bearer ${token}` };
  };
  return createTRPCClient<AppRouter>({ links: [idempotencyLink(), transportLink(options, headersFor)] });
}
