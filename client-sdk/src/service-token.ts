/**
 * A service account's access token, from Keel's `POST /oauth/token` (OAuth 2.0 client
 * credentials): fetched on first use, kept in memory, renewed before it expires, one request at a
 * time however many calls need it. The expiry is the server's `expires_in` counted from when the
 * answer arrived, so a clock that disagrees with the server's does not matter.
 * The secret goes only into the Authorization header of that request: never into an error or a log.
 */
import type { FetchLike } from './client.js';

/** Renew this long before expiry (service tokens live 5 minutes by default, at least 60 s). */
export const DEFAULT_SERVICE_REFRESH_MARGIN_SECONDS = 30;

/** The token endpoint refused the credentials or the request: `error` is the RFC 6749 code. */
export class KeelTokenError extends Error {
  override name = 'KeelTokenError';
  constructor(
    readonly error: string,
    readonly status: number,
    description: string,
  ) {
    super(`Keel token endpoint: ${error} (${status}): ${description}`);
  }
}

export interface ServiceTokenSourceOptions {
  url: string;
  clientId: string;
  clientSecret: string;
  scopes?: readonly string[] | undefined;
  fetch?: FetchLike | undefined;
  refreshMarginSeconds?: number | undefined;
  /** Milliseconds since the epoch (tests). */
  now?: (() => number) | undefined;
}

export interface ServiceTokenSource {
  /** A valid token: the cached one, or a new one (shared by every caller waiting meanwhile). */
  token(): Promise<string>;
  /** Forgets `token` if it is still the cached one (the server refused it): the next `token()` fetches. */
  invalidate(token: string): void;
}

interface TokenAnswer {
  access_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
  error_description?: unknown;
}

/** `application/x-www-form-urlencoded` encoding of a Basic credential half (RFC 6749 section 2.3.1). */
const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');

/** Base64 of the UTF-8 bytes (`btoa` alone takes Latin-1 only); Node 16+ and browsers have both. */
const base64 = (text: string): string => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

export function serviceTokenSource(options: ServiceTokenSourceOptions): ServiceTokenSource {
  const now = options.now ?? Date.now;
  const marginMs = (options.refreshMarginSeconds ?? DEFAULT_SERVICE_REFRESH_MARGIN_SECONDS) * 1000;
  const endpoint = `${options.url.replace(/\/+$/, '')}/oauth/token`;
  const authorization = `Basic ${base64(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`)}`;
  const baseFetch: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  let cached: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (options.scopes && options.scopes.length > 0) body.set('scope', options.scopes.join(' '));
    const response = await baseFetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization, accept: 'application/json' },
      body: body.toString(),
    });
    const received = now();
    let answer: TokenAnswer;
    try {
      answer = (await response.json()) as TokenAnswer;
    } catch {
      throw new KeelTokenError('invalid_response', response.status, 'the answer is not JSON');
    }
    if (!response.ok || typeof answer.access_token !== 'string' || typeof answer.expires_in !== 'number') {
      const code = typeof answer.error === 'string' ? answer.error : 'invalid_response';
      const description = typeof answer.error_description === 'string' ? answer.error_description : 'no token in the answer';
      throw new KeelTokenError(code, response.status, description);
    }
    // At least half the lifetime is used, whatever the margin.
    const lifetimeMs = answer.expires_in * 1000;
    cached = { token: answer.access_token, renewAt: received + Math.max(lifetimeMs / 2, lifetimeMs - marginMs) };
    return answer.access_token;
  }

  return {
    token() {
      if (cached && now() < cached.renewAt) return Promise.resolve(cached.token);
      pending ??= fetchToken().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}
