/**
 * The client's link logic against a fake Keel behind a fake `fetch`: batching, where the refresh
 * goes, the single shared refresh, one retry per call, the end of a session, proactive refresh,
 * cookie mode and the service client. The fake speaks tRPC's HTTP protocol with superjson.
 */
import superjson from 'superjson';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  type AppRouter,
  createKeelClient,
  createKeelServiceClient,
  isKeelError,
  isTwoFactorChallenge,
  type KeelClientOptions,
  type KeelErrorCode,
  type KeelSessionHelpers,
  type KeelTokens,
  memoryStorage,
  type RouterInputs,
  type TokenStorage,
  type User,
} from './index.js';

const URL_BASE = 'https://api.keel.test';

interface Call {
  path: string;
  input: unknown;
}

interface SeenRequest {
  url: string;
  method: string;
  headers: Headers;
  credentials: RequestCredentials | undefined;
  batched: boolean;
  calls: Call[];
  /** The Bearer token sent, if any. */
  token: string | undefined;
}

class FakeError extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message = code,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const ERROR_NUMBERS: Record<string, number> = { UNAUTHORIZED: -32001, FORBIDDEN: -32003, BAD_REQUEST: -32600, SERVICE_UNAVAILABLE: -32603 };

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A fake Keel: JWT-shaped access tokens it can expire, rotating refresh tokens, and hooks to script the refresh. */
class FakeKeel {
  readonly requests: SeenRequest[] = [];
  /** The server's clock. */
  now = () => Date.now();
  ttlMs = 15 * 60_000;
  private counter = 0;
  readonly accepted = new Set<string>();
  readonly refreshTokens = new Set<string>();
  /** What the next refreshes do. */
  refreshMode: 'ok' | 'refuse' | 'unavailable' | 'network' | 'forbidden' | 'bad-request' | 'not-found' = 'ok';
  /** While set, refreshes wait for it: lets a test pile up calls behind one refresh. */
  refreshGate: Promise<void> | undefined;
  /** Calls of these paths wait for their gate before they are judged. */
  readonly callGates = new Map<string, Promise<void>>();
  readonly user: User = {
    id: '00000000-0000-4000-8000-000000000001',
    email: 'ann@example.test',
    name: 'Ann',
    role: 'USER',
    emailVerified: true,
    createdAt: new Date('2025-01-01T00:00:00Z'),
  };

  issue(mode: 'bearer' | 'cookie') {
    this.counter += 1;
    const iat = Math.floor(this.now() / 1000);
    const accessToken = `h.${base64url({ sub: this.user.id, iat, exp: iat + this.ttlMs / 1000, n: this.counter })}.sig`;
    const refreshToken = `refresh-${this.counter}`;
    this.accepted.add(accessToken);
    this.refreshTokens.add(refreshToken);
    return {
      user: this.user,
      accessToken,
      accessTokenExpiresAt: new Date(iat * 1000 + this.ttlMs),
      ...(mode === 'bearer' ? { refreshToken } : {}),
      refreshTokenExpiresAt: new Date(this.now() + 30 * 86_400_000),
    };
  }

  /** Every access token issued so far stops working. */
  expireAccessTokens() {
    this.accepted.clear();
  }

  private authed(request: SeenRequest) {
    if (!request.token || !this.accepted.has(request.token)) throw new FakeError('UNAUTHORIZED', 401, 'Missing access token.');
    return this.user;
  }

