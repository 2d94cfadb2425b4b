/**
 * The SDK against the real server, for every way the refresh of a stored session can fail: the
 * app hears about it once, through `onSessionExpired`, with an UNAUTHORIZED error (what the README
 * promises), the tokens are forgotten and the failed call rejects with UNAUTHORIZED.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  createKeelClient,
  isKeelError,
  type KeelClientOptions,
  type KeelTokens,
  memoryStorage,
  type SessionExpiredError,
} from '../../client-sdk/src/index.js';
import { REFRESH_COOKIE } from '../../server/src/modules/auth/router.js';
import { movableClock } from '../support/clock.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const ORIGIN = 'https://app.example.com';
const TTL_SECONDS = 60;
const GRACE_SECONDS = 10;
const IDLE_SECONDS = 3600;

const db = await useTestDatabase();
const clock = movableClock();
const deps = db.deps({
  config: {
    CORS_ORIGINS: ORIGIN,
    ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS),
    REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS),
    SESSION_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS),
  },
  now: clock.now,
});
const server = await startTestServer(deps);

const advance = clock.advance;
/** Past the access token's lifetime and the server's 30 s clock tolerance. */
const expireAccessTokens = () => advance(TTL_SECONDS + 31);

let counter = 0;
const PASSWORD = 'a sturdy passphrase';

/** A signed-up client whose storage the test can tamper with, and what its onSessionExpired received. */
async function signedUp(options: Partial<KeelClientOptions> = {}) {
  const storage = memoryStorage();
  const expired: SessionExpiredError[] = [];
  const onSessionExpired = vi.fn((error: SessionExpiredError) => {
    expired.push(error);
  });
  const keel = createKeelClient({ url: server.url, storage, onSessionExpired, ...options });
  const email = `refresh-failure-${++counter}-${Date.now()}@example.test`;
  await keel.register({ email, password: PASSWORD });
  const tokens = (await storage.get()) as KeelTokens;
  return { keel, storage, tokens, expired, onSessionExpired, email };
}

type Client = Awaited<ReturnType<typeof signedUp>>;

/** The next call needs a refresh, which the server refuses: the session is over, and the app is told once with UNAUTHORIZED. */
async function expectSessionExpired({ keel, expired, onSessionExpired }: Client): Promise<void> {
  const error = await keel.auth.me.query().catch((e: unknown) => e);
  expect(isKeelError(error, 'UNAUTHORIZED'), String(error)).toBe(true);
  expect(onSessionExpired).toHaveBeenCalledTimes(1);
  expect(expired.map((e) => [e.data.code, e.data.httpStatus])).toEqual([['UNAUTHORIZED', 401]]);
  expect(await keel.getTokens()).toBeNull();
}

describe('onSessionExpired receives UNAUTHORIZED for every refresh failure', () => {
  it.each([
    ['malformed (too short)', 'not-a-token'],
    ['malformed (the wrong alphabet)', `${'*'.repeat(42)}=`],
    ['unknown (the right shape)', 'C'.repeat(43)],
  ])('a stored refresh token that is %s', async (_, refreshToken) => {
    const client = await signedUp();
    await client.storage.set({ ...client.tokens, refreshToken });
    expireAccessTokens();
    await expectSessionExpired(client);
  });

  it('a session that idled past its timeout', async () => {
    const client = await signedUp();
    advance(IDLE_SECONDS + 1);
    await expectSessionExpired(client);
  });

  it('a stored refresh token that was already rotated (reuse, after the grace window)', async () => {
    const client = await signedUp();
    expect(await client.keel.refresh()).toBe(true);
    advance(GRACE_SECONDS + 1);
    // Storage restored from an old backup, or a second client that missed the rotation.
    await client.storage.set({ ...client.tokens, accessTokenExpiresAt: new Date(0) });
    await expectSessionExpired(client);
  });

  it('a session signed out everywhere from another device', async () => {
    const client = await signedUp();
    const other = createKeelClient({ url: server.url });
    await other.login({ email: client.email, password: PASSWORD });
    await other.auth.logoutAll.mutate();
    expireAccessTokens();
    await expectSessionExpired(client);
  });

  it('cookie mode without a refresh cookie (Node keeps no cookies)', async () => {
    const client = await signedUp({ auth: 'cookie', headers: { origin: ORIGIN } });
    expireAccessTokens();
    await expectSessionExpired(client);
  });

  it('cookie mode with a malformed refresh cookie', async () => {
    const client = await signedUp({ auth: 'cookie', headers: { origin: ORIGIN, cookie: `${REFRESH_COOKIE}=garbage` } });
    expireAccessTokens();
    await expectSessionExpired(client);
  });
});
