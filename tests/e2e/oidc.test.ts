/**
 * Sign-in with an OpenID Connect provider, end to end against a real, certified provider: the npm
 * `oidc-provider` package, run by this test on a loopback port. The test plays the browser (it
 * follows the redirects with a cookie jar) and the provider's login page (it finishes the
 * interaction as the account a test chose). Keel discovers the provider, redeems codes with PKCE,
 * and checks the ID token against the provider's JWKS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, describe, expect, it } from 'vitest';
import type { OidcServiceDeps } from '../../server/src/modules/auth/oidc/service.js';
import { callerWith } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { withCapturedLogs } from '../support/log-capture.js';

const REDIRECT_URI = 'http://localhost:5173/auth/oidc/callback';

/** The provider's accounts: sub -> claims. */
const accounts = new Map<string, { email: string; email_verified: boolean; name: string }>();
/** Whom the provider's "login page" signs in next. */
let nextAccount = '';

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const opKey: JWK = { ...(await exportJWK(privateKey)), kid: 'op-key', alg: 'RS256', use: 'sig' };

const httpServer: Server = createServer();
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'keel',
      client_secret: 'keel-secret-keel-secret',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      client_id: 'other',
      client_secret: 'other-secret-other-secret',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [opKey] },
  cookies: { keys: ['a test cookie key that is long enough'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // Consent is not what this test is about: every client gets the scopes it asks for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client?.clientId, accountId: ctx.oidc.session?.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, sub) {
    const account = accounts.get(sub);
    return account ? { accountId: sub, claims: () => ({ sub, ...account }) } : undefined;
  },
});
const opHandler = provider.callback();
httpServer.on('request', (req, res) => {
  if (req.url?.startsWith('/interaction/')) {
    // The provider's login page: the person signs in as `nextAccount`.
    provider
      .interactionFinished(req, res, { login: { accountId: nextAccount } }, { mergeWithLastSubmission: false })
      .catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    return;
  }
  opHandler(req, res);
});
afterAll(() => new Promise<void>((resolve) => httpServer.close(() => resolve())));

/** When set, the token endpoint's ID token is replaced by one the provider's key signs for this audience. */
let forgeAudience: string | undefined;
const tamperingFetch: NonNullable<OidcServiceDeps['fetch']> = async (url, options) => {
  const response = await fetch(url, options as RequestInit);
  if (!forgeAudience || !url.endsWith('/token') || !response.ok) return response;
  const body = (await response.json()) as { id_token: string };
  const claims = decodeJwt(body.id_token);
  body.id_token = await new SignJWT({ ...claims, aud: forgeAudience }).setProtectedHeader({ alg: 'RS256', kid: 'op-key' }).sign(privateKey);
  return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
};

const db = await useTestDatabase();
const { deps, logs } = withCapturedLogs(
  db.deps({
    config: {
      OIDC_PROVIDERS: JSON.stringify([
        { id: 'test-op', name: 'Test OP', issuer, clientId: 'keel', clientSecret: 'keel-secret-keel-secret' },
      ]),
      OIDC_REDIRECT_URI: REDIRECT_URI,
      TWO_FACTOR_ENCRYPTION_KEYS: Buffer.alloc(32, 4).toString('base64'),
      LOG_LEVEL: 'info',
    },
    oidcFetch: tamperingFetch,
  }),
);
/** Why the last refused sign-in was refused, as the audit line says. */
const lastFailure = () =>
  logs
    .lines()
    .filter((l) => l.audit === 'auth.oidc.failed')
    .at(-1)?.reason;

/**
 * The browser: follows the provider's redirects (with its cookies) from `authorizationUrl` until
 * one leaves the provider, and returns what it carries to the redirect URI.
 */
