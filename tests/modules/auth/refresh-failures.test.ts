/**
 * Every way a refresh can fail answers the same: UNAUTHORIZED (HTTP 401), over tRPC in bearer and
 * cookie mode and over REST. A client then has one answer meaning "the session is over, sign in
 * again" (the SDK's `onSessionExpired`), whatever went wrong with the token it held: malformed,
 * unknown, expired, reused, revoked, belonging to a deactivated account, or missing.
 */
import { describe, expect, it } from 'vitest';
import { REFRESH_COOKIE } from '../../../server/src/modules/auth/router.js';
import { signIn } from '../../support/caller.js';
import { movableClock } from '../../support/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { createUser } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { mutate } from '../../support/trpc-http.js';

const ORIGIN = 'https://app.example.com';
const GRACE_SECONDS = 10;
const IDLE_SECONDS = 3600;

const db = await useTestDatabase();
const clock = movableClock();
const deps = db.deps({
  config: {
    CORS_ORIGINS: ORIGIN,
    REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS),
    SESSION_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS),
  },
  now: clock.now,
});
const server = await startTestServer(deps);

const advance = clock.advance;

/** A fresh session's refresh token. */
async function liveToken(): Promise<{ token: string; sessionId: string; userId: string }> {
  const user = await createUser(deps);
  const { refreshToken, sessionId } = await signIn(deps, user);
  return { token: refreshToken, sessionId, userId: user.id };
}

/** The refresh over tRPC in bearer mode (the token in the body) and over REST: both must refuse alike. */
async function expectRefused(input: unknown, message: RegExp): Promise<void> {
  const trpc = await mutate(server.url, 'auth.refresh', input);
  expect({ status: trpc.status, code: trpc.error?.data.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
  expect(trpc.error?.message).toMatch(message);

  const response = await fetch(`${server.url}/api/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input ?? {}),
  });
  const body = (await response.json()) as { code?: string };
  expect({ status: response.status, code: body.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
}

const INVALID = /^Invalid or expired refresh token\.$/;

describe('every refresh failure is UNAUTHORIZED', () => {
  it.each([
    ['too short', 'short'],
    ['the right length with characters a token never has', `${'!'.repeat(42)}=`],
    ['far too long', 'A'.repeat(10_000)],
    ['an access token (a JWT) in its place', 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'],
  ])('a malformed token: %s', async (_, token) => {
    await expectRefused({ refreshToken: token }, INVALID);
  });

  it('an unknown token of the right shape', async () => {
    await expectRefused({ refreshToken: 'A'.repeat(43) }, INVALID);
  });

  it('a token whose session idled past SESSION_IDLE_TIMEOUT_SECONDS', async () => {
    const { token } = await liveToken();
    advance(IDLE_SECONDS + 1);
    await expectRefused({ refreshToken: token }, INVALID);
  });

  it('a token already rotated, presented after the grace window (reuse: the session ends too)', async () => {
    const { token, sessionId } = await liveToken();
    const rotated = await mutate(server.url, 'auth.refresh', { refreshToken: token });
    expect(rotated.status).toBe(200);
    advance(GRACE_SECONDS + 1);
    await expectRefused({ refreshToken: token }, INVALID);
    const session = await deps.database.prisma.session.findUniqueOrThrow({ where: { id: sessionId } });
    expect(session.revokedReason).toBe('refresh_token_reuse');
  });

  it('a token of a session that signed out', async () => {
    const user = await createUser(deps);
    const { refreshToken, accessToken } = await signIn(deps, user);
    const logout = await mutate(server.url, 'auth.logout', undefined, { authorization: `Bearer ${accessToken}` });
    expect(logout.status).toBe(200);
    await expectRefused({ refreshToken }, INVALID);
  });

  it('a token of a deactivated account', async () => {
    const { token, userId } = await liveToken();
    await deps.database.prisma.user.update({ where: { id: userId }, data: { active: false } });
    await expectRefused({ refreshToken: token }, INVALID);
  });

  it.each([
    ['no input at all', undefined],
    ['an empty object', {}],
    ['an empty string', { refreshToken: '' }],
  ])('a missing token: %s', async (_, input) => {
    await expectRefused(input, /^Missing refresh token\.$/);
  });

  it.each([
    ['no cookie', undefined, /^Missing refresh token\.$/],
    ['a malformed cookie', 'not-a-token', INVALID],
    ['an unknown cookie', 'B'.repeat(43), INVALID],
  ])('cookie mode with %s', async (_, cookie, message) => {
    const headers = { 'x-keel-auth': 'cookie', origin: ORIGIN, ...(cookie === undefined ? {} : { cookie: `${REFRESH_COOKIE}=${cookie}` }) };
    const answer = await mutate(server.url, 'auth.refresh', undefined, headers);
    expect({ status: answer.status, code: answer.error?.data.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    expect(answer.error?.message).toMatch(message);
  });

  it('but input that is not a refresh request at all is still BAD_REQUEST: a number, or an unknown field', async () => {
    for (const input of [{ refreshToken: 42 }, { refreshToken: 'A'.repeat(43), extra: true }]) {
      const answer = await mutate(server.url, 'auth.refresh', input);
      expect({ status: answer.status, code: answer.error?.data.code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
    }
  });
});
