/**
 * The SDK's service client and verifier against a live Keel: a call with client credentials, one
 * token for concurrent calls, a typed token error; the verifier's typed principals, audience
 * check, and bounded refetching of the JWKS for unknown key ids.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeelServiceClient, isKeelError, KeelTokenError } from '../../client-sdk/src/index.js';
import { createKeelTokenVerifier, KeelTokenInvalidError } from '../../client-sdk/src/verifier.js';
import { signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { createServiceAccount } from '../support/service-accounts.js';

const db = await useTestDatabase();
const deps = db.deps();
const server = await startTestServer(deps);
const account = await createServiceAccount(deps, ['projects:read', 'users:read']);

/** A fetch that counts token requests. */
function countingFetch() {
  const counts = { token: 0 };
  const fetch = (url: string, init: RequestInit) => {
    if (url.endsWith('/oauth/token')) counts.token += 1;
    return globalThis.fetch(url, init);
  };
  return { counts, fetch };
}

describe('createKeelServiceClient with client credentials', () => {
  it('calls Keel as the service account, with one token for concurrent calls', async () => {
    const owner = await createUser(deps);
    await deps.services.projects.create({ id: owner.id, role: 'USER', sessionId: owner.id }, { name: 'Seen by a service' });
    const { counts, fetch } = countingFetch();
    const keel = createKeelServiceClient({ url: server.url, clientId: account.clientId, clientSecret: account.clientSecret, fetch });
    const [page, users] = await Promise.all([keel.projects.list.query({ ownerId: owner.id }), keel.users.list.query({})]);
    expect(page.items.map((p) => p.name)).toEqual(['Seen by a service']);
    expect(users.items.length).toBeGreaterThan(0);
    await keel.projects.list.query({ ownerId: owner.id });
    expect(counts.token).toBe(1);
  });

  it('asks only for the scopes given, and a call beyond them is FORBIDDEN', async () => {
    const keel = createKeelServiceClient({
      url: server.url,
      clientId: account.clientId,
      clientSecret: account.clientSecret,
      scopes: ['users:read'],
    });
    const error = await keel.projects.list.query({ ownerId: account.id }).catch((e: unknown) => e);
    expect(isKeelError(error, 'FORBIDDEN')).toBe(true);
  });

  it('retries once with a new token when Keel answers UNAUTHORIZED, then gives the answer', async () => {
    const { counts, fetch } = countingFetch();
    let spoil = true;
    // The first call carries a token Keel cannot verify (as after a key rotation): one retry, a new token.
    const keel = createKeelServiceClient({
      url: server.url,
      clientId: account.clientId,
      clientSecret: account.clientSecret,
      fetch: async (url, init) => {
        const headers = new Headers(init.headers);
        if (spoil && url.includes('/trpc/')) {
          spoil = false;
          headers.set('authorization', 'Bearer a.b.c');
        }
        return fetch(url, { ...init, headers });
      },
    });
    const users = await keel.users.list.query({});
    expect(users.items.length).toBeGreaterThan(0);
    expect(counts.token).toBe(2);
  });

  it('fails with KeelTokenError invalid_client for a wrong secret, without the secret in it', async () => {
    const wrong = `${account.clientSecret.slice(0, -2)}xx`;
    const keel = createKeelServiceClient({ url: server.url, clientId: account.clientId, clientSecret: wrong });
    const error = await keel.users.list.query({}).catch((e: unknown) => e);
    const cause = error instanceof Error && error.cause instanceof KeelTokenError ? error.cause : error;
    expect(cause).toBeInstanceOf(KeelTokenError);
    expect(cause).toMatchObject({ error: 'invalid_client', status: 401 });
    expect(String(error) + String(cause)).not.toContain(wrong);
  });
});

describe('createKeelTokenVerifier', () => {
  const verify = createKeelTokenVerifier({ issuer: 'keel', audience: 'keel-api', jwksUrl: `${server.url}/.well-known/jwks.json` });

  it('returns a typed user principal for a user token and a service principal for a service token', async () => {
    const user = await createUser(deps, { role: 'ADMIN' });
    const { accessToken, sessionId } = await signIn(deps, user);
    expect(await verify(accessToken)).toMatchObject({
      kind: 'user',
      userId: user.id,
      role: 'ADMIN',
      sessionId,
      expiresAt: expect.any(Date),
    });
    const { token } = await deps.services.serviceTokens.issue(account, ['users:read']);
    expect(await verify(token)).toMatchObject({
      kind: 'service',
      serviceAccountId: account.id,
      clientId: account.clientId,
      scopes: ['users:read'],
    });
  });

  it('refuses a token of another audience and a garbled one', async () => {
    const other = createKeelTokenVerifier({ issuer: 'keel', audience: 'billing-api', jwksUrl: `${server.url}/.well-known/jwks.json` });
    const { token } = await deps.services.serviceTokens.issue(account, ['users:read']);
    await expect(other(token)).rejects.toBeInstanceOf(KeelTokenInvalidError);
    await expect(verify('x.y.z')).rejects.toBeInstanceOf(KeelTokenInvalidError);
  });

  it('refetches the key set for an unknown kid at most once per cooldown', async () => {
    let fetches = 0;
    const jwks = createServer((_req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: db.keys.publicJwks }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    afterAll(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const bounded = createKeelTokenVerifier({ issuer: 'keel', audience: 'keel-api', jwksUrl: url, refetchCooldownSeconds: 3600 });
    const forged = await new SignJWT({ client_id: 'x', scope: '' })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'made-up-kid', typ: 'at+jwt' })
      .setIssuer('keel')
      .setAudience('keel-api')
      .setSubject(account.id)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(db.keys.signingKey);
    for (let i = 0; i < 20; i++) await expect(bounded(forged)).rejects.toBeInstanceOf(KeelTokenInvalidError);
    expect(fetches).toBe(1);
  });
});