  private async handle(call: Call, request: SeenRequest): Promise<unknown> {
    const mode = request.headers.get('x-keel-auth') === 'cookie' ? 'cookie' : 'bearer';
    await this.callGates.get(call.path);
    switch (call.path) {
      case 'auth.login': {
        const { password } = call.input as { password: string };
        if (password !== 'right') throw new FakeError('UNAUTHORIZED', 401, 'Wrong email or password.');
        return this.issue(mode);
      }
      case 'auth.register': {
        const { email } = call.input as { email: string };
        if (email === 'taken@example.test') throw new FakeError('CONFLICT', 409, 'Taken.', { fieldErrors: { email: ['already exists'] } });
        return this.issue(mode);
      }
      case 'auth.refresh': {
        await this.refreshGate;
        if (this.refreshMode === 'unavailable') throw new FakeError('SERVICE_UNAVAILABLE', 503, 'Down.');
        if (this.refreshMode === 'refuse') throw new FakeError('UNAUTHORIZED', 401, 'Session expired.');
        if (this.refreshMode === 'forbidden')
          throw new FakeError('FORBIDDEN', 403, 'Cookie authentication needs a request from an allowed origin.');
        if (this.refreshMode === 'bad-request') throw new FakeError('BAD_REQUEST', 400, 'Invalid input.');
        if (this.refreshMode === 'not-found') throw new FakeError('NOT_FOUND', 404, 'No procedure auth.refresh (a proxy in the way?)');
        if (mode === 'bearer') {
          const token = (call.input as { refreshToken?: string } | undefined)?.refreshToken;
          if (!token || !this.refreshTokens.delete(token)) throw new FakeError('UNAUTHORIZED', 401, 'Invalid refresh token.');
        }
        return this.issue(mode);
      }
      case 'auth.logout':
        this.authed(request);
        return { ok: true };
      case 'auth.me':
        return this.authed(request);
      case 'system.health':
        return { status: 'ok', version: 'test', uptimeSeconds: 1 };
      case 'projects.create': {
        this.authed(request);
        const { name } = call.input as { name: string };
        if (name === '') throw new FakeError('BAD_REQUEST', 400, 'Invalid input.', { fieldErrors: { name: ['must not be empty'] } });
        return {
          id: 'p1',
          ownerId: this.user.id,
          name,
          description: null,
          archivedAt: null,
          version: 1,
          createdAt: new Date(),
          updatedAt: new Date(),
        };
      }
      default:
        throw new FakeError('NOT_FOUND', 404, `No procedure ${call.path}`);
    }
  }

