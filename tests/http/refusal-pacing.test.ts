/**
 * Refusal pacing (server/src/http/refusal-pacing.ts): every 429 the host answers, whichever limit
 * refused and whichever transport carried the call, is held before it is sent, so a client that
 * never waits between attempts costs one request per hold instead of one per round trip. At most
 * REFUSAL_DELAY_MAX_HELD answers are held; past that they go at once. A stop sends the held ones.
 *
 * The delay here is a minute, so nothing is timed: a held answer is one that has not arrived while
 * later requests came and went, and the stop is what releases it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { admitPasswordWork } from '../../server/src/lib/password.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { withCapturedLogs } from '../support/log-capture.js';
import { mutate } from '../support/trpc-http.js';

const db = await useTestDatabase();
const { deps, logs } = withCapturedLogs(
  db.deps({
    config: {
      LOG_LEVEL: 'info',
      TRUST_PROXY: 'loopback',
      REFUSAL_DELAY_MS: '60000',
      REFUSAL_DELAY_MAX_HELD: '2',
      PASSWORD_HASH_CONCURRENCY: '1',
      PASSWORD_HASH_QUEUE: '0',
      // The general limit: one call a minute per address, counted in memory (no sync during the test).
      RATE_LIMIT_API_PER_IP: '1',
      RATE_LIMIT_API_SYNC_MS: '60000',
    },
  }),
);
const server = await startTestServer(deps);

/** Every password-work place taken, as a flood leaves them: the next sign-in is shed. */
const admission = admitPasswordWork(deps.config.passwords);
afterAll(() => {
  if (admission.admitted) admission.release();
});

/** Resolves once `count` answers are held by the app's pacer (polled: the hold starts inside the app). */
async function heldAnswers(count: number): Promise<void> {
  while (server.app.refusalPacer.held < count) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** A promise's state now, without waiting for it. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([promise.then(() => true), new Promise((resolve) => setImmediate(() => resolve(pending)))])) !== pending;
}

describe('429 answers are held before they are sent', () => {
  it('frees the place of a held answer whose client leaves, and logs its request as aborted', async () => {
    const user = await createUser(deps);
    const leaving = new AbortController();
    const answer = fetch(`${server.url}/trpc/auth.login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.18.9.9', 'x-request-id': 'pacing-abort-01' },
      body: JSON.stringify({ json: { email: user.email, password: 'a wrong password' } }),
      signal: leaving.signal,
    });
    await heldAnswers(1);
    leaving.abort();
    await expect(answer).rejects.toThrow();
    const line = await logs.waitFor((l) => l.reqId === 'pacing-abort-01' && l.msg === 'request');
    expect(line).toMatchObject({ status: 429, aborted: true, ip: '198.18.9.9', path: '/trpc/auth.login' });
    expect(server.app.refusalPacer.held).toBe(0);
    // One line for it, and no error from the answer that had nowhere to go.
    await new Promise((resolve) => setImmediate(resolve));
    expect(logs.lines().filter((l) => l.reqId === 'pacing-abort-01' && l.msg === 'request')).toHaveLength(1);
    expect(logs.lines().filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });

  it('holds a shed sign-in (tRPC) and a general-limit refusal (REST); past the cap answers at once; a stop sends the held', async () => {
    expect(admission.admitted).toBe(true);
    const user = await createUser(deps);

    // 1. A sign-in shed for want of a hashing place, over tRPC: held.
    const shed = mutate(server.url, 'auth.login', { email: user.email, password: 'a wrong password' }, { 'x-forwarded-for': '198.18.9.1' });
    await heldAnswers(1);

    // 2. The general per-address limit over REST: the first call passes, the second is refused and held.
    const first = await fetch(`${server.url}/api/auth/me`, { headers: { 'x-forwarded-for': '198.18.9.2' } });
    expect(first.status).toBe(401); // counted, then refused for want of a token: not a 429
    const limited = fetch(`${server.url}/api/auth/me`, { headers: { 'x-forwarded-for': '198.18.9.2' } });
    await heldAnswers(2);

    // Other requests are answered meanwhile, and the held ones have still not arrived.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await isSettled(shed)).toBe(false);
    expect(await isSettled(limited)).toBe(false);

    // 3. Two are held, the most allowed: the next refusal is answered at once, Retry-After and all.
    const atOnce = await mutate(
      server.url,
      'auth.login',
      { email: user.email, password: 'a wrong password' },
      { 'x-forwarded-for': '198.18.9.3' },
    );
    expect(atOnce.status).toBe(429);
    expect(Number(atOnce.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(server.app.refusalPacer.held).toBe(2);
    expect(await isSettled(shed)).toBe(false);

    // 4. Stopping sends what is held, as it was: 429 with Retry-After and the error body.
    await server.close();
    const [shedAnswer, limitedAnswer] = await Promise.all([shed, limited]);
    expect(shedAnswer.status).toBe(429);
    expect(shedAnswer.error?.data.code).toBe('TOO_MANY_REQUESTS');
    expect(Number(shedAnswer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limitedAnswer.status).toBe(429);
    expect(Number(limitedAnswer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limitedAnswer.json()) as { code: string }).code).toBe('TOO_MANY_REQUESTS');
  });
});
