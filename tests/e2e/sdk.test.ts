/**
 * The SDK (from its source) against the real HTTP host: sign-up and sign-in that keep the tokens,
 * typed calls with superjson, batches within the server's limit, an access token that expires
 * (the server's clock moves) and is refreshed once for many calls, a session revoked elsewhere,
 * typed errors, and the service client.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  createKeelClient,
  createKeelServiceClient,
  isKeelError,
  isTwoFactorChallenge,
  type KeelClientOptions,
} from '../../client-sdk/src/index.js';
import { movableClock } from '../support/clock.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const TTL_SECONDS = 60;

const db = await useTestDatabase();
const clock = movableClock();
const deps = db.deps({ config: { ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS) }, now: clock.now });
const server = await startTestServer(deps);

/** Past the access token's lifetime and the server's 30 s clock tolerance. */
const expireAccessTokens = () => {
  clock.advance(TTL_SECONDS + 31);
};

let counter = 0;
const newEmail = () => `sdk-${++counter}-${Date.now()}@example.test`;
const PASSWORD = 'a sturdy passphrase';

/** A client whose requests are counted by procedure path. */
function client(options: Partial<KeelClientOptions> = {}) {
  const paths: string[] = [];
  const onSessionExpired = vi.fn();
  const keel = createKeelClient({
    url: server.url,
    onSessionExpired,
    fetch: (url, init) => {
      paths.push(...decodeURIComponent(new URL(url).pathname.replace(/^\/trpc\//, '')).split(','));
      return fetch(url, init);
    },
    ...options,
  });
  return { keel, paths, onSessionExpired, count: (path: string) => paths.filter((p) => p === path).length };
}

async function registered(options: Partial<KeelClientOptions> = {}) {
  const context = client(options);
  const email = newEmail();
  await context.keel.register({ email, password: PASSWORD, name: 'Sdk User' });
  return { ...context, email };
}

describe('the SDK against the real server', () => {
  it('registers, signs in and calls typed procedures; Dates survive the trip', async () => {
    const { keel, email } = await registered();
    const me = await keel.auth.me.query();
    expect(me.email).toBe(email);
    expect(me.createdAt).toBeInstanceOf(Date);

    const again = client();
    const login = await again.keel.login({ email, password: PASSWORD });
    if (isTwoFactorChallenge(login)) throw new Error('expected tokens, got a two-factor challenge');
    expect(login.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const project = await again.keel.projects.create.mutate({ name: 'Launch' });
    const task = await again.keel.tasks.create.mutate({ projectId: project.id, title: 'Ship it', dueAt: new Date('2030-01-02T03:04:05Z') });
    expect(task.dueAt).toEqual(new Date('2030-01-02T03:04:05Z'));
    const page = await again.keel.tasks.list.query({ projectId: project.id });
    expect(page.items.map((t) => t.title)).toEqual(['Ship it']);
  });

  it('splits more calls than the server batch limit (50) into batches it accepts', async () => {
    const { keel, paths } = await registered();
    const answers = await Promise.all(Array.from({ length: 60 }, () => keel.auth.me.query()));
    expect(answers).toHaveLength(60);
    expect(paths.filter((p) => p === 'auth.me')).toHaveLength(60);
  });

  it('survives an expired access token: many calls, one refresh, each retried once', async () => {
    const { keel, count, onSessionExpired } = await registered();
    const before = await keel.getTokens();
    expireAccessTokens();
    const answers = await Promise.all(Array.from({ length: 10 }, () => keel.auth.me.query()));
    expect(answers.every((me) => me.id === answers[0]?.id)).toBe(true);
    expect(count('auth.refresh')).toBe(1);
    expect(count('auth.me')).toBe(20);
    expect(onSessionExpired).not.toHaveBeenCalled();
    const after = await keel.getTokens();
    expect(after?.accessToken).not.toBe(before?.accessToken);
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
  });

  it('when the session was revoked elsewhere: onSessionExpired once, UNAUTHORIZED, tokens gone', async () => {
    const { keel, email, onSessionExpired, count } = await registered();
    const other = client();
    await other.keel.login({ email, password: PASSWORD });
    await other.keel.auth.logoutAll.mutate();
    expireAccessTokens();
    const outcomes = await Promise.allSettled([keel.auth.me.query(), keel.projects.list.query()]);
    for (const outcome of outcomes) {
      expect(outcome.status === 'rejected' && isKeelError(outcome.reason, 'UNAUTHORIZED')).toBe(true);
    }
    expect(count('auth.refresh')).toBe(1);
    expect(onSessionExpired).toHaveBeenCalledTimes(1);
    expect(await keel.getTokens()).toBeNull();
  });

  it('logout ends the session: its refresh token no longer works', async () => {
    const { keel } = await registered();
    const tokens = await keel.getTokens();
    await keel.logout();
    expect(await keel.getTokens()).toBeNull();
    const probe = client();
    const refused = await probe.keel.auth.refresh.mutate({ refreshToken: tokens?.refreshToken }).catch((e: unknown) => e);
    expect(isKeelError(refused, 'UNAUTHORIZED')).toBe(true);
  });

  it('reports typed errors: field errors of invalid input, CONFLICT on a taken email, a request id', async () => {
    const { keel, email } = await registered();
    const invalid = await keel.projects.create.mutate({ name: '   ' }).catch((e: unknown) => e);
    expect(isKeelError(invalid, 'BAD_REQUEST')).toBe(true);
    if (isKeelError(invalid, 'BAD_REQUEST')) {
      expect(invalid.data.fieldErrors?.name).toEqual(['must not be empty']);
      expect(invalid.data.requestId).toEqual(expect.any(String));
      expect(invalid.data.httpStatus).toBe(400);
    }
    const taken = await client()
      .keel.register({ email, password: PASSWORD })
      .catch((e: unknown) => e);
    expect(isKeelError(taken, 'CONFLICT')).toBe(true);
  });

  it('the service client calls with its own token and does not refresh', async () => {
    const { keel } = await registered();
    const token = (await keel.getTokens())?.accessToken ?? '';
    const service = createKeelServiceClient({ url: server.url, getToken: () => token });
    const [me, health] = await Promise.all([service.auth.me.query(), service.system.health.query()]);
    expect(me.email).toMatch(/^sdk-/);
    expect(health.status).toBe('ok');
    expireAccessTokens();
    await expect(service.auth.me.query()).rejects.toSatisfy((e: unknown) => isKeelError(e, 'UNAUTHORIZED'));
  });
});

describe('a mutation whose answer is lost', () => {
  it('is retried once by the SDK with the same Idempotency-Key and runs once on the server', async () => {
    let dropped = false;
    const replayed: (string | null)[] = [];
    const context = await registered({
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (url.includes('projects.create')) {
          replayed.push(response.headers.get('idempotent-replayed'));
          if (!dropped) {
            dropped = true;
            await response.arrayBuffer();
            throw new TypeError('fetch failed: the connection dropped after the server answered');
          }
        }
        return response;
      },
    });
    const project = await context.keel.projects.create.mutate({ name: 'Created once' });
    expect(replayed).toEqual([null, 'true']);
    const rows = await deps.database.prisma.project.findMany({ where: { name: 'Created once' }, select: { id: true } });
    expect(rows).toEqual([{ id: project.id }]);
  });
});