  readonly fetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (this.refreshMode === 'network' && url.includes('auth.refresh')) throw new TypeError('fetch failed');
    const parsed = new URL(url);
    const batched = parsed.searchParams.get('batch') === '1';
    const paths = decodeURIComponent(parsed.pathname.replace(/^\/trpc\//, '')).split(',');
    const rawInput = init.method === 'GET' ? parsed.searchParams.get('input') : (init.body as string | undefined);
    const parsedInput = rawInput ? (JSON.parse(rawInput) as unknown) : undefined;
    const inputs = batched ? paths.map((_, i) => (parsedInput as Record<string, unknown> | undefined)?.[i]) : [parsedInput];
    const headers = new Headers(init.headers as Record<string, string>);
    const authorization = headers.get('authorization');
    const request: SeenRequest = {
      url,
      method: init.method ?? 'GET',
      headers,
      credentials: init.credentials,
      batched,
      calls: paths.map((path, i) => ({
        path,
        input: inputs[i] === undefined ? undefined : superjson.deserialize(inputs[i] as Parameters<typeof superjson.deserialize>[0]),
      })),
      token: authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined,
    };
    this.requests.push(request);
    const results = await Promise.all(
      request.calls.map(async (call) => {
        try {
          return { result: { data: superjson.serialize(await this.handle(call, request)) } };
        } catch (error) {
          if (!(error instanceof FakeError)) throw error;
          const shape = {
            message: error.message,
            code: ERROR_NUMBERS[error.code] ?? -32000,
            data: { code: error.code, httpStatus: error.httpStatus, path: call.path, requestId: 'req-1', ...error.extra },
          };
          return { error: superjson.serialize(shape) };
        }
      }),
    );
    return Response.json(batched ? results : results[0], { status: 200 });
  };

  /** The calls of every request, by path, in order. */
  paths() {
    return this.requests.flatMap((r) => r.calls.map((c) => c.path));
  }

  count(path: string) {
    return this.paths().filter((p) => p === path).length;
  }
}

function setup(options: Partial<KeelClientOptions> = {}) {
  const server = new FakeKeel();
  const onSessionExpired = vi.fn();
  const client = createKeelClient({ url: `${URL_BASE}/`, fetch: server.fetch, onSessionExpired, ...options });
  return { server, client, onSessionExpired };
}

async function signedIn(options: Partial<KeelClientOptions> = {}) {
  const context = setup(options);
  await context.client.login({ email: 'ann@example.test', password: 'right' });
  context.server.requests.length = 0;
  return context;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('transport', () => {
  it('batches calls made together into one request, at most 50 calls per request (the server default)', async () => {
    const { server, client } = setup();
    await Promise.all(Array.from({ length: 60 }, () => client.system.health.query()));
    expect(server.requests.map((r) => r.calls.length)).toEqual([50, 10]);
    expect(server.requests.every((r) => r.batched && r.method === 'GET' && r.url.startsWith(`${URL_BASE}/trpc/system.health,`))).toBe(true);
  });

  it('serializes with superjson: Dates arrive as Dates', async () => {
    const { client } = await signedIn();
    const me = await client.auth.me.query();
    expect(me.createdAt).toBeInstanceOf(Date);
    expect(me.createdAt.toISOString()).toBe('2025-01-01T00:00:00.000Z');
  });

  it('merges custom headers (static or computed) into every request', async () => {
    let n = 0;
    const { server, client } = setup({ headers: () => ({ 'x-request-id': `request-${++n}-abcdef` }) });
    await client.system.health.query();
    await client.system.health.query();
    expect(server.requests.map((r) => r.headers.get('x-request-id'))).toEqual(['request-1-abcdef', 'request-2-abcdef']);
  });
});

describe('retries that lose nothing (Idempotency-Key)', () => {
  const keyOf = (request: SeenRequest) => request.headers.get('idempotency-key');

  it('sends every mutation alone with an Idempotency-Key of its own; queries and credential calls get none', async () => {
    const { server, client } = await signedIn();
    await Promise.all([client.projects.create.mutate({ name: 'a' }), client.projects.create.mutate({ name: 'b' }), client.auth.me.query()]);
    const creates = server.requests.filter((r) => r.calls[0]?.path === 'projects.create');
    expect(creates.map((r) => [r.batched, r.calls.length])).toEqual([
      [false, 1],
      [false, 1],
    ]);
    const keys = creates.map(keyOf);
    expect(keys.every((key) => typeof key === 'string' && /^[0-9a-f-]{36}$/.test(key))).toBe(true);
    expect(new Set(keys).size).toBe(2);
    expect(server.requests.filter((r) => r.calls[0]?.path === 'auth.me').map(keyOf)).toEqual([null]);
    await client.login({ email: 'ann@example.test', password: 'right' });
    expect(keyOf(server.requests.at(-1) as SeenRequest)).toBeNull();
  });

  it('retries a mutation whose answer was lost once, with the same key; a refused mutation is not retried', async () => {
    const { server, client } = await signedIn();
    const realFetch = server.fetch;
    let drops = 1;
    // The first answer is lost on the way back, after the (fake) server handled the call.
    const lossy = async (url: string, init: RequestInit) => {
      const response = await realFetch(url, init);
      if (url.includes('projects.create') && drops-- > 0) throw new TypeError('fetch failed');
      return response;
    };
    const retrying = createKeelClient({ url: URL_BASE, fetch: lossy, storage: memoryStorage(await client.getTokens()) });
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const created = retrying.projects.create.mutate({ name: 'lost once' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await created).name).toBe('lost once');
    const creates = server.requests.filter((r) => r.calls[0]?.path === 'projects.create');
    expect(creates).toHaveLength(2);
    expect(keyOf(creates[1] as SeenRequest)).toBe(keyOf(creates[0] as SeenRequest));
    await expect(retrying.projects.create.mutate({ name: '' })).rejects.toSatisfy((e) => isKeelError(e, 'BAD_REQUEST'));
    expect(server.count('projects.create')).toBe(3);
  });
});

describe('sign-in helpers', () => {
  it('login keeps the tokens and every later call carries the access token', async () => {
    const { server, client } = setup();
    const result = await client.login({ email: 'ann@example.test', password: 'right' });
    if (isTwoFactorChallenge(result)) throw new Error('expected tokens, got a two-factor challenge');
    expect(result.user.email).toBe('ann@example.test');
    expect(result.accessTokenExpiresAt).toBeInstanceOf(Date);
    const tokens = await client.getTokens();
    expect(tokens).toMatchObject({ accessToken: result.accessToken, refreshToken: result.refreshToken });
    await client.auth.me.query();
    expect(server.requests.at(-1)?.token).toBe(result.accessToken);
  });

  it('register keeps the tokens too; a failed register keeps none and exposes typed field errors', async () => {
    const { client } = setup();
    const error = await client.register({ email: 'taken@example.test', password: 'a sturdy passphrase' }).catch((e: unknown) => e);
    expect(isKeelError(error, 'CONFLICT')).toBe(true);
    if (!isKeelError(error, 'CONFLICT')) return;
    expect(error.data.fieldErrors).toEqual({ email: ['already exists'] });
    expect(error.data.requestId).toBe('req-1');
    expect(await client.getTokens()).toBeNull();
    await client.register({ email: 'new@example.test', password: 'a sturdy passphrase' });
    expect((await client.getTokens())?.accessToken).toMatch(/^h\./);
  });

  it('a wrong password is UNAUTHORIZED without any refresh attempt', async () => {
    const { server, client, onSessionExpired } = setup();
    const error = await client.login({ email: 'ann@example.test', password: 'wrong' }).catch((e: unknown) => e);
    expect(isKeelError(error, 'UNAUTHORIZED')).toBe(true);
    expect(server.paths()).toEqual(['auth.login']);
    expect(onSessionExpired).not.toHaveBeenCalled();
  });

  it('logout ends the session on the server and forgets the tokens; when already over it still forgets them', async () => {
    const { server, client } = await signedIn();
    await client.logout();
    expect(server.paths()).toEqual(['auth.logout']);
    expect(await client.getTokens()).toBeNull();

    const again = await signedIn();
    again.server.expireAccessTokens();
    again.server.refreshMode = 'refuse';
    await again.client.logout();
    expect(await again.client.getTokens()).toBeNull();
  });

  it('logout forgets the tokens even when the server cannot be reached, and says so', async () => {
    const { client } = await signedIn({});
    const offline = createKeelClient({
      url: URL_BASE,
      fetch: () => Promise.reject(new TypeError('fetch failed')),
      storage: memoryStorage(await client.getTokens()),
    });
    await expect(offline.logout()).rejects.toThrow('fetch failed');
    expect(await offline.getTokens()).toBeNull();
  });
});

describe('refresh on UNAUTHORIZED', () => {
  it('sends auth.refresh alone (unbatched) to exactly <url>/trpc/auth.refresh with the refresh token, then retries the call', async () => {
    const { server, client } = await signedIn();
    const before = await client.getTokens();
    server.expireAccessTokens();
    const me = await client.auth.me.query();
    expect(me.id).toBe(server.user.id);
    expect(server.paths()).toEqual(['auth.me', 'auth.refresh', 'auth.me']);
    const refresh = server.requests[1];
    expect(refresh?.url).toBe(`${URL_BASE}/trpc/auth.refresh`);
    expect(refresh?.method).toBe('POST');
    expect(refresh?.batched).toBe(false);
    expect(refresh?.calls[0]?.input).toEqual({ refreshToken: before?.refreshToken });
    const after = await client.getTokens();
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
    expect(server.requests[2]?.token).toBe(after?.accessToken);
  });

  it('many calls failing together cause one refresh, and each is retried once', async () => {
    const { server, client } = await signedIn();
    server.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 8 }, () => client.auth.me.query()));
    expect(results).toHaveLength(8);
    expect(server.count('auth.refresh')).toBe(1);
    expect(server.count('auth.me')).toBe(16);
  });