async function browse(authorizationUrl: string): Promise<{ code: string; state: string; iss: string | undefined }> {
  const jar = new Map<string, string>();
  let url = authorizationUrl;
  for (let hop = 0; hop < 10; hop++) {
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const location = response.headers.get('location');
    if (!location) throw new Error(`the provider stopped at ${url} with ${response.status}: ${await response.text()}`);
    const next = new URL(location, url);
    if (next.href.startsWith(REDIRECT_URI)) {
      const error = next.searchParams.get('error');
      if (error) throw new Error(`the provider answered ${error}: ${next.searchParams.get('error_description')}`);
      return {
        code: next.searchParams.get('code') ?? '',
        state: next.searchParams.get('state') ?? '',
        iss: next.searchParams.get('iss') ?? undefined,
      };
    }
    url = next.href;
  }
  throw new Error('too many redirects');
}

/** A sign-in at the provider as `sub`, up to the redirect back (not yet given to Keel). */
async function authorizeAs(sub: string) {
  nextAccount = sub;
  const { authorizationUrl } = await callerWith(deps).auth.oidc.start({ provider: 'test-op' });
  return browse(authorizationUrl);
}

/** How a call failed: its tRPC code and the domain reason. */
async function trpcErrorOf(promise: Promise<unknown>): Promise<{ code: string; cause?: unknown }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as { code: string; cause?: unknown },
  );
  if (!error) throw new Error('expected the call to fail');
  return error;
}
const reasonOf = (error: { cause?: unknown }) => (error.cause as { reason?: string } | undefined)?.reason;

