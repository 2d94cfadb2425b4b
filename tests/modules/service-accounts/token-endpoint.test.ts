/**
 * POST /oauth/token as a client sees it (RFC 6749 sections 4.4 and 5), and the service tokens it
 * issues as /trpc and /api see them: scopes, insufficient_scope, audiences, revocation.
 */
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAppDeps } from '../../../server/src/deps.js';
import { createLogger } from '../../../server/src/logger.js';
import { movableClock } from '../../support/clock.js';
import { testConfig, useTestDatabase } from '../../support/database.js';
import { createUser } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { captureLogs } from '../../support/log-capture.js';
import { createServiceAccount } from '../../support/service-accounts.js';

const db = await useTestDatabase();
const clock = movableClock();
const logs = captureLogs();
const config = testConfig(db.url, { LOG_LEVEL: 'info' });
const deps = createAppDeps({ config, database: db.database, logger: createLogger(config, logs.stream), keys: db.keys, now: clock.now });
const server = await startTestServer(deps);

const form = (fields: Record<string, string> | [string, string][]) => new URLSearchParams(fields).toString();
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function tokenRequest(body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

const account = await createServiceAccount(deps, ['projects:read', 'users:read'], 'reporting');

describe('POST /oauth/token: the client-credentials grant', () => {
  it("issues an RFC 9068 token to client_secret_basic, with no-store, the account's scopes and 5 minutes", async () => {
    const answer = await tokenRequest(form({ grant_type: 'client_credentials' }), {
      authorization: basic(account.clientId, account.clientSecret),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('pragma')).toBe('no-cache');
    expect(answer.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'projects:read users:read',
    });
    const token = answer.body.access_token as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', kid: db.keys.kid, alg: 'EdDSA' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: account.id,
      client_id: account.clientId,
      scope: 'projects:read users:read',
      iss: 'keel',
      aud: 'keel-api',
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(300);
    expect(claims).not.toHaveProperty('sid');
    expect(claims).not.toHaveProperty('role');
  });

  it('issues to client_secret_post, narrowed to a requested subset of the scopes, and records lastUsedAt', async () => {
    const answer = await tokenRequest(
      form({ grant_type: 'client_credentials', client_id: account.clientId, client_secret: account.clientSecret, scope: 'users:read' }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.scope).toBe('users:read');
    expect((await deps.services.serviceAccounts.get(account.id)).lastUsedAt).toBeInstanceOf(Date);
    await logs.waitFor((l) => l.audit === 'service_account.token_issued' && l.clientId === account.clientId);
  });

  it.each([
    ['a wrong secret', () => form({ grant_type: 'client_credentials' }), () => basic(account.clientId, `${account.clientSecret}x`)],
    ['an unknown client id', () => form({ grant_type: 'client_credentials' }), () => basic('keel_ci_nobody', account.clientSecret)],
    ['no client authentication', () => form({ grant_type: 'client_credentials' }), () => undefined],
    ['client_id without client_secret', () => form({ grant_type: 'client_credentials', client_id: account.clientId }), () => undefined],
    ['a Bearer header instead of Basic', () => form({ grant_type: 'client_credentials' }), () => 'Bearer abc.def.ghi'],
  ])('answers %s with invalid_client, 401 and WWW-Authenticate: Basic', async (_name, body, authorization) => {
    const auth = authorization();
    const answer = await tokenRequest(body(), auth ? { authorization: auth } : {});
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Basic realm="keel"/);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
  });

  it.each([
    [
      'a repeated grant_type',
      () =>
        form([
          ['grant_type', 'client_credentials'],
          ['grant_type', 'client_credentials'],
        ]),
      true,
    ],
    [
      'a repeated scope',
      () =>
        form([
          ['grant_type', 'client_credentials'],
          ['scope', 'users:read'],
          ['scope', 'users:read'],
        ]),
      true,
    ],
    ['a missing grant_type', () => form({}), true],
    [
      'both Basic and client_secret in the body',
      () => form({ grant_type: 'client_credentials', client_secret: account.clientSecret }),
      true,
    ],
  ])('answers %s with invalid_request and 400', async (_name, body, withBasic) => {
    const answer = await tokenRequest(body(), withBasic ? { authorization: basic(account.clientId, account.clientSecret) } : {});
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_request' });
    expect(answer.headers.get('cache-control')).toBe('no-store');
  });

  it('answers a JSON body with invalid_request, never a 500', async () => {
    const response = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic(account.clientId, account.clientSecret) },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('answers another grant type with unsupported_grant_type', async () => {
    const answer = await tokenRequest(form({ grant_type: 'password', username: 'a', password: 'b' }), {
      authorization: basic(account.clientId, account.clientSecret),
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it.each([
    ["a scope beyond the account's (escalation)", 'projects:read projects:write'],
    ['a scope outside the closed list', 'admin'],
    ['an empty scope', ''],
  ])('answers %s with invalid_scope', async (_name, scope) => {
    const answer = await tokenRequest(form({ grant_type: 'client_credentials', scope }), {
      authorization: basic(account.clientId, account.clientSecret),
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_scope' });
  });
});

async function tokenFor(clientId: string, clientSecret: string, scope?: string): Promise<string> {
  const answer = await tokenRequest(form({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }), {
    authorization: basic(clientId, clientSecret),
  });
  expect(answer.status).toBe(200);
  return answer.body.access_token as string;
}

const trpcGet = async (path: string, input: unknown, token: string) => {
  const response = await fetch(`${server.url}/trpc/${path}?input=${encodeURIComponent(JSON.stringify({ json: input }))}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as { result?: { data: { json: unknown } }; error?: { json: { data: { code: string } } } },
  };
};

describe('service tokens at /trpc and /api', () => {
  it("projects:read reads any user's projects by owner, and a service must name the owner", async () => {
    const owner = await createUser(deps);
    const asOwner = { id: owner.id, role: 'USER' as const, sessionId: owner.id };
    const project = await deps.services.projects.create(asOwner, { name: 'Read by a service' });
    const token = await tokenFor(account.clientId, account.clientSecret, 'projects:read');
    const list = await trpcGet('projects.list', { ownerId: owner.id }, token);
    expect(list.status).toBe(200);
    expect(list.body.result?.data.json).toMatchObject({ items: [{ id: project.id, name: 'Read by a service' }] });
    const rest = await fetch(`${server.url}/api/projects/${project.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(rest.status).toBe(200);
    const unnamed = await trpcGet('projects.list', {}, token);
    expect(unnamed.status).toBe(400);
  });

  it('without the scope: 403 with WWW-Authenticate insufficient_scope naming it (RFC 6750 section 3.1), on /trpc and /api', async () => {
    const token = await tokenFor(account.clientId, account.clientSecret, 'users:read');
    const trpc = await trpcGet('projects.list', { ownerId: account.id }, token);
    expect(trpc.status).toBe(403);
    expect(trpc.headers.get('www-authenticate')).toBe('Bearer realm="keel", error="insufficient_scope", scope="projects:read"');
    const rest = await fetch(`${server.url}/api/projects?ownerId=${account.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(rest.status).toBe(403);
    expect(rest.headers.get('www-authenticate')).toBe('Bearer realm="keel", error="insufficient_scope", scope="projects:read"');
    const closed = await trpcGet('auth.me', undefined, token);
    expect(closed.status).toBe(403);
    expect(closed.headers.get('www-authenticate')).toBe('Bearer realm="keel", error="insufficient_scope"');
  });

  it('refuses a token of another audience, though signed by the same key', async () => {
    const forged = await new SignJWT({ client_id: account.clientId, scope: 'projects:read' })
      .setProtectedHeader({ alg: db.keys.algorithm, kid: db.keys.kid, typ: 'at+jwt' })
      .setIssuer('keel')
      .setAudience('another-api')
      .setSubject(account.id)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('x')
      .sign(db.keys.signingKey);
    const answer = await trpcGet('projects.list', { ownerId: account.id }, forged);
    expect(answer.status).toBe(401);
  });

  it('a revoked account gets no token, and its issued tokens live until their expiry (not strict)', async () => {
    const doomed = await createServiceAccount(deps, ['users:read']);
    const token = await tokenFor(doomed.clientId, doomed.clientSecret);
    const admin = await createUser(deps, { role: 'ADMIN' });
    await deps.services.serviceAccounts.revoke(doomed.id, { userId: admin.id, ip: undefined, log: deps.logger });
    const refused = await tokenRequest(form({ grant_type: 'client_credentials' }), {
      authorization: basic(doomed.clientId, doomed.clientSecret),
    });
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: 'invalid_client' });
    expect((await trpcGet('users.list', {}, token)).status).toBe(200);
    clock.advance(301 + 60);
    try {
      expect((await trpcGet('users.list', {}, token)).status).toBe(401);
    } finally {
      clock.advance(-(301 + 60));
    }
  });
});

describe('strict mode (AUTH_STRICT_SESSIONS=true)', () => {
  it("stops a revoked account's tokens at the next call", async () => {
    const strictConfig = testConfig(db.url, { AUTH_STRICT_SESSIONS: 'true' });
    const strict = createAppDeps({ config: strictConfig, database: db.database, logger: createLogger(strictConfig), keys: db.keys });
    const strictServer = await startTestServer(strict);
    const doomed = await createServiceAccount(strict, ['users:read']);
    const { token } = await strict.services.serviceTokens.issue(doomed, ['users:read']);
    const call = () => fetch(`${strictServer.url}/trpc/users.list`, { headers: { authorization: `Bearer ${token}` } });
    expect((await call()).status).toBe(200);
    const admin = await createUser(strict, { role: 'ADMIN' });
    await strict.services.serviceAccounts.revoke(doomed.id, { userId: admin.id, ip: undefined, log: strict.logger });
    expect((await call()).status).toBe(401);
  });
});

describe('limits', () => {
  it('refuses token requests past the per-address budget with 429 and Retry-After', async () => {
    const limitedConfig = testConfig(db.url, { RATE_LIMIT_OAUTH_PER_IP: '3', TRUST_PROXY: 'loopback' });
    const limited = createAppDeps({ config: limitedConfig, database: db.database, logger: createLogger(limitedConfig), keys: db.keys });
    const limitedServer = await startTestServer(limited);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${limitedServer.url}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(account.clientId, account.clientSecret),
          // Its own address: the budgets live in the shared table, which other tests fill too.
          'x-forwarded-for': '198.51.100.7',
        },
        body: form({ grant_type: 'client_credentials' }),
      });
      statuses.push(response.status);
      if (response.status === 429) {
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' });
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('refuses tokens past the per-client budget, whatever the address', async () => {
    const limitedConfig = testConfig(db.url, { RATE_LIMIT_OAUTH_PER_CLIENT: '2' });
    const limited = createAppDeps({ config: limitedConfig, database: db.database, logger: createLogger(limitedConfig), keys: db.keys });
    const limitedServer = await startTestServer(limited);
    const busy = await createServiceAccount(limited, ['users:read']);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${limitedServer.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(busy.clientId, busy.clientSecret) },
        body: form({ grant_type: 'client_credentials' }),
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('never writes a client secret or an access token into the logs', async () => {
    await tokenFor(account.clientId, account.clientSecret);
    expect(logs.text()).not.toContain(account.clientSecret);
    expect(logs.text()).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
  });
});