  it('calls made while a refresh runs wait for it and go out with the new token', async () => {
    const { server, client } = await signedIn();
    server.expireAccessTokens();
    let open = () => {};
    server.refreshGate = new Promise((resolve) => {
      open = resolve;
    });
    const first = client.auth.me.query();
    await vi.waitFor(() => expect(server.count('auth.refresh')).toBe(1));
    const second = client.auth.me.query();
    open();
    await Promise.all([first, second]);
    expect(server.count('auth.refresh')).toBe(1);
    const newToken = (await client.getTokens())?.accessToken;
    // The second call never went out with the old token.
    expect(server.requests.filter((r) => r.calls[0]?.path === 'auth.me').map((r) => r.token === newToken)).toEqual([false, true]);
  });

  it('a call rejected after another call already refreshed is retried without a second refresh', async () => {
    const { server, client } = await signedIn();
    server.expireAccessTokens();
    let open = () => {};
    server.callGates.set(
      'projects.create',
      new Promise((resolve) => {
        open = resolve;
      }),
    );
    // Sent with the old token; its UNAUTHORIZED arrives only after the other call refreshed.
    const slow = client.projects.create.mutate({ name: 'Slow' });
    await vi.waitFor(() => expect(server.count('projects.create')).toBe(1));
    await client.auth.me.query();
    expect(server.count('auth.refresh')).toBe(1);
    open();
    await expect(slow).resolves.toMatchObject({ name: 'Slow' });
    expect(server.count('auth.refresh')).toBe(1);
    expect(server.count('projects.create')).toBe(2);
  });

