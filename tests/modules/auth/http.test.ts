/**
 * The auth procedures as an HTTP client sees them: the JWKS endpoint (and a key rotation), the
 * headers every auth answer carries, where an access token may come from, and what the request
 * logs hold (the user id of an authed call; never a token or a password).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createAppDeps, stopAppDeps } from '../../../server/src/deps.js';
import { createLogger } from '../../../server/src/logger.js';
import { generateJwkSet, importKeySet, loadKeySet } from '../../../server/src/modules/auth/keys.js';
import { signIn } from '../../support/caller.js';
import { testConfig, useTestDatabase } from '../../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { captureLogs } from '../../support/log-capture.js';
import { type AuthBody, mutate, query, type TrpcAnswer } from '../../support/trpc-http.js';

const db = await useTestDatabase();
const deps = db.deps();
const server = await startTestServer(deps);

/** Real deps whose logger writes JSON lines (debug and up) into a capture. */
const logs = captureLogs();
const loggedConfig = testConfig(db.url, { LOG_LEVEL: 'debug' });
const logged = createAppDeps({
  config: loggedConfig,
  database: db.database,
  logger: createLogger(loggedConfig, logs.stream),
  keys: db.keys,
});
afterAll(() => stopAppDeps(logged));
const loggedServer = await startTestServer(logged);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The `kid` in a JWT's protected header. */
const kidOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;

