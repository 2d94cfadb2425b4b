/**
 * Sign-in with an OpenID Connect provider: authorization code flow with PKCE (S256), `state` and
 * `nonce` (OpenID Connect Core 1.0, RFC 7636), through `openid-client` (discovery, JWKS, ID token
 * validation: signature, issuer, audience, nonce, expiry). An identity is found by the provider's
 * issuer and `sub` only. An email the provider gives never links to an existing account: linking
 * needs that account's own sign-in (`startLink`/`finishLink`). A new account is made only for an
 * email the provider says it verified and no account uses.
 */
import { randomBytes } from 'node:crypto';
import type * as Oidc from 'openid-client';

/**
 * openid-client, loaded at the first provider sign-in: it and its dependencies hold ~9 MiB, which
 * an instance without providers (most of them) should not carry (the 200 MiB RSS budget).
 */
let openidClient: Promise<typeof Oidc> | undefined;
const loadOpenidClient = (): Promise<typeof Oidc> => {
  openidClient ??= import('openid-client');
  return openidClient;
};

import type { z } from 'zod';
import type { Config, OidcProviderConfig } from '../../../config.js';
import type { PrismaClient } from '../../../db/client.js';
import { AppError } from '../../../lib/errors.js';
import { hashPassword } from '../../../lib/password.js';
import type { AccessTokens } from '../access-tokens.js';
import { audit } from '../audit.js';
import { hashToken } from '../opaque-tokens.js';
import type { RateLimits } from '../rate-limits.js';
import { authResult } from '../session-lifecycle.js';
import { createSession, type SessionPolicy } from '../sessions.js';
import { openChallenge } from '../two-factor/challenges.js';
import type { LoginResult } from '../two-factor/schemas.js';
import type { AuthUser, ClientInfo } from '../types.js';
import type { finishInput } from './schemas.js';

/** How long a started sign-in waits for the provider's redirect. */
export const OIDC_LOGIN_TTL_SECONDS = 10 * 60;

export interface OidcServiceDeps {
  db: PrismaClient;
  config: Config;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  now: () => Date;
  /** The HTTP client toward providers (tests put a proxy in between); the global fetch by default. */
  fetch?: Oidc.CustomFetch;
}

const userSelect = { id: true, email: true, name: true, role: true, emailVerified: true, createdAt: true, active: true } as const;

const stateInvalid = () =>
  new AppError('UNAUTHORIZED', 'This sign-in link has expired or was already used. Start again.', { reason: 'OIDC_STATE_INVALID' });
const exchangeFailed = () =>
  new AppError('UNAUTHORIZED', 'The provider did not confirm this sign-in. Start again.', { reason: 'OIDC_EXCHANGE_FAILED' });

const isLoopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/**
 * What went wrong in a code exchange, for the log: the library's message, the provider's OAuth
 * error (`invalid_grant`), and the ID token claim that failed (`aud`, `nonce`). Never the code.
 */
function describeFailure(error: unknown): string {
  const parts: string[] = [];
  // openid-client wraps oauth4webapi's error, which holds the details: walk the causes.
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    parts.push(`${e.name}: ${e.message}`);
    const { error: oauthError } = e as { error?: unknown };
    if (typeof oauthError === 'string') parts.push(`provider error ${oauthError}`);
    const { claim } = (e.cause ?? {}) as { claim?: unknown };
    if (typeof claim === 'string') parts.push(`claim ${claim}`);
  }
  return parts.length > 0 ? parts.join('; ') : 'token exchange failed';
}

export type OidcService = ReturnType<typeof createOidcService>;