  it('a second client sharing the storage uses the refreshed tokens', async () => {
    const storage = memoryStorage();
    const a = setup({ storage });
    const b = createKeelClient({ url: URL_BASE, fetch: a.server.fetch, storage });
    await a.client.login({ email: 'ann@example.test', password: 'right' });
    a.server.expireAccessTokens();
    await a.client.auth.me.query();
    await b.auth.me.query();
    expect(a.server.count('auth.refresh')).toBe(1);
    expect(a.server.requests.at(-1)?.token).toBe((await storage.get())?.accessToken);
  });

  it("two clients sharing the storage (two tabs): the one whose refresh lost the race uses the winner's tokens", async () => {
    const server = new FakeKeel();
    let stored: () => void = () => {};
    const storedOnce = new Promise<void>((resolve) => {
      stored = resolve;
    });
    const memory = memoryStorage(server.issue('bearer'));
    const storage: TokenStorage = {
      get: () => memory.get(),
      set: (tokens) => {
        memory.set(tokens);
        stored();
      },
    };
    const a = createKeelClient({ url: URL_BASE, fetch: server.fetch, storage });
    let bRefreshing = false;
    const bExpired = vi.fn();
    const b = createKeelClient({
      url: URL_BASE,
      storage,
      onSessionExpired: bExpired,
      // B's refresh leaves with the old refresh token, and arrives after A's has rotated it.
      fetch: async (url, init) => {
        if (url.endsWith('/auth.refresh')) {
          bRefreshing = true;
          await storedOnce;
        }
        return server.fetch(url, init);
      },
    });
    server.expireAccessTokens();
    let open = () => {};
    server.refreshGate = new Promise((resolve) => {
      open = resolve;
    });
    const both = Promise.all([a.auth.me.query(), b.auth.me.query()]);
    await vi.waitFor(() => expect(server.count('auth.refresh') === 1 && bRefreshing).toBe(true));
    open();
    await expect(both).resolves.toHaveLength(2);
    expect(server.count('auth.refresh')).toBe(2);
    expect(bExpired).not.toHaveBeenCalled();
    expect((await storage.get())?.accessToken).toBe(server.requests.at(-1)?.token);
  });

  it('retries a call once only: a second UNAUTHORIZED is the answer', async () => {
    const { server, client, onSessionExpired } = await signedIn();
    server.expireAccessTokens();
    // The server accepts the refresh but then rejects the new token as well (a revoked user).
    const issue = server.issue.bind(server);
    server.issue = (mode) => {
      const result = issue(mode);
      server.accepted.delete(result.accessToken);
      return result;
    };
    const error = await client.auth.me.query().catch((e: unknown) => e);
    expect(isKeelError(error, 'UNAUTHORIZED')).toBe(true);
    expect(server.paths()).toEqual(['auth.me', 'auth.refresh', 'auth.me']);
    expect(onSessionExpired).not.toHaveBeenCalled();
  });

