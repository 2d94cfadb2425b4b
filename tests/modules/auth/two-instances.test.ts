/**
 * Two Keel instances behind one load balancer: two HTTP servers with their own in-memory state
 * (session cache, rate limiter objects) over one database and one JWT_KEYS. Whatever one instance
 * issues or records, the other honours. Time moves through a clock both instances share.
 */
import { describe, expect, it } from 'vitest';
import { movableClock } from '../../support/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { mutate, query } from '../../support/trpc-http.js';

const GRACE_SECONDS = 10;
const LOGIN_PER_IP = 4;

const db = await useTestDatabase();

/** One wall clock for both instances, moved forward by the tests instead of sleeping. */
const clock = movableClock();
const now = clock.now;

const config = {
  TRUST_PROXY: 'loopback',
  RATE_LIMIT_LOGIN_PER_IP: String(LOGIN_PER_IP),
  REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS),
};
const depsA = db.deps({ config, now });
const depsB = db.deps({ config, now });
const a = await startTestServer(depsA);
const b = await startTestServer(depsB);

/** Every test acts from its own client address (TRUST_PROXY is on), so login budgets do not mix. */
const from = (ip: string) => ({ 'x-forwarded-for': ip });

describe('two instances sharing a database and keys', () => {
  it('accepts on one instance the access and refresh tokens issued by the other', async () => {
    const user = await createUser(depsA);
    const login = await mutate(a.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, from('198.51.100.1'));
    expect(login.status).toBe(200);

    const me = await query<{ id: string }>(b.url, 'auth.me', { authorization: `Bearer ${login.data?.accessToken}` });
    expect(me.status).toBe(200);
    expect(me.data?.id).toBe(user.id);

    // And the other way round: B rotates A's refresh token, A accepts B's access token.
    const refreshed = await mutate(b.url, 'auth.refresh', { refreshToken: login.data?.refreshToken }, from('198.51.100.1'));
    expect(refreshed.status).toBe(200);
    const meOnA = await query<{ id: string }>(a.url, 'auth.me', { authorization: `Bearer ${refreshed.data?.accessToken}` });
    expect(meOnA.data?.id).toBe(user.id);
  });

  it('detects a refresh token rotated on A and replayed on B after the grace window as reuse, and revokes the whole session', async () => {
    const ip = from('198.51.100.2');
    const user = await createUser(depsA);
    const login = await mutate(a.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, ip);
    const original = login.data?.refreshToken;
    const rotated = await mutate(a.url, 'auth.refresh', { refreshToken: original }, ip);
    expect(rotated.status).toBe(200);
    const successor = rotated.data?.refreshToken;
    expect(successor).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Inside the window B treats the replay as a retry, and answers with the successor A issued.
    const retry = await mutate(b.url, 'auth.refresh', { refreshToken: original }, ip);
    expect(retry.status).toBe(200);
    expect(retry.data?.refreshToken).toBe(successor);

    clock.advance(GRACE_SECONDS + 1);
    const replay = await mutate(b.url, 'auth.refresh', { refreshToken: original }, ip);
    expect(replay.status).toBe(401);
    expect(replay.error?.data.code).toBe('UNAUTHORIZED');

    const session = await depsA.database.prisma.session.findFirstOrThrow({ where: { userId: user.id } });
    expect(session).toMatchObject({ revokedReason: 'refresh_token_reuse', revokedAt: expect.any(Date) });
    // The newest token of the chain is dead too, on either instance.
    for (const server of [a, b]) {
      const newest = await mutate(server.url, 'auth.refresh', { refreshToken: successor }, ip);
      expect(newest.status).toBe(401);
    }
  });

  it('shares the login rate limit: half the IP budget on each instance, then TOO_MANY_REQUESTS with Retry-After on both', async () => {
    const ip = from('198.51.100.3');
    const user = await createUser(depsA);
    const input = { email: user.email, password: KNOWN_PASSWORD };
    for (const server of [a, b, a, b]) {
      const login = await mutate(server.url, 'auth.login', input, ip);
      expect(login.status).toBe(200);
    }
    for (const server of [a, b]) {
      const limited = await mutate(server.url, 'auth.login', input, ip);
      expect(limited.status).toBe(429);
      expect(limited.error?.data.code).toBe('TOO_MANY_REQUESTS');
      expect(limited.error?.data.retryAfterSeconds).toBeGreaterThan(0);
      expect(Number(limited.headers.get('retry-after'))).toBe(limited.error?.data.retryAfterSeconds);
    }
    // Another address still has its own budget.
    const other = await mutate(b.url, 'auth.login', input, from('198.51.100.4'));
    expect(other.status).toBe(200);
  });

  it('shares the general limit: calls counted on one instance count on the other, bounded by one sync interval', async () => {
    // Sharing only when told to, so the test decides when each instance syncs (no waiting).
    const limited = { TRUST_PROXY: 'loopback', RATE_LIMIT_API_PER_IP: '4', RATE_LIMIT_API_SYNC_MS: '60000' };
    const depsC = db.deps({ config: limited, now });
    const depsD = db.deps({ config: limited, now });
    const [c, d] = [await startTestServer(depsC), await startTestServer(depsD)];
    const ip = from('198.51.100.9');
    const health = async (server: { url: string }) => (await query(server.url, 'system.health', ip)).status;

    expect([await health(c), await health(c)]).toEqual([200, 200]);
    await depsC.rateLimits.syncApi();
    expect([await health(d), await health(d)]).toEqual([200, 200]);
    await depsD.rateLimits.syncApi();
    // D has served only two calls itself, but it now knows C's two: the budget of 4 is spent.
    const refused = await query(d.url, 'auth.me', ip);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

    // C has not synced since D's calls: it admits one more (the documented overshoot, at most what
    // D admitted since C's last sync), then learns the total at its next sync and refuses too.
    expect(await health(c)).toBe(200);
    await depsC.rateLimits.syncApi();
    expect(await health(c)).toBe(429);
    const shared = await depsC.database.prisma.apiRateLimit.findMany({ where: { key: 'ip:198.51.100.9' } });
    expect(shared.map((row) => row.count)).toEqual([5]);
  });
});
