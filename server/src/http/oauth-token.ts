/**
 * POST /oauth/token: the OAuth 2.0 client-credentials grant (RFC 6749 section 4.4) for service
 * accounts. Clients authenticate with HTTP Basic (`client_secret_basic`) or with `client_id` and
 * `client_secret` in the form (`client_secret_post`), never both. Answers and errors are those of
 * RFC 6749 section 5, with `Cache-Control: no-store`; the token is an RFC 9068 JWT
 * (modules/service-accounts/tokens.ts). Every issue and refusal is an audit line.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../deps.js';
import { auditService } from '../modules/service-accounts/audit.js';
import { createTokenLimits, TokenRateLimited } from '../modules/service-accounts/limits.js';
import { isScope, type Scope } from '../modules/service-accounts/scopes.js';

export const OAUTH_TOKEN_PATH = '/oauth/token';

/** The error codes of RFC 6749 section 5.2 (and `temporarily_unavailable` for the rate limit). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'temporarily_unavailable'
  | 'server_error';

/** A form of a few short fields: anything longer is not a token request. */
const BODY_LIMIT = 4_096;
const MAX_CREDENTIAL_LENGTH = 256;
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;
const BASIC_CHALLENGE = 'Basic realm="keel", charset="UTF-8"';

class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

const invalidClient = (description: string) => new OAuthError('invalid_client', description, 401, { 'www-authenticate': BASIC_CHALLENGE });

/** A form parameter: absent, or present once (RFC 6749 section 3.2: none may be repeated). */
function single(form: URLSearchParams, name: string): string | undefined {
  const values = form.getAll(name);
  if (values.length > 1) throw new OAuthError('invalid_request', `The parameter ${name} is repeated.`);
  return values[0];
}

/** `application/x-www-form-urlencoded` decoding of a Basic credential half (RFC 6749 section 2.3.1). */
function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    throw invalidClient('The Basic credentials are not form-urlencoded.');
  }
}

interface Credentials {
  clientId: string;
  clientSecret: string;
}