describe('sign in with an OpenID Connect provider', () => {
  it('starts with PKCE (S256), state and nonce in the authorization URL', async () => {
    const { authorizationUrl } = await callerWith(deps).auth.oidc.start({ provider: 'test-op' });
    const url = new URL(authorizationUrl);
    expect(url.origin).toBe(issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'keel',
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid email profile',
      code_challenge_method: 'S256',
      state: expect.stringMatching(/.{20,}/),
      nonce: expect.stringMatching(/.{20,}/),
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(await callerWith(deps).auth.oidc.providers()).toEqual([{ id: 'test-op', name: 'Test OP' }]);
  });

  it('creates an account for a new verified email, then finds it again by sub, whatever the email says', async () => {
    accounts.set('alice-sub', { email: 'alice@op.test', email_verified: true, name: 'Alice' });
    const first = await callerWith(deps).auth.oidc.finish(await authorizeAs('alice-sub'));
    if (!('accessToken' in first)) throw new Error('expected tokens');
    expect(first.user).toMatchObject({ email: 'alice@op.test', name: 'Alice', emailVerified: true });
    const session = await deps.database.prisma.session.findFirstOrThrow({ where: { userId: first.user.id } });
    expect(session.factors).toEqual(['oidc']);
    const identity = await deps.database.prisma.oidcIdentity.findFirstOrThrow({ where: { userId: first.user.id } });
    expect(identity).toMatchObject({ issuer, subject: 'alice-sub', provider: 'test-op' });
    const exported = await callerWith(deps, { authorization: `Bearer ${first.accessToken}` }).auth.exportData();
    expect(exported.identities).toEqual([{ provider: 'test-op', email: 'alice@op.test', createdAt: expect.any(Date) }]);

    // The provider's email changes: the account is still found by its sub.
    accounts.set('alice-sub', { email: 'alice.new@op.test', email_verified: true, name: 'Alice' });
    const again = await callerWith(deps).auth.oidc.finish(await authorizeAs('alice-sub'));
    expect('accessToken' in again && again.user.id).toBe(first.user.id);
  });

  it('refuses a wrong state, and a replayed redirect (its code a second time)', async () => {
    accounts.set('bob-sub', { email: 'bob@op.test', email_verified: true, name: 'Bob' });
    const redirect = await authorizeAs('bob-sub');
    const wrong = await trpcErrorOf(callerWith(deps).auth.oidc.finish({ ...redirect, state: 'not-the-state-we-sent-at-all' }));
    expect(wrong.code).toBe('UNAUTHORIZED');
    expect(reasonOf(wrong)).toBe('OIDC_STATE_INVALID');
    const signed = await callerWith(deps).auth.oidc.finish(redirect);
    expect('accessToken' in signed).toBe(true);
    const replay = await trpcErrorOf(callerWith(deps).auth.oidc.finish(redirect));
    expect(replay.code).toBe('UNAUTHORIZED');
    expect(reasonOf(replay)).toBe('OIDC_STATE_INVALID');
  });

  it('refuses a code issued to another client (redeemed with our credentials, the provider says no)', async () => {
    accounts.set('carol-sub', { email: 'carol@op.test', email_verified: true, name: 'Carol' });
    // A real sign-in of ours, for its state; the code comes from a flow of client `other`.
    const ours = await authorizeAs('carol-sub');
    const otherUrl = new URL(`${issuer}/auth`);
    for (const [k, v] of Object.entries({
      client_id: 'other',
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid email',
      state: 'other-state-value-123',
      nonce: 'other-nonce-value-123',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }))
      otherUrl.searchParams.set(k, v);
    const theirs = await browse(otherUrl.href);
    const error = await trpcErrorOf(callerWith(deps).auth.oidc.finish({ ...ours, code: theirs.code }));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(reasonOf(error)).toBe('OIDC_EXCHANGE_FAILED');
    expect(lastFailure()).toMatch(/provider error invalid_grant/);
    expect(await deps.database.prisma.user.count({ where: { email: 'carol@op.test' } })).toBe(0);
  });

  it('refuses an ID token for another audience, though the provider signed it', async () => {
    accounts.set('dave-sub', { email: 'dave@op.test', email_verified: true, name: 'Dave' });
    const redirect = await authorizeAs('dave-sub');
    forgeAudience = 'another-client';
    try {
      const error = await trpcErrorOf(callerWith(deps).auth.oidc.finish(redirect));
      expect(error.code).toBe('UNAUTHORIZED');
      expect(reasonOf(error)).toBe('OIDC_EXCHANGE_FAILED');
      expect(lastFailure()).toMatch(/claim aud/);
    } finally {
      forgeAudience = undefined;
    }
    expect(await deps.database.prisma.user.count({ where: { email: 'dave@op.test' } })).toBe(0);
  });

  it('never links by email: an unverified (or verified) email of an existing account is refused, and nothing is linked', async () => {
    const victim = await createUser(deps, { email: 'victim@example.test' });
    accounts.set('mallory-sub', { email: 'victim@example.test', email_verified: false, name: 'Mallory' });
    const unverified = await trpcErrorOf(callerWith(deps).auth.oidc.finish(await authorizeAs('mallory-sub')));
    expect(unverified.code).toBe('CONFLICT');
    expect(reasonOf(unverified)).toBe('OIDC_ACCOUNT_EXISTS');
    accounts.set('mallory-sub', { email: 'victim@example.test', email_verified: true, name: 'Mallory' });
    const verified = await trpcErrorOf(callerWith(deps).auth.oidc.finish(await authorizeAs('mallory-sub')));
    expect(reasonOf(verified)).toBe('OIDC_ACCOUNT_EXISTS');
    expect(await deps.database.prisma.oidcIdentity.count({ where: { userId: victim.id } })).toBe(0);
    expect(await deps.database.prisma.session.count({ where: { userId: victim.id } })).toBe(0);
  });

  it('creates no account for an email the provider did not verify', async () => {
    accounts.set('erin-sub', { email: 'erin@op.test', email_verified: false, name: 'Erin' });
    const error = await trpcErrorOf(callerWith(deps).auth.oidc.finish(await authorizeAs('erin-sub')));
    expect(error.code).toBe('FORBIDDEN');
    expect(reasonOf(error)).toBe('OIDC_EMAIL_NOT_VERIFIED');
    expect(await deps.database.prisma.user.count({ where: { email: 'erin@op.test' } })).toBe(0);
  });

  it('links a provider to an existing account only through that account’s sign-in, then signs it in by sub', async () => {
    const owner = await createUser(deps, { email: 'owner@example.test' });
    const login = await callerWith(deps).auth.login({ email: owner.email, password: KNOWN_PASSWORD });
    if (!('accessToken' in login)) throw new Error('expected tokens');
    const asOwner = callerWith(deps, { authorization: `Bearer ${login.accessToken}` });
    accounts.set('owner-sub', { email: 'someone-else@op.test', email_verified: false, name: 'Owner' });
    nextAccount = 'owner-sub';
    const { authorizationUrl } = await asOwner.auth.oidc.startLink({ provider: 'test-op' });
    const redirect = await browse(authorizationUrl);
    // The link's redirect cannot be used to sign in (it is bound to the signed-in account).
    const stolen = await trpcErrorOf(callerWith(deps).auth.oidc.finish(redirect));
    expect(reasonOf(stolen)).toBe('OIDC_STATE_INVALID');

    const { authorizationUrl: second } = await asOwner.auth.oidc.startLink({ provider: 'test-op' });
    const linked = await asOwner.auth.oidc.finishLink(await browse(second));
    expect(linked).toMatchObject({ provider: 'test-op' });
    expect(await asOwner.auth.oidc.identities()).toHaveLength(1);
    const viaProvider = await callerWith(deps).auth.oidc.finish(await authorizeAs('owner-sub'));
    expect('accessToken' in viaProvider && viaProvider.user.id).toBe(owner.id);

    // Another account cannot take the same provider account.
    const other = await createUser(deps);
    const otherLogin = await callerWith(deps).auth.login({ email: other.email, password: KNOWN_PASSWORD });
    if (!('accessToken' in otherLogin)) throw new Error('expected tokens');
    const asOther = callerWith(deps, { authorization: `Bearer ${otherLogin.accessToken}` });
    const { authorizationUrl: third } = await asOther.auth.oidc.startLink({ provider: 'test-op' });
    const taken = await trpcErrorOf(asOther.auth.oidc.finishLink(await browse(third)));
    expect(reasonOf(taken)).toBe('OIDC_IDENTITY_TAKEN');

    await asOwner.auth.oidc.unlink({ id: linked.id });
    expect(await asOwner.auth.oidc.identities()).toEqual([]);
  });

  it('asks an account with two-factor sign-in for its second factor after the provider', async () => {
    accounts.set('frank-sub', { email: 'frank@op.test', email_verified: true, name: 'Frank' });
    const first = await callerWith(deps).auth.oidc.finish(await authorizeAs('frank-sub'));
    if (!('accessToken' in first)) throw new Error('expected tokens');
    await deps.database.prisma.twoFactor.create({
      data: { userId: first.user.id, secretCiphertext: 'v1.unused.unused.unused.unused', enabledAt: new Date() },
    });
    const second = await callerWith(deps).auth.oidc.finish(await authorizeAs('frank-sub'));
    expect(second).toMatchObject({ status: 'twoFactorRequired' });
  });

  it('works over REST: POST /api/auth/oidc/start and /api/auth/oidc/finish (a wrong state is 401 with its reason)', async () => {
    const server = await startTestServer(deps);
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${server.url}/api${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    accounts.set('rest-sub', { email: 'rest@op.test', email_verified: true, name: 'Rest' });
    nextAccount = 'rest-sub';
    const started = await post('/auth/oidc/start', { provider: 'test-op' });
    expect(started.status).toBe(200);
    const redirect = await browse(started.json.authorizationUrl as string);
    const wrong = await post('/auth/oidc/finish', { ...redirect, state: 'a-state-keel-never-issued' });
    expect(wrong).toMatchObject({ status: 401, json: { reason: 'OIDC_STATE_INVALID' } });
    const finished = await post('/auth/oidc/finish', redirect);
    expect(finished.status).toBe(200);
    expect(finished.json).toMatchObject({ user: { email: 'rest@op.test' }, accessToken: expect.any(String) });
  });
});
