/**
 * Cookie mode (`x-keel-auth: cookie`), as a browser uses it over real HTTP: the refresh token lives
 * only in an HttpOnly, SameSite=Strict cookie scoped to the refresh procedure, cookie-mode mutations
 * need an allowed Origin, and bearer mode never touches cookies. Time moves through the deps' clock.
 */
import { describe, expect, it } from 'vitest';
import { generateJwkSet } from '../../../server/src/modules/auth/keys.js';
import { REFRESH_COOKIE, REFRESH_COOKIE_PATH, SECURE_REFRESH_COOKIE } from '../../../server/src/modules/auth/router.js';
import { movableClock } from '../../support/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { mutate } from '../../support/trpc-http.js';

const ORIGIN = 'https://app.example.com';
const FOREIGN_ORIGIN = 'https://evil.example.net';
const GRACE_SECONDS = 10;

const db = await useTestDatabase();

/** A clock the tests move forward instead of sleeping. */
const clock = movableClock();
const now = clock.now;

const deps = db.deps({ config: { CORS_ORIGINS: ORIGIN, REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS) }, now });
const server = await startTestServer(deps);

const production = db.deps({
  config: {
    NODE_ENV: 'production',
    CORS_ORIGINS: ORIGIN,
    JWT_KEYS: JSON.stringify(await generateJwkSet('EdDSA')),
    MAIL_TRANSPORT: 'smtp',
    SMTP_URL: 'smtp://127.0.0.1:9',
    APP_URL: 'https://app.example.com',
  },
});
const productionServer = await startTestServer(production);

// ---------------------------------------------------------------------------------------------
// Cookie-mode request headers, and Set-Cookie parsing.

const cookieMode = (extra: Record<string, string> = {}) => ({ 'x-keel-auth': 'cookie', origin: ORIGIN, ...extra });
const withCookie = (value: string, extra: Record<string, string> = {}) => cookieMode({ cookie: `${REFRESH_COOKIE}=${value}`, ...extra });

interface SetCookie {
  name: string;
  value: string;
  /** Attribute names lower-cased; flags map to true. */
  attributes: Record<string, string | true>;
}

function setCookies(headers: Headers): SetCookie[] {
  return headers.getSetCookie().map((line) => {
    const [pair = '', ...rest] = line.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    const attributes: Record<string, string | true> = {};
    for (const attribute of rest) {
      const i = attribute.indexOf('=');
      if (i < 0) attributes[attribute.toLowerCase()] = true;
      else attributes[attribute.slice(0, i).toLowerCase()] = attribute.slice(i + 1);
    }
    return { name: pair.slice(0, eq), value: decodeURIComponent(pair.slice(eq + 1)), attributes };
  });
}

/** The one refresh cookie an answer sets (fails the test if there is not exactly one). */
function refreshCookie(headers: Headers, name = REFRESH_COOKIE): SetCookie {
  const cookies = setCookies(headers).filter((c) => c.name === name);
  expect(cookies).toHaveLength(1);
  return cookies[0] as SetCookie;
}

function expectCleared(headers: Headers): void {
  const cookie = refreshCookie(headers);
  expect(cookie.value).toBe('');
  expect(cookie.attributes.path).toBe(REFRESH_COOKIE_PATH);
  const expires = cookie.attributes.expires;
  expect(cookie.attributes['max-age'] === '0' || (typeof expires === 'string' && new Date(expires).getTime() <= Date.now())).toBe(true);
}

async function cookieLogin(base = server.url) {
  const user = await createUser(deps);
  const login = await mutate(base, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, cookieMode());
  expect(login.status).toBe(200);
  return { user, login, cookie: refreshCookie(login.headers) };
}

const sessionRow = (sessionId: string) =>
  deps.database.prisma.session.findUniqueOrThrow({
    where: { id: sessionId },
    select: { revokedAt: true, revokedReason: true, lastUsedAt: true, refreshTokens: { select: { rotatedAt: true } } },
  });

