/**
 * The general limit on every procedure, per client address and per user, over tRPC and REST:
 * the call past the budget answers TOO_MANY_REQUESTS with Retry-After, logged with the address.
 * Deciding never queries the database (the counts are shared in the background: see
 * two-instances.test.ts). Other refused calls (a bad access token) are logged with the address too.
 *
 * Every test acts from its own addresses (TRUST_PROXY + X-Forwarded-For). The background sharing
 * is slowed to once a minute here: no query of its own runs while a test counts queries.
 */
import { describe, expect, it } from 'vitest';
import { callerWith, signIn } from '../../support/caller.js';
import { movableClock } from '../../support/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { withCapturedLogs } from '../../support/log-capture.js';
import { decodeTrpcError, query, type SuperJsonEnvelope } from '../../support/trpc-http.js';

const PER_IP = 5;
const PER_USER = 3;

const db = await useTestDatabase();
/** A clock the tests move instead of sleeping (the limit's windows follow it). */
const clock = movableClock();
const now = clock.now;
const { deps, logs } = withCapturedLogs(
  db.deps({
    config: {
      TRUST_PROXY: 'loopback',
      RATE_LIMIT_API_PER_IP: String(PER_IP),
      RATE_LIMIT_API_PER_USER: String(PER_USER),
      RATE_LIMIT_API_SYNC_MS: '60000',
      LOG_LEVEL: 'info',
    },
    now,
  }),
);
const server = await startTestServer(deps);
const unlimited = await startTestServer(
  db.deps({ config: { TRUST_PROXY: 'loopback', RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_API_PER_IP: '1', RATE_LIMIT_API_PER_USER: '1' } }),
);

const from = (ip: string, extra: Record<string, string> = {}) => ({ 'x-forwarded-for': ip, ...extra });

async function rest(path: string, headers: Record<string, string>, base = server.url) {
  const response = await fetch(`${base}/api${path}`, { headers });
  return { status: response.status, headers: response.headers, body: (await response.json()) as { code?: string; message?: string } };
}

