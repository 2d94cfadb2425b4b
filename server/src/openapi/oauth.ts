/**
 * What the OpenAPI document says about service identities: the OAuth 2.0 client-credentials flow
 * (its scopes, from the closed list), the token endpoint itself (outside /api, with the bodies of
 * RFC 6749 section 5), and the scope each operation needs from a service token.
 */
import type { OpenAPIObject } from 'trpc-to-openapi';
import { OAUTH_TOKEN_PATH } from '../http/oauth-token.js';
import { SCOPES, type Scope } from '../modules/service-accounts/scopes.js';

export const OAUTH_SCHEME = 'oauth2';

const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  'projects:read': "Read any user's projects and their tasks (a service names the owner when listing).",
  'projects:write': 'Rename, archive and delete any project (a service creates none: it owns nothing).',
  'users:read': 'Read the user directory (what admins see at GET /users).',
};

const oauthError = (codes: string[]) => ({
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string', enum: codes },
    error_description: { type: 'string' },
  },
});

const NO_STORE_HEADER = { 'Cache-Control': { description: 'Always `no-store`.', schema: { type: 'string' } } };

const tokenOperation = {
  summary: 'Get an access token for a service account (OAuth 2.0 client credentials)',
  description:
    'RFC 6749 section 4.4. Authenticate the client with HTTP Basic (`client_secret_basic`: form-urlencoded id and secret) or with `client_id` and `client_secret` in the form (`client_secret_post`), never both. The token is a JWT of RFC 9068 (`typ: at+jwt`), signed by the keys at `/.well-known/jwks.json`; send it as `Authorization: Bearer <token>`.',
  tags: ['oauth'],
  security: [{}],
  requestBody: {
    required: true,
    content: {
      'application/x-www-form-urlencoded': {
        schema: {
          type: 'object',
          required: ['grant_type'],
          properties: {
            grant_type: { type: 'string', enum: ['client_credentials'] },
            scope: {
              type: 'string',
              description: `Space-separated subset of the account's scopes (${SCOPES.join(', ')}); all of them when absent.`,
            },
            client_id: { type: 'string', description: 'client_secret_post only.' },
            client_secret: { type: 'string', description: 'client_secret_post only.' },
          },
        },
      },
    },
  },
  responses: {
    '200': {
      description: 'The token.',
      headers: NO_STORE_HEADER,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            required: ['access_token', 'token_type', 'expires_in', 'scope'],
            properties: {
              access_token: { type: 'string' },
              token_type: { type: 'string', enum: ['Bearer'] },
              expires_in: { type: 'integer', description: 'Seconds (SERVICE_TOKEN_TTL_SECONDS, 300 by default).' },
              scope: { type: 'string' },
            },
          },
        },
      },
    },
    '400': {
      description:
        'A malformed request (missing or repeated parameters, two authentication methods), another grant type, or scopes beyond the account.',
      headers: NO_STORE_HEADER,
      content: { 'application/json': { schema: oauthError(['invalid_request', 'unsupported_grant_type', 'invalid_scope']) } },
    },
    '401': {
      description: 'Client authentication failed: unknown client, wrong or expired secret, revoked account.',
      headers: {
        ...NO_STORE_HEADER,
        'WWW-Authenticate': { description: '`Basic realm="keel", charset="UTF-8"`', schema: { type: 'string' } },
      },
      content: { 'application/json': { schema: oauthError(['invalid_client']) } },
    },
    '429': {
      description: 'Too many token requests from this address or for this client.',
      headers: { ...NO_STORE_HEADER, 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: oauthError(['temporarily_unavailable']) } },
    },
  },
};

/** Adds the flow, the token endpoint and each scoped operation's alternative (a service token with its scope). */
export function addServiceAuth(
  document: OpenAPIObject,
  scoped: { method: string; path: string; scope: Scope }[],
  bearerScheme: string,
): void {
  document.components ??= {};
  const components = document.components;
  components.securitySchemes = {
    ...components.securitySchemes,
    [OAUTH_SCHEME]: {
      type: 'oauth2',
      description: 'Service accounts (admins create them under /service-accounts): an access token from the client-credentials grant.',
      flows: { clientCredentials: { tokenUrl: OAUTH_TOKEN_PATH, scopes: SCOPE_DESCRIPTIONS } },
    },
  };
  for (const { method, path, scope } of scoped) {
    const operation = (document.paths?.[path] as Record<string, { security?: unknown[] }> | undefined)?.[method];
    if (operation) operation.security = [{ [bearerScheme]: [] }, { [OAUTH_SCHEME]: [scope] }];
  }
  // The token endpoint is not under /api: its own server entry points at the root.
  // Plain JSON literals: typed once here rather than restating OpenAPI's schema types in each.
  const item = { servers: [{ url: '/' }], post: tokenOperation } as unknown as NonNullable<OpenAPIObject['paths']>[string];
  document.paths = { ...document.paths, [OAUTH_TOKEN_PATH]: item };
}