  it('when the refresh is refused: one onSessionExpired, tokens gone, every waiting call rejects with UNAUTHORIZED', async () => {
    const { server, client, onSessionExpired } = await signedIn();
    server.expireAccessTokens();
    server.refreshMode = 'refuse';
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => client.auth.me.query()));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(isKeelError(outcome.status === 'rejected' ? outcome.reason : undefined, 'UNAUTHORIZED')).toBe(true);
    }
    expect(server.count('auth.refresh')).toBe(1);
    expect(onSessionExpired).toHaveBeenCalledTimes(1);
    expect(isKeelError(onSessionExpired.mock.calls[0]?.[0], 'UNAUTHORIZED')).toBe(true);
    expect(await client.getTokens()).toBeNull();
    // Signed out: later calls go without a token and without refresh attempts.
    await expect(client.auth.me.query()).rejects.toThrow('Missing access token.');
    expect(server.count('auth.refresh')).toBe(1);
  });

  it('when the refresh gets no answer the tokens are kept and the call rejects with that failure, not UNAUTHORIZED', async () => {
    for (const mode of ['unavailable', 'network'] as const) {
      const { server, client, onSessionExpired } = await signedIn();
      const tokens = await client.getTokens();
      server.expireAccessTokens();
      server.refreshMode = mode;
      const error = await client.auth.me.query().catch((e: unknown) => e);
      expect(isKeelError(error)).toBe(true);
      expect(isKeelError(error, 'UNAUTHORIZED')).toBe(false);
      if (mode === 'unavailable') expect(isKeelError(error, 'SERVICE_UNAVAILABLE')).toBe(true);
      expect(onSessionExpired).not.toHaveBeenCalled();
      expect(await client.getTokens()).toEqual(tokens);
      // Once the server is back, the next call refreshes and succeeds.
      server.refreshMode = 'ok';
      await expect(client.auth.me.query()).resolves.toMatchObject({ id: server.user.id });
    }
  });

  it('only UNAUTHORIZED ends the session: a refresh answered FORBIDDEN, BAD_REQUEST or NOT_FOUND keeps the tokens and rejects with that answer', async () => {
    // The server answers every refresh failure of the session itself with UNAUTHORIZED; anything
    // else is a deployment fault (a foreign Origin in cookie mode, a proxy), not a reason to sign out.
    for (const [mode, code] of [
      ['forbidden', 'FORBIDDEN'],
      ['bad-request', 'BAD_REQUEST'],
      ['not-found', 'NOT_FOUND'],
    ] as const) {
      const { server, client, onSessionExpired } = await signedIn();
      const tokens = await client.getTokens();
      server.expireAccessTokens();
      server.refreshMode = mode;
      const error = await client.auth.me.query().catch((e: unknown) => e);
      expect(isKeelError(error, code), mode).toBe(true);
      expect(onSessionExpired, mode).not.toHaveBeenCalled();
      expect(await client.getTokens()).toEqual(tokens);
    }
  });

  it('onSessionExpired gets the UNAUTHORIZED answer, typed as such', async () => {
    const received: KeelErrorCode[] = [];
    const { server, client } = await signedIn({
      onSessionExpired: (error) => {
        expectTypeOf(error.data.code).toEqualTypeOf<'UNAUTHORIZED'>();
        received.push(error.data.code);
      },
    });
    server.expireAccessTokens();
    server.refreshMode = 'refuse';
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(received).toEqual(['UNAUTHORIZED']);
  });

  it('a throwing onSessionExpired does not keep the failed calls from settling, and is reported, not thrown', async () => {
    const { server, client } = await signedIn({
      onSessionExpired: () => {
        throw new Error('callback bug');
      },
    });
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    server.expireAccessTokens();
    server.refreshMode = 'refuse';
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(reported).toHaveBeenCalledWith('@keel/client-sdk: onSessionExpired threw', expect.objectContaining({ message: 'callback bug' }));
    reported.mockRestore();
  });

  it('bearer mode without a refresh token surfaces UNAUTHORIZED without refreshing', async () => {
    const { server, client, onSessionExpired } = setup();
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(server.paths()).toEqual(['auth.me']);
    expect(onSessionExpired).not.toHaveBeenCalled();
  });
});