describe('GET /.well-known/jwks.json', () => {
  it('lists the public signing key with kid, alg and use, never the private member d, and may be cached', async () => {
    const response = await fetch(`${server.url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const raw = await response.text();
    const jwks = JSON.parse(raw) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: db.keys.kid, alg: 'EdDSA', use: 'sig', x: expect.any(String) });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(raw).not.toMatch(/"d"\s*:/);
  });

  it('during a key rotation serves both keys, signs with the new one and still accepts tokens signed by the old one', async () => {
    const oldSet = await generateJwkSet('EdDSA');
    const newSet = await generateJwkSet('EdDSA');
    const [oldKey] = oldSet.keys;
    const [newKey] = newSet.keys;
    if (!oldKey || !newKey) throw new Error('generateJwkSet returned no key');

    const before = db.deps({ keys: await importKeySet(JSON.stringify(oldSet)) });
    const beforeServer = await startTestServer(before);
    const user = await createUser(before);
    const old = await mutate<AuthBody>(beforeServer.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD });
    expect(old.data).toBeDefined();
    const oldToken = old.data?.accessToken ?? '';
    expect(kidOf(oldToken)).toBe(oldKey.kid);

    // The rotated configuration: the new private key first (it signs), the old one kept (it verifies).
    const JWT_KEYS = JSON.stringify({ keys: [newKey, oldKey] });
    const rotatedKeys = await loadKeySet(testConfig(db.url, { JWT_KEYS }), () => {});
    const rotated = await startTestServer(db.deps({ config: { JWT_KEYS }, keys: rotatedKeys }));

    const response = await fetch(`${rotated.url}/.well-known/jwks.json`);
    const raw = await response.text();
    const jwks = JSON.parse(raw) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKey.kid, oldKey.kid]);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ alg: 'EdDSA', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
    expect(raw).not.toMatch(/"d"\s*:/);

    const me = await query<{ id: string }>(rotated.url, 'auth.me', bearer(oldToken));
    expect(me.error).toBeUndefined();
    expect(me.data?.id).toBe(user.id);

    const fresh = await mutate<AuthBody>(rotated.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD });
    expect(kidOf(fresh.data?.accessToken ?? '')).toBe(newKey.kid);

    // A key that is in neither set: its tokens are refused.
    const stranger = db.deps({ keys: await importKeySet(JSON.stringify(await generateJwkSet('EdDSA'))) });
    const foreign = await signIn(stranger, user);
    const refused = await query(rotated.url, 'auth.me', bearer(foreign.accessToken));
    expect(refused.status).toBe(401);
    expect(refused.error?.data.code).toBe('UNAUTHORIZED');
  });
});

describe('auth response headers', () => {
  it('answers UNAUTHORIZED with a WWW-Authenticate: Bearer challenge (no token, a garbage token, a wrong password)', async () => {
    const user = await createUser(deps);
    const answers = [
      await query(server.url, 'auth.me'),
      await query(server.url, 'auth.me', bearer('not.a.jwt')),
      await mutate(server.url, 'auth.login', { email: user.email, password: 'definitely wrong' }),
    ];
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.error?.data.code).toBe('UNAUTHORIZED');
      expect(a.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    }
  });

  it('marks every auth answer, success or failure, query, mutation or batch, Cache-Control: no-store', async () => {
    const user = await createUser(deps);
    const login = await mutate<AuthBody>(server.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD });
    const accessToken = login.data?.accessToken ?? '';
    const answers: TrpcAnswer<unknown>[] = [
      login,
      await mutate(server.url, 'auth.login', { email: user.email, password: 'definitely wrong' }),
      await mutate(server.url, 'auth.login', { email: 'not an email', password: 'x' }),
      await mutate(server.url, 'auth.register', { email: `reg-${user.email}`, password: 'a sturdy passphrase' }),
      await mutate(server.url, 'auth.refresh', { refreshToken: login.data?.refreshToken }),
      await mutate(server.url, 'auth.refresh', { refreshToken: 'A'.repeat(43) }),
      await query(server.url, 'auth.me', bearer(accessToken)),
      await query(server.url, 'auth.me'),
      await query(server.url, 'auth.sessions.list', bearer(accessToken)),
      await mutate(server.url, 'auth.requestPasswordReset', { email: user.email }),
      await mutate(server.url, 'auth.logout', undefined, bearer(accessToken)),
    ];
    for (const a of answers) expect(a.headers.get('cache-control')).toBe('no-store');
    expect(answers.map((a) => a.status)).toEqual([200, 401, 400, 200, 200, 401, 200, 401, 200, 200, 200]);

    const batch = await fetch(`${server.url}/trpc/auth.me,auth.sessions.list?batch=1`, { headers: bearer(accessToken) });
    expect(batch.headers.get('cache-control')).toBe('no-store');
  });
});

describe('where an access token is read from', () => {
  it('ignores an access token in the URL query: the call stays UNAUTHORIZED', async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    // The same token works from the Authorization header...
    expect((await query(server.url, 'auth.me', bearer(accessToken))).status).toBe(200);
    // ...and not from the URL, whatever the parameter is called.
    for (const param of ['access_token', 'accessToken', 'token', 'authorization']) {
      const a = await query(server.url, `auth.me?${param}=${encodeURIComponent(accessToken)}`);
      expect(a.status).toBe(401);
      expect(a.error?.data.code).toBe('UNAUTHORIZED');
    }
  });
});

describe('request logs', () => {
  it('puts the user id on the request line of an authenticated call', async () => {
    const { url } = loggedServer;
    const user = await createUser(logged);
    const { accessToken } = await signIn(logged, user);
    const me = await fetch(`${url}/trpc/auth.me`, { headers: { ...bearer(accessToken), 'x-request-id': 'authed-call-0001' } });
    expect(me.status).toBe(200);
    const line = await logs.waitFor((l) => l.msg === 'request' && l.reqId === 'authed-call-0001');
    expect(line).toMatchObject({ path: '/trpc/auth.me', status: 200, userId: user.id });

    const anonymous = await fetch(`${url}/trpc/auth.me`, { headers: { 'x-request-id': 'anonymous-call-0001' } });
    expect(anonymous.status).toBe(401);
    const anonymousLine = await logs.waitFor((l) => l.msg === 'request' && l.reqId === 'anonymous-call-0001');
    expect(anonymousLine).not.toHaveProperty('userId');
  });

  it('never writes an access token, a refresh token or a password, after a login, a refresh and a failed login', async () => {
    const { url } = loggedServer;
    const password = 'a sturdy and unique passphrase 7391';
    const wrongPassword = 'an attempted passphrase 5520';
    const user = await createUser(logged, { password });

    const login = await mutate<AuthBody>(url, 'auth.login', { email: user.email, password }, { 'x-request-id': 'log-login-0001' });
    const refreshed = await mutate<AuthBody>(
      url,
      'auth.refresh',
      { refreshToken: login.data?.refreshToken },
      { 'x-request-id': 'log-refresh-0001' },
    );
    const failed = await mutate(url, 'auth.login', { email: user.email, password: wrongPassword }, { 'x-request-id': 'log-failed-0001' });
    const me = await query(url, 'auth.me', { ...bearer(refreshed.data?.accessToken ?? ''), 'x-request-id': 'log-me-0001' });
    expect([login.status, refreshed.status, failed.status, me.status]).toEqual([200, 200, 401, 200]);
    for (const reqId of ['log-login-0001', 'log-refresh-0001', 'log-failed-0001', 'log-me-0001']) {
      await logs.waitFor((l) => l.msg === 'request' && l.reqId === reqId);
    }
    // The failed login was logged (so the search below looked at a log that saw it).
    await logs.waitFor((l) => l.audit === 'auth.login.failed' && l.userId === user.id);

    const secrets = {
      accessToken: login.data?.accessToken,
      refreshToken: login.data?.refreshToken,
      refreshedAccessToken: refreshed.data?.accessToken,
      refreshedRefreshToken: refreshed.data?.refreshToken,
      password,
      wrongPassword,
    };
    const text = logs.text();
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret, name).toEqual(expect.any(String));
      expect(text.includes(secret as string), `${name} appears in the logs`).toBe(false);
      // Not even its signature part or a long prefix.
      expect(text.includes((secret as string).slice(-20)), `the end of ${name} appears in the logs`).toBe(false);
    }
  });
});