/** The client's id and secret from exactly one of the two methods, or the RFC's error. */
function clientCredentials(authorization: string | undefined, form: URLSearchParams): Credentials {
  const postId = single(form, 'client_id');
  const postSecret = single(form, 'client_secret');
  let credentials: Credentials | undefined;
  if (authorization !== undefined) {
    const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(authorization.trim());
    if (!match?.[1]) throw invalidClient('The Authorization header is not HTTP Basic.');
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalidClient('The Basic credentials have no colon.');
    credentials = { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
    if (postSecret !== undefined)
      throw new OAuthError('invalid_request', 'Use one client authentication method: Basic or client_secret in the body, not both.');
    if (postId !== undefined && postId !== credentials.clientId)
      throw new OAuthError('invalid_request', 'client_id differs from the Basic credentials.');
  } else if (postId !== undefined || postSecret !== undefined) {
    if (postId === undefined || postSecret === undefined) throw invalidClient('client_secret_post needs both client_id and client_secret.');
    credentials = { clientId: postId, clientSecret: postSecret };
  }
  if (!credentials) throw invalidClient('Client authentication is required (HTTP Basic or client_id and client_secret).');
  if (
    credentials.clientId.length === 0 ||
    credentials.clientId.length > MAX_CREDENTIAL_LENGTH ||
    credentials.clientSecret.length > MAX_CREDENTIAL_LENGTH
  ) {
    throw invalidClient('Client authentication failed.');
  }
  return credentials;
}

/** The requested scopes (RFC 6749 section 3.3): space-delimited, each from the closed list. */
function requestedScopes(raw: string | undefined): Scope[] | undefined {
  if (raw === undefined) return undefined;
  const tokens = raw.split(' ').filter((t) => t.length > 0);
  if (tokens.length === 0)
    throw new OAuthError('invalid_scope', "The scope parameter is empty: omit it to get all of the account's scopes.");
  const unknown = tokens.filter((t) => !isScope(t));
  if (unknown.length > 0) throw new OAuthError('invalid_scope', `Unknown scope: ${unknown.join(' ').slice(0, 100)}.`);
  return [...new Set(tokens as Scope[])].sort();
}

export async function registerOAuthToken(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const limits = createTokenLimits(deps.database.pool, deps.config.rateLimit, deps.config.serviceAccounts);
  const { serviceAccounts, serviceTokens } = deps.services;

  await app.register(async (scope) => {
    // Only this route reads forms; a body of another type gets the RFC's invalid_request.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
    const send = (reply: FastifyReply, error: OAuthError) =>
      reply
        .status(error.status)
        .headers({ ...NO_STORE, ...error.headers })
        .send({ error: error.error, error_description: error.description });

    // Errors Fastify raises before the handler: an unsupported media type, a body too large, bad JSON.
    scope.setErrorHandler((error: { statusCode?: number }, req, reply) => {
      const status = error.statusCode ?? 500;
      if (status >= 500) {
        req.log.error({ err: error }, 'oauth token request failed');
        return send(reply, new OAuthError('server_error', `Internal server error. Reference: ${req.id}.`, 500));
      }
      const description =
        status === 415
          ? 'The body must be application/x-www-form-urlencoded.'
          : status === 413
            ? `The body is larger than ${BODY_LIMIT} bytes.`
            : 'The request is malformed.';
      return send(reply, new OAuthError('invalid_request', description, status === 413 ? 413 : 400));
    });

    scope.post(OAUTH_TOKEN_PATH, async (req: FastifyRequest, reply) => {
      const ip = req.ip;
      const log = req.log;
      let clientId: string | undefined;
      try {
        await limits.request(ip);
        if (typeof req.body !== 'string' || !/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
          throw new OAuthError('invalid_request', 'The body must be application/x-www-form-urlencoded.');
        }
        const form = new URLSearchParams(req.body);
        const grantType = single(form, 'grant_type');
        const scopeParam = single(form, 'scope');
        const credentials = clientCredentials(req.headers.authorization, form);
        clientId = credentials.clientId;
        if (grantType === undefined) throw new OAuthError('invalid_request', 'grant_type is missing.');
        // Authenticate before saying anything about the grant or the scopes.
        await limits.failure(ip);
        const client = await serviceAccounts.authenticateClient(credentials.clientId, credentials.clientSecret);
        if (!client) throw invalidClient('Client authentication failed.');
        await limits.refundFailure(ip);
        if (grantType !== 'client_credentials') {
          throw new OAuthError('unsupported_grant_type', 'Only grant_type=client_credentials is supported here.');
        }
        const requested = requestedScopes(scopeParam);
        if (requested?.some((s) => !client.scopes.includes(s))) {
          throw new OAuthError('invalid_scope', 'The requested scope exceeds the scopes of this service account.');
        }
        const granted = requested ?? client.scopes;
        await limits.issued(client.clientId);
        const { token, expiresIn } = await serviceTokens.issue(client, granted);
        auditService(log, 'service_account.token_issued', {
          serviceAccountId: client.id,
          clientId: client.clientId,
          scope: granted.join(' '),
          ip,
        });
        return reply.headers(NO_STORE).send({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: granted.join(' ') });
      } catch (error) {
        if (error instanceof TokenRateLimited) {
          auditService(log, 'service_account.token_refused', { reason: 'rate_limited', clientId, ip });
          return send(
            reply,
            new OAuthError('temporarily_unavailable', `Too many token requests. Retry in ${error.retryAfterSeconds} s.`, 429, {
              'retry-after': String(error.retryAfterSeconds),
            }),
          );
        }
        if (error instanceof OAuthError) {
          auditService(log, 'service_account.token_refused', { reason: error.error, clientId: clientId?.slice(0, 64), ip });
          return send(reply, error);
        }
        throw error;
      }
    });
  });
}