describe('per client address', () => {
  it(`answers the call past ${PER_IP} a minute from one address with TOO_MANY_REQUESTS and Retry-After over tRPC`, async () => {
    const ip = '198.18.0.1';
    for (let i = 0; i < PER_IP; i += 1) expect((await query(server.url, 'system.health', from(ip))).status).toBe(200);
    const limited = await query(server.url, 'system.health', from(ip));
    expect(limited.status).toBe(429);
    expect(limited.error?.data.code).toBe('TOO_MANY_REQUESTS');
    const retryAfter = limited.error?.data.retryAfterSeconds ?? 0;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers.get('retry-after')).toBe(String(retryAfter));
    // Logged with the address it came from.
    await logs.waitFor((line) => line.audit === 'auth.rate_limited' && line.ip === ip && line.limit === 'api-ip');
    // Every procedure counts, public or not...
    expect((await query(server.url, 'auth.me', from(ip))).status).toBe(429);
    // ...and another address has its own budget.
    expect((await query(server.url, 'system.health', from('198.18.0.2'))).status).toBe(200);
  });

  it('limits the REST twins through the same budget: 429 with Retry-After and the REST error body', async () => {
    const ip = '198.18.1.1';
    for (let i = 0; i < PER_IP - 1; i += 1) expect((await rest('/health', from(ip))).status).toBe(200);
    expect((await query(server.url, 'system.health', from(ip))).status).toBe(200);
    const limited = await rest('/health', from(ip));
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('TOO_MANY_REQUESTS');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('counts each call of a batch', async () => {
    const ip = '198.18.2.1';
    const calls = PER_IP + 2;
    const paths = Array.from({ length: calls }, () => 'system.health').join(',');
    const response = await fetch(`${server.url}/trpc/${paths}?batch=1`, { headers: from(ip) });
    const results = (await response.json()) as { result?: unknown; error?: SuperJsonEnvelope }[];
    const codes = results.map((r) => (r.error ? decodeTrpcError(r.error).data.code : 'OK'));
    expect(codes.filter((c) => c === 'OK')).toHaveLength(PER_IP);
    expect(codes.filter((c) => c === 'TOO_MANY_REQUESTS')).toHaveLength(2);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('starts a fresh budget with the next one-minute window', async () => {
    const ip = '198.18.3.1';
    for (let i = 0; i < PER_IP; i += 1) await query(server.url, 'system.health', from(ip));
    const limited = await query(server.url, 'system.health', from(ip));
    expect(limited.status).toBe(429);
    clock.advance(limited.error?.data.retryAfterSeconds ?? 60);
    expect((await query(server.url, 'system.health', from(ip))).status).toBe(200);
  });

  it('decides without a database round trip', async () => {
    let queries = 0;
    const count = () => {
      queries += 1;
    };
    deps.database.pool.on('acquire', count);
    try {
      const statuses = [];
      for (let i = 0; i < PER_IP + 2; i += 1) statuses.push((await query(server.url, 'system.health', from('198.18.4.1'))).status);
      expect(statuses).toEqual([...Array.from({ length: PER_IP }, () => 200), 429, 429]);
    } finally {
      deps.database.pool.off('acquire', count);
    }
    expect(queries).toBe(0);
  });

  it('is off with RATE_LIMIT_ENABLED=false', async () => {
    for (let i = 0; i < 3; i += 1) expect((await query(unlimited.url, 'system.health', from('198.18.5.1'))).status).toBe(200);
  });
});

describe('per user', () => {
  it(`answers the call past ${PER_USER} a minute of one user with TOO_MANY_REQUESTS, whatever the addresses and the API`, async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    const auth = { authorization: `Bearer ${accessToken}` };
    expect((await query(server.url, 'auth.me', from('198.18.6.1', auth))).status).toBe(200);
    expect((await rest('/auth/me', from('198.18.6.2', auth))).status).toBe(200);
    expect((await query(server.url, 'auth.me', from('198.18.6.3', auth))).status).toBe(200);

    const limited = await rest('/auth/me', from('198.18.6.4', auth));
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('TOO_MANY_REQUESTS');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const overTrpc = await query(server.url, 'auth.me', from('198.18.6.5', auth));
    expect(overTrpc.status).toBe(429);
    expect(overTrpc.headers.get('retry-after')).toBe(String(overTrpc.error?.data.retryAfterSeconds));
    await logs.waitFor(
      (line) => line.audit === 'auth.rate_limited' && line.limit === 'api-user' && line.userId === user.id && line.ip === '198.18.6.4',
    );

    // Public procedures from those addresses still answer: the user's budget is spent, not theirs.
    expect((await query(server.url, 'system.health', from('198.18.6.5'))).status).toBe(200);
  });

  it('counts in-process calls (no transport, no address) per user only', async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    const caller = callerWith(deps, { authorization: `Bearer ${accessToken}` });
    for (let i = 0; i < PER_USER; i += 1) await expect(caller.auth.me()).resolves.toMatchObject({ id: user.id });
    expect((await trpcErrorOf(caller.auth.me())).code).toBe('TOO_MANY_REQUESTS');
    for (let i = 0; i < PER_IP + 1; i += 1) await expect(callerWith(deps).system.health()).resolves.toMatchObject({ status: 'ok' });
  });
});

describe('refused access tokens', () => {
  it('logs a missing, malformed or invalid access token with the client address', async () => {
    const ip = '198.18.7.1';
    const answers = [
      await query(server.url, 'auth.me', from(ip)),
      await query(server.url, 'auth.me', from(ip, { authorization: 'Bearer not.a.token' })),
    ];
    expect(answers.map((a) => a.status)).toEqual([401, 401]);
    await logs.waitFor((line) => line.audit === 'auth.access_token.rejected' && line.ip === ip && line.reason === 'missing');
    await logs.waitFor(
      (line) => line.audit === 'auth.access_token.rejected' && line.ip === ip && /invalid or expired/i.test(String(line.reason)),
    );
    const overRest = await rest('/auth/me', from('198.18.7.2', { authorization: 'Bearer not.a.token' }));
    expect(overRest.status).toBe(401);
    await logs.waitFor((line) => line.audit === 'auth.access_token.rejected' && line.ip === '198.18.7.2');
  });
});