export function createOidcService(deps: OidcServiceDeps) {
  const { db, config, accessTokens, rateLimits, now } = deps;
  const policy: SessionPolicy = config.auth;
  const providers = new Map(config.accounts.oidcProviders.map((p) => [p.id, p]));
  const discovered = new Map<string, Promise<Oidc.Configuration>>();

  function providerOf(id: string): OidcProviderConfig {
    const provider = providers.get(id);
    if (!provider) throw new AppError('BAD_REQUEST', 'Invalid input.', { fieldErrors: { provider: ['is not a configured provider'] } });
    return provider;
  }

  /** The provider's discovery document and keys, read once (again after a failure). */
  function configurationOf(provider: OidcProviderConfig): Promise<Oidc.Configuration> {
    let configuration = discovered.get(provider.id);
    if (!configuration) {
      const issuer = new URL(provider.issuer);
      // Plain http only to a provider on this machine outside production (tests, local development).
      const insecure = issuer.protocol === 'http:' && isLoopback(issuer) && !config.isProduction;
      configuration = loadOpenidClient()
        .then((oidc) =>
          oidc.discovery(issuer, provider.clientId, provider.clientSecret, undefined, {
            ...(deps.fetch ? { [oidc.customFetch]: deps.fetch } : {}),
            ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
          }),
        )
        .catch((error: unknown) => {
          discovered.delete(provider.id);
          throw new AppError('SERVICE_UNAVAILABLE', `The sign-in provider ${provider.id} cannot be reached. Try again later.`, {
            cause: error,
            retryAfterSeconds: 30,
          });
        });
      discovered.set(provider.id, configuration);
    }
    return configuration;
  }

  async function start(providerId: string, linkUserId: string | undefined, client: ClientInfo) {
    const provider = providerOf(providerId);
    // Each start stores a row: counted with the sign-ins of the address.
    await rateLimits.consumeIp('login', client.ip);
    const configuration = await configurationOf(provider);
    const oidc = await loadOpenidClient();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const at = now();
    const expiresAt = new Date(at.getTime() + OIDC_LOGIN_TTL_SECONDS * 1000);
    await db.oidcLogin.deleteMany({ where: { expiresAt: { lt: at } } });
    await db.oidcLogin.create({
      data: {
        stateHash: hashToken(state),
        provider: provider.id,
        nonce,
        codeVerifier,
        redirectUri: config.accounts.oidcRedirectUri,
        linkUserId: linkUserId ?? null,
        createdAt: at,
        expiresAt,
      },
    });
    const authorizationUrl = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: config.accounts.oidcRedirectUri,
      scope: 'openid email profile',
      response_type: 'code',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    client.log.info({ provider: provider.id, link: linkUserId !== undefined }, 'oidc: sign-in started');
    return { authorizationUrl: authorizationUrl.href, expiresAt };
  }

  /**
   * Takes the started sign-in of `state` (once: a replayed redirect finds nothing), redeems the
   * code with the PKCE verifier and checks the ID token. Wrong states count as guesses per address.
   */
  async function redeem(input: z.infer<typeof finishInput>, client: ClientInfo) {
    await rateLimits.consumeIp('tokenFailures', client.ip);
    const at = now();
    const rows = await db.$queryRaw<
      { id: string; provider: string; nonce: string; code_verifier: string; redirect_uri: string; link_user_id: string | null }[]
    >`
      UPDATE oidc_logins SET consumed_at = ${at}
       WHERE state_hash = ${hashToken(input.state)} AND consumed_at IS NULL AND expires_at > ${at}
       RETURNING id, provider, nonce, code_verifier, redirect_uri, link_user_id::text`;
    const login = rows[0];
    if (!login) {
      audit(client.log, 'auth.oidc.failed', { ip: client.ip, reason: 'state unknown, used or expired' });
      throw stateInvalid();
    }
    await rateLimits.refundIp('tokenFailures', client.ip);
    const provider = providerOf(login.provider);
    const configuration = await configurationOf(provider);
    const oidc = await loadOpenidClient();
    const callback = new URL(login.redirect_uri);
    callback.searchParams.set('code', input.code);
    callback.searchParams.set('state', input.state);
    if (input.iss !== undefined) callback.searchParams.set('iss', input.iss);
    let claims: Oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, callback, {
        pkceCodeVerifier: login.code_verifier,
        expectedState: input.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
      // Providers that keep the email out of the ID token give it at their UserInfo endpoint,
      // checked to be about the same `sub`.
      if (claims?.sub && claims.email === undefined && configuration.serverMetadata().userinfo_endpoint) {
        const info = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub);
        claims = { ...claims, email: info.email, email_verified: info.email_verified, name: claims.name ?? info.name };
      }
    } catch (error) {
      // The library's message says what failed (audience, nonce, signature, invalid_grant): log it, never the code.
      audit(client.log, 'auth.oidc.failed', { ip: client.ip, provider: provider.id, reason: describeFailure(error) });
      throw exchangeFailed();
    }
    if (!claims?.sub) throw exchangeFailed();
    const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : undefined;
    return {
      provider,
      issuer: configuration.serverMetadata().issuer,
      subject: claims.sub,
      email,
      emailVerified: claims.email_verified === true,
      name: typeof claims.name === 'string' ? claims.name.slice(0, 100) : undefined,
      linkUserId: login.link_user_id,
    };
  }

  async function signIn(userId: string, client: ClientInfo, provider: string): Promise<LoginResult> {
    const outcome = await db.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId }, select: userSelect });
      if (!user?.active) return 'deactivated' as const;
      // An account with a second factor answers its challenge here too: the provider is one factor.
      const challenge = await openChallenge(tx, userId, now());
      if (challenge) return challenge;
      const issued = await createSession(tx, { userId, userAgent: client.userAgent, ip: client.ip, now: now(), policy, factors: ['oidc'] });
      const { active: _active, ...publicUser } = user;
      return { user: publicUser, issued };
    });
    if (outcome === 'deactivated') throw new AppError('FORBIDDEN', 'This account is deactivated.');
    if ('challenge' in outcome) {
      audit(client.log, 'auth.two_factor.challenged', { userId, ip: client.ip, provider });
      return outcome;
    }
    const { user, issued } = outcome;
    audit(client.log, 'auth.oidc.signed_in', { userId, sessionId: issued.sessionId, ip: client.ip, provider });
    return authResult(accessTokens, user, issued);
  }

  return {
    providers() {
      return config.accounts.oidcProviders.map((p) => ({ id: p.id, name: p.name ?? p.id }));
    },

    start(providerId: string, client: ClientInfo) {
      return start(providerId, undefined, client);
    },

    /** Starts linking a provider to the signed-in account: only `finishLink` of this account completes it. */
    startLink(user: AuthUser, providerId: string, client: ClientInfo) {
      return start(providerId, user.id, client);
    },

    async finish(input: z.infer<typeof finishInput>, client: ClientInfo): Promise<LoginResult> {
      const identity = await redeem(input, client);
      if (identity.linkUserId !== null) throw stateInvalid();
      const linked = await db.oidcIdentity.findUnique({
        where: { issuer_subject: { issuer: identity.issuer, subject: identity.subject } },
        select: { userId: true },
      });
      if (linked) return signIn(linked.userId, client, identity.provider.id);

      // Never by email: an account with this address is reached only through its own sign-in.
      const sameEmail = identity.email ? await db.user.findUnique({ where: { email: identity.email }, select: { id: true } }) : null;
      if (sameEmail) {
        audit(client.log, 'auth.oidc.failed', { ip: client.ip, provider: identity.provider.id, reason: 'email of an existing account' });
        throw new AppError(
          'CONFLICT',
          'An account with this email already exists. Sign in with its password, then link this provider from the account.',
          { reason: 'OIDC_ACCOUNT_EXISTS' },
        );
      }
      if (!identity.email || !identity.emailVerified) {
        audit(client.log, 'auth.oidc.failed', {
          ip: client.ip,
          provider: identity.provider.id,
          reason: 'email not verified by the provider',
        });
        throw new AppError('FORBIDDEN', 'The provider did not confirm an email address for this account, so Keel cannot create one.', {
          reason: 'OIDC_EMAIL_NOT_VERIFIED',
        });
      }
      // No password anyone knows: the owner can set one with a password reset.
      const passwordHash = await hashPassword(randomBytes(32).toString('base64url'), config.passwords);
      const created = await db.$transaction(async (tx) => {
        const user = await tx.user.create({
          data: { email: identity.email as string, name: identity.name ?? null, passwordHash, emailVerified: true },
          select: { id: true },
        });
        await tx.oidcIdentity.create({
          data: {
            userId: user.id,
            provider: identity.provider.id,
            issuer: identity.issuer,
            subject: identity.subject,
            email: identity.email ?? null,
          },
        });
        return user;
      });
      audit(client.log, 'auth.register', { userId: created.id, ip: client.ip, provider: identity.provider.id });
      return signIn(created.id, client, identity.provider.id);
    },

    async finishLink(user: AuthUser, input: z.infer<typeof finishInput>, client: ClientInfo) {
      const identity = await redeem(input, client);
      if (identity.linkUserId !== user.id) throw stateInvalid();
      const existing = await db.oidcIdentity.findUnique({
        where: { issuer_subject: { issuer: identity.issuer, subject: identity.subject } },
        select: { id: true, userId: true, provider: true, email: true, createdAt: true },
      });
      if (existing && existing.userId !== user.id)
        throw new AppError('CONFLICT', 'This provider account is already linked to another Keel account.', {
          reason: 'OIDC_IDENTITY_TAKEN',
        });
      const row =
        existing ??
        (await db.oidcIdentity.create({
          data: {
            userId: user.id,
            provider: identity.provider.id,
            issuer: identity.issuer,
            subject: identity.subject,
            email: identity.email ?? null,
          },
          select: { id: true, userId: true, provider: true, email: true, createdAt: true },
        }));
      audit(client.log, 'auth.oidc.linked', { userId: user.id, sessionId: user.sessionId, ip: client.ip, provider: identity.provider.id });
      const { userId: _userId, ...identityInfo } = row;
      return identityInfo;
    },

    async identities(user: AuthUser) {
      return db.oidcIdentity.findMany({
        where: { userId: user.id },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        select: { id: true, provider: true, email: true, createdAt: true },
      });
    },

    async unlink(user: AuthUser, id: string, client: ClientInfo): Promise<{ ok: true }> {
      // Ownership in the query: another user's identity is not found.
      const { count } = await db.oidcIdentity.deleteMany({ where: { id, userId: user.id } });
      if (count === 0) throw new AppError('NOT_FOUND', 'Linked provider not found.');
      audit(client.log, 'auth.oidc.unlinked', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
      return { ok: true };
    },
  };
}