/** A promise and the function that settles it. */
function gate() {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('sign-ins and sign-outs racing a refresh or a call', () => {
  it('a refresh answered after a new sign-in leaves the new tokens alone; the call that waited for it is not retried', async () => {
    const { server, client } = await signedIn();
    server.expireAccessTokens();
    const refresh = gate();
    server.refreshGate = refresh.promise;
    const waiting = client.auth.me.query();
    await vi.waitFor(() => expect(server.count('auth.refresh')).toBe(1));
    const fresh = await client.login({ email: 'ann@example.test', password: 'right' });
    if (isTwoFactorChallenge(fresh)) throw new Error('expected tokens, got a two-factor challenge');
    refresh.open();
    await expect(waiting).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(await client.getTokens()).toMatchObject({ accessToken: fresh.accessToken, refreshToken: fresh.refreshToken });
    expect(server.count('auth.me')).toBe(1);
  });

  it('a call sent for one session and refused after a new sign-in is not resent with the new session', async () => {
    const { server, client } = await signedIn();
    const sentWith = (await client.getTokens())?.accessToken as string;
    const held = gate();
    server.callGates.set('projects.create', held.promise);
    const slow = client.projects.create.mutate({ name: 'Started before the new sign-in' });
    await vi.waitFor(() => expect(server.count('projects.create')).toBe(1));
    await client.login({ email: 'ann@example.test', password: 'right' });
    server.accepted.delete(sentWith);
    held.open();
    await expect(slow).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(server.count('projects.create')).toBe(1);
    expect(server.count('auth.refresh')).toBe(0);
  });

  it('a refresh answered after a completed logout does not bring the session back', async () => {
    const { server, client } = await signedIn();
    const logoutHeld = gate();
    server.callGates.set('auth.logout', logoutHeld.promise);
    const loggingOut = client.logout();
    await vi.waitFor(() => expect(server.count('auth.logout')).toBe(1));
    const refresh = gate();
    server.refreshGate = refresh.promise;
    const refreshing = client.refresh();
    await vi.waitFor(() => expect(server.count('auth.refresh')).toBe(1));
    logoutHeld.open();
    await loggingOut;
    refresh.open();
    expect(await refreshing).toBe(false);
    expect(await client.getTokens()).toBeNull();
  });
});

describe('refresh before expiry', () => {
  it('refreshes first when the access token expires within the margin, so the call never fails', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { server, client } = await signedIn();
    vi.setSystemTime(Date.now() + server.ttlMs - 20_000);
    await client.auth.me.query();
    expect(server.paths()).toEqual(['auth.refresh', 'auth.me']);
    expect(server.requests[1]?.token).toBe((await client.getTokens())?.accessToken);
  });

  it('does not refresh while the token has more than the margin left', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { server, client } = await signedIn({ refreshMarginSeconds: 60 });
    vi.setSystemTime(Date.now() + server.ttlMs - 61_000);
    await client.auth.me.query();
    expect(server.paths()).toEqual(['auth.me']);
    vi.setSystemTime(Date.now() + 2_000);
    await client.auth.me.query();
    expect(server.paths()).toEqual(['auth.me', 'auth.refresh', 'auth.me']);
  });

  it('judges expiry by the server clock: a client clock ahead of the server does not refresh on every call', async () => {
    const { server, client } = setup();
    // The server runs 10 minutes behind this machine: its tokens look nearly expired to a naive client.
    server.now = () => Date.now() - 10 * 60_000;
    await client.login({ email: 'ann@example.test', password: 'right' });
    await client.auth.me.query();
    await client.auth.me.query();
    expect(server.count('auth.refresh')).toBe(0);
  });
});

describe('cookie mode', () => {
  it('sends x-keel-auth: cookie and credentials: include, keeps no refresh token, and refreshes with an empty body at /trpc/auth.refresh', async () => {
    const { server, client } = setup({ auth: 'cookie' });
    const result = await client.login({ email: 'ann@example.test', password: 'right' });
    expect(result).not.toHaveProperty('refreshToken');
    expect((await client.getTokens())?.refreshToken).toBeUndefined();
    server.expireAccessTokens();
    await client.auth.me.query();
    expect(server.paths()).toEqual(['auth.login', 'auth.me', 'auth.refresh', 'auth.me']);
    for (const request of server.requests) {
      expect(request.headers.get('x-keel-auth')).toBe('cookie');
      expect(request.credentials).toBe('include');
    }
    const refresh = server.requests[2];
    expect(refresh?.url).toBe(`${URL_BASE}/trpc/auth.refresh`);
    expect(refresh?.batched).toBe(false);
    expect(refresh?.calls[0]?.input).toBeUndefined();
  });

  it('a page without tokens picks up the cookie session on its first authenticated call, or with refresh()', async () => {
    const { server, client } = setup({ auth: 'cookie' });
    await expect(client.auth.me.query()).resolves.toMatchObject({ id: server.user.id });
    expect(server.paths()).toEqual(['auth.me', 'auth.refresh', 'auth.me']);

    const fresh = setup({ auth: 'cookie' });
    expect(await fresh.client.refresh()).toBe(true);
    expect((await fresh.client.getTokens())?.accessToken).toMatch(/^h\./);
  });

  it('refresh() on a page without a session returns false without calling onSessionExpired, and ends the automatic refreshes', async () => {
    const { server, client, onSessionExpired } = setup({ auth: 'cookie' });
    server.refreshMode = 'refuse';
    expect(await client.refresh()).toBe(false);
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(server.count('auth.refresh')).toBe(1);
    expect(onSessionExpired).not.toHaveBeenCalled();
  });

  it('after a refused refresh it stops refreshing on its own until the next sign-in', async () => {
    const { server, client, onSessionExpired } = setup({ auth: 'cookie' });
    server.refreshMode = 'refuse';
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(server.count('auth.refresh')).toBe(1);
    expect(onSessionExpired).toHaveBeenCalledTimes(1);
    server.refreshMode = 'ok';
    await client.login({ email: 'ann@example.test', password: 'right' });
    server.expireAccessTokens();
    await expect(client.auth.me.query()).resolves.toMatchObject({ id: server.user.id });
    expect(server.count('auth.refresh')).toBe(2);
  });
});