const onlySessionOf = async (userId: string) => {
  const sessions = await deps.database.prisma.session.findMany({ where: { userId }, select: { id: true } });
  expect(sessions).toHaveLength(1);
  return (sessions[0] as { id: string }).id;
};

describe('cookie-mode sign-in', () => {
  it('login from an allowed Origin sets an HttpOnly, SameSite=Strict cookie on /trpc/auth.refresh (not Secure in test mode) and keeps the refresh token out of the body', async () => {
    const { login, cookie } = await cookieLogin();
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie.attributes.httponly).toBe(true);
    expect(String(cookie.attributes.samesite).toLowerCase()).toBe('strict');
    expect(cookie.attributes.path).toBe(REFRESH_COOKIE_PATH);
    expect(cookie.attributes).not.toHaveProperty('secure');
    expect(cookie.attributes).not.toHaveProperty('domain');
    expect(new Date(String(cookie.attributes.expires)).getTime()).toBeGreaterThan(Date.now());
    expect(login.data).not.toHaveProperty('refreshToken');
    expect(login.data?.accessToken.split('.')).toHaveLength(3);
    // The browser may read the answer: CORS allows the origin, with credentials.
    expect(login.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(login.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('register in cookie mode sets the same cookie and no refresh token in the body', async () => {
    const register = await mutate(
      server.url,
      'auth.register',
      { email: 'cookie-register@example.test', password: 'a sturdy passphrase' },
      cookieMode(),
    );
    expect(register.status).toBe(200);
    expect(register.data).not.toHaveProperty('refreshToken');
    const cookie = refreshCookie(register.headers);
    expect(cookie.attributes).toMatchObject({ httponly: true, path: REFRESH_COOKIE_PATH });
    expect(String(cookie.attributes.samesite).toLowerCase()).toBe('strict');
  });

  it('with the production configuration the cookie is also Secure, under the __Secure- prefix', async () => {
    const user = await createUser(production);
    const login = await mutate(productionServer.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, cookieMode());
    expect(login.status).toBe(200);
    expect(login.data).not.toHaveProperty('refreshToken');
    expect(SECURE_REFRESH_COOKIE).toBe('__Secure-keel_refresh');
    const cookie = refreshCookie(login.headers, SECURE_REFRESH_COOKIE);
    expect(cookie.attributes).toMatchObject({ secure: true, httponly: true, path: REFRESH_COOKIE_PATH });
    expect(String(cookie.attributes.samesite).toLowerCase()).toBe('strict');
    expect(setCookies(login.headers).map((c) => c.name)).toEqual([SECURE_REFRESH_COOKIE]);

    // It refreshes, and logout deletes it with a Secure Set-Cookie (browsers ignore a __Secure- one without).
    const refreshed = await mutate(
      productionServer.url,
      'auth.refresh',
      undefined,
      cookieMode({ cookie: `${SECURE_REFRESH_COOKIE}=${cookie.value}` }),
    );
    expect(refreshed.status).toBe(200);
    const rotated = refreshCookie(refreshed.headers, SECURE_REFRESH_COOKIE);
    const logout = await mutate(
      productionServer.url,
      'auth.logout',
      undefined,
      cookieMode({ authorization: `Bearer ${refreshed.data?.accessToken}`, cookie: `${SECURE_REFRESH_COOKIE}=${rotated.value}` }),
    );
    expect(logout.status).toBe(200);
    const cleared = refreshCookie(logout.headers, SECURE_REFRESH_COOKIE);
    expect(cleared.value).toBe('');
    expect(cleared.attributes).toMatchObject({ secure: true, path: REFRESH_COOKIE_PATH });
  });

  it('across the deploy that added the prefix: a session holding the old cookie refreshes once and moves to the new name', async () => {
    const user = await createUser(production);
    const login = await mutate(productionServer.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, cookieMode());
    const token = refreshCookie(login.headers, SECURE_REFRESH_COOKIE).value;
    // What a browser signed in before the deploy sends: the same token under the old name.
    const refreshed = await mutate(productionServer.url, 'auth.refresh', undefined, cookieMode({ cookie: `${REFRESH_COOKIE}=${token}` }));
    expect(refreshed.status).toBe(200);
    expect(refreshed.data?.user.id).toBe(user.id);
    const moved = refreshCookie(refreshed.headers, SECURE_REFRESH_COOKIE);
    expect(moved.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(moved.attributes).toMatchObject({ secure: true, httponly: true, path: REFRESH_COOKIE_PATH });
    const old = refreshCookie(refreshed.headers, REFRESH_COOKIE);
    expect(old.value).toBe('');
    expect(old.attributes.path).toBe(REFRESH_COOKIE_PATH);
    // With both cookies (the old one not yet gone), the new one wins.
    const both = await mutate(
      productionServer.url,
      'auth.refresh',
      undefined,
      cookieMode({ cookie: `${REFRESH_COOKIE}=${token}; ${SECURE_REFRESH_COOKIE}=${moved.value}` }),
    );
    expect(both.status).toBe(200);
    // A rotation of the new token, not the grace-window replay of the old one (which would hand back `moved`).
    expect(refreshCookie(both.headers, SECURE_REFRESH_COOKIE).value).not.toBe(moved.value);
    // Outside production the name stays: browsers refuse __Secure- cookies without Secure, and http://localhost is not https.
    const { cookie } = await cookieLogin();
    expect(cookie.attributes).not.toHaveProperty('secure');
  });

  it('refuses a cookie-mode login without an Origin or from a foreign Origin with FORBIDDEN, setting no cookie', async () => {
    const user = await createUser(deps);
    for (const origin of [undefined, FOREIGN_ORIGIN, 'null']) {
      const headers: Record<string, string> = { 'x-keel-auth': 'cookie', ...(origin ? { origin } : {}) };
      const login = await mutate(server.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, headers);
      expect(login.status).toBe(403);
      expect(login.error?.data.code).toBe('FORBIDDEN');
      expect(login.headers.getSetCookie()).toEqual([]);
    }
    expect(await deps.database.prisma.session.count({ where: { userId: user.id } })).toBe(0);
  });
});

describe('cookie-mode refresh', () => {
  it('rotates the cookie with the cookie alone, and rejects the old cookie after the grace window (reuse ends the session)', async () => {
    const { user, cookie: first } = await cookieLogin();
    const sessionId = await onlySessionOf(user.id);

    const refreshed = await mutate(server.url, 'auth.refresh', undefined, withCookie(first.value));
    expect(refreshed.status).toBe(200);
    expect(refreshed.data).not.toHaveProperty('refreshToken');
    expect(refreshed.data?.user.id).toBe(user.id);
    const second = refreshCookie(refreshed.headers);
    expect(second.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second.value).not.toBe(first.value);
    expect(second.attributes).toMatchObject({ httponly: true, path: REFRESH_COOKIE_PATH });

    // Inside the grace window the old cookie (a second tab, a lost response) gets the same successor.
    const retried = await mutate(server.url, 'auth.refresh', undefined, withCookie(first.value));
    expect(retried.status).toBe(200);
    expect(refreshCookie(retried.headers).value).toBe(second.value);

    clock.advance(GRACE_SECONDS + 1);
    // The current cookie keeps working after the window...
    const third = await mutate(server.url, 'auth.refresh', undefined, withCookie(second.value));
    expect(third.status).toBe(200);
    const thirdCookie = refreshCookie(third.headers);

    clock.advance(GRACE_SECONDS + 1);
    // ...but the first one is now reuse: refused, cleared, and the whole session ends.
    const replay = await mutate(server.url, 'auth.refresh', undefined, withCookie(first.value));
    expect(replay.status).toBe(401);
    expect(replay.error?.data.code).toBe('UNAUTHORIZED');
    expectCleared(replay.headers);
    expect(await sessionRow(sessionId)).toMatchObject({ revokedReason: 'refresh_token_reuse', revokedAt: expect.any(Date) });
    const newest = await mutate(server.url, 'auth.refresh', undefined, withCookie(thirdCookie.value));
    expect(newest.status).toBe(401);
  });

  it('refuses a cookie-mode refresh without an Origin or from a foreign Origin with FORBIDDEN and leaves the session untouched', async () => {
    const { user, cookie } = await cookieLogin();
    const sessionId = await onlySessionOf(user.id);
    const before = await sessionRow(sessionId);

    const attempts = [
      { 'x-keel-auth': 'cookie', cookie: `${REFRESH_COOKIE}=${cookie.value}` },
      withCookie(cookie.value, { origin: FOREIGN_ORIGIN }),
      withCookie(cookie.value, { origin: `${ORIGIN}.evil.example.net` }),
    ];
    for (const headers of attempts) {
      const refused = await mutate(server.url, 'auth.refresh', undefined, headers);
      expect(refused.status).toBe(403);
      expect(refused.error?.data.code).toBe('FORBIDDEN');
      // Not even cleared: a foreign page cannot sign the user out either.
      expect(refused.headers.getSetCookie()).toEqual([]);
    }

    const after = await sessionRow(sessionId);
    expect(after).toEqual(before);
    expect(after.revokedAt).toBeNull();
    expect(after.refreshTokens).toEqual([{ rotatedAt: null }]);
    // The cookie still works from the right origin.
    const ok = await mutate(server.url, 'auth.refresh', undefined, withCookie(cookie.value));
    expect(ok.status).toBe(200);
  });

  it('answers a cookie-mode refresh without a cookie with UNAUTHORIZED', async () => {
    const missing = await mutate(server.url, 'auth.refresh', undefined, cookieMode());
    expect(missing.status).toBe(401);
    expect(missing.error?.data.code).toBe('UNAUTHORIZED');
  });
});

describe('cookie-mode logout', () => {
  it('clears the refresh cookie and ends the session', async () => {
    const { user, login, cookie } = await cookieLogin();
    const sessionId = await onlySessionOf(user.id);
    const logout = await mutate(server.url, 'auth.logout', undefined, cookieMode({ authorization: `Bearer ${login.data?.accessToken}` }));
    expect(logout.status).toBe(200);
    expect(logout.data).toEqual({ ok: true });
    expectCleared(logout.headers);
    expect(await sessionRow(sessionId)).toMatchObject({ revokedReason: 'logout' });
    const after = await mutate(server.url, 'auth.refresh', undefined, withCookie(cookie.value));
    expect(after.status).toBe(401);
  });
});

describe('bearer mode', () => {
  it('never sets a cookie: register, login, refresh and logout return tokens in the body only', async () => {
    const headers = { origin: ORIGIN };
    const register = await mutate(
      server.url,
      'auth.register',
      { email: 'bearer-only@example.test', password: 'a sturdy passphrase' },
      headers,
    );
    const login = await mutate(server.url, 'auth.login', { email: 'bearer-only@example.test', password: 'a sturdy passphrase' }, headers);
    const refresh = await mutate(server.url, 'auth.refresh', { refreshToken: login.data?.refreshToken }, headers);
    const logout = await mutate(server.url, 'auth.logout', undefined, { ...headers, authorization: `Bearer ${refresh.data?.accessToken}` });
    for (const a of [register, login, refresh, logout]) {
      expect(a.status).toBe(200);
      expect(a.headers.getSetCookie()).toEqual([]);
    }
    for (const a of [register, login, refresh]) expect(a.data?.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('does not read the refresh cookie: a bearer-mode refresh carrying only the cookie is UNAUTHORIZED', async () => {
    const { cookie } = await cookieLogin();
    const refresh = await mutate(server.url, 'auth.refresh', undefined, { origin: ORIGIN, cookie: `${REFRESH_COOKIE}=${cookie.value}` });
    expect(refresh.status).toBe(401);
    expect(refresh.headers.getSetCookie()).toEqual([]);
  });
});