describe('token storage', () => {
  it('works with an async storage and starts from the tokens it holds', async () => {
    const server = new FakeKeel();
    const seed = server.issue('bearer');
    let held: KeelTokens | null = { ...seed };
    const storage: TokenStorage = {
      get: async () => held,
      set: async (tokens) => {
        held = tokens;
      },
    };
    const client = createKeelClient({ url: URL_BASE, fetch: server.fetch, storage });
    await client.auth.me.query();
    expect(server.requests[0]?.token).toBe(seed.accessToken);
    server.expireAccessTokens();
    await client.auth.me.query();
    expect(held?.refreshToken).not.toBe(seed.refreshToken);
  });
  it('a storage that fails makes the call reject with its error instead of hanging', async () => {
    const server = new FakeKeel();
    const broken = (what: 'get' | 'set'): TokenStorage => ({
      get: () => {
        if (what === 'get') throw new Error('storage unreadable');
        return null;
      },
      set: async () => {
        if (what === 'set') throw new Error('storage full');
      },
    });
    const reading = createKeelClient({ url: URL_BASE, fetch: server.fetch, storage: broken('get') });
    await expect(reading.auth.me.query()).rejects.toThrow('storage unreadable');
    const writing = createKeelClient({ url: URL_BASE, fetch: server.fetch, storage: broken('set') });
    await expect(writing.login({ email: 'ann@example.test', password: 'right' })).rejects.toThrow('storage full');
  });
});

describe('service client', () => {
  it('sends a fixed token, or one from getToken per request, and batches', async () => {
    const server = new FakeKeel();
    const { accessToken } = server.issue('bearer');
    const fixed = createKeelServiceClient({ url: URL_BASE, token: accessToken, fetch: server.fetch });
    await Promise.all([fixed.auth.me.query(), fixed.system.health.query()]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.token).toBe(accessToken);

    const getToken = vi.fn(async () => accessToken);
    const dynamic = createKeelServiceClient({ url: URL_BASE, getToken, fetch: server.fetch });
    await dynamic.auth.me.query();
    await dynamic.auth.me.query();
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('does not refresh: UNAUTHORIZED is the answer', async () => {
    const server = new FakeKeel();
    const client = createKeelServiceClient({ url: URL_BASE, token: 'h.e30.bad', fetch: server.fetch });
    await expect(client.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
    expect(server.paths()).toEqual(['auth.me']);
  });
});

describe('errors and types', () => {
  it('isKeelError narrows to the typed error data, with a code filter', async () => {
    const { client } = await signedIn();
    const error = await client.projects.create.mutate({ name: '' }).catch((e: unknown) => e);
    expect(isKeelError(error)).toBe(true);
    expect(isKeelError(error, 'BAD_REQUEST')).toBe(true);
    expect(isKeelError(error, 'NOT_FOUND')).toBe(false);
    expect(isKeelError(new Error('plain'))).toBe(false);
    if (isKeelError(error, 'BAD_REQUEST')) {
      expectTypeOf(error.data.code).toEqualTypeOf<'BAD_REQUEST'>();
      expectTypeOf(error.data.fieldErrors).toEqualTypeOf<Record<string, string[]> | undefined>();
      expect(error.data.fieldErrors).toEqual({ name: ['must not be empty'] });
    }
  });

  it('types inputs and outputs from the router', () => {
    expectTypeOf<RouterInputs['projects']['create']>().toEqualTypeOf<{ name: string; description?: string | null | undefined }>();
    expectTypeOf<User['createdAt']>().toEqualTypeOf<Date>();
    const client = createKeelClient({ url: URL_BASE });
    // @ts-expect-error `name` is required
    void (() => client.projects.create.mutate({ description: 'x' }));
    // @ts-expect-error no such procedure
    void (() => client.projects.nope.query());
    // The helpers must not hide a procedure of the same name.
    expectTypeOf<Extract<keyof AppRouter['_def']['record'], keyof KeelSessionHelpers>>().toBeNever();
  });
});
