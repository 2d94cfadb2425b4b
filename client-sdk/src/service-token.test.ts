/**
 * The service client's token source against a scripted token endpoint: one request for concurrent
 * callers, renewal before expiry counted from the answer's arrival, forgetting a refused token,
 * and errors that carry the RFC code but never the secret.
 */
import { describe, expect, it } from 'vitest';
import type { FetchLike } from './client.js';
import { KeelTokenError, serviceTokenSource } from './service-token.js';

const SECRET = 'keel_sk_the-secret-that-must-not-leak-0000000000000';

function endpoint(answers: (() => { status: number; body: unknown })[]) {
  const requests: { url: string; init: RequestInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    requests.push({ url, init });
    const next = answers[Math.min(requests.length - 1, answers.length - 1)];
    if (!next) throw new Error('no scripted answer');
    const { status, body } = next();
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
  return { fetch, requests };
}

const ok =
  (token: string, expiresIn = 300) =>
  () => ({ status: 200, body: { access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: 'projects:read' } });

describe('serviceTokenSource', () => {
  it('asks once for concurrent callers, with Basic credentials, grant_type and the scopes', async () => {
    const server = endpoint([ok('t1')]);
    const source = serviceTokenSource({
      url: 'https://keel.test/',
      clientId: 'keel_ci_a b',
      clientSecret: SECRET,
      scopes: ['projects:read'],
      fetch: server.fetch,
    });
    const tokens = await Promise.all([source.token(), source.token(), source.token()]);
    expect(tokens).toEqual(['t1', 't1', 't1']);
    expect(server.requests).toHaveLength(1);
    const [request] = server.requests;
    expect(request?.url).toBe('https://keel.test/oauth/token');
    const headers = request?.init.headers as Record<string, string>;
    expect(headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Buffer.from(headers.authorization?.replace('Basic ', '') ?? '', 'base64').toString()).toBe(`keel_ci_a+b:${SECRET}`);
    expect(new URLSearchParams(String(request?.init.body)).get('scope')).toBe('projects:read');
    expect(new URLSearchParams(String(request?.init.body)).get('grant_type')).toBe('client_credentials');
  });

  it('keeps the token until the margin before its expiry, then renews it', async () => {
    let now = 1_000_000;
    const server = endpoint([ok('t1', 300), ok('t2', 300)]);
    const source = serviceTokenSource({
      url: 'https://keel.test',
      clientId: 'c',
      clientSecret: SECRET,
      fetch: server.fetch,
      now: () => now,
      refreshMarginSeconds: 30,
    });
    expect(await source.token()).toBe('t1');
    now += 269_000;
    expect(await source.token()).toBe('t1');
    now += 1_000;
    expect(await source.token()).toBe('t2');
    expect(server.requests).toHaveLength(2);
  });

  it('forgets a token the server refused, but not a newer one', async () => {
    const server = endpoint([ok('t1'), ok('t2')]);
    const source = serviceTokenSource({ url: 'https://keel.test', clientId: 'c', clientSecret: SECRET, fetch: server.fetch });
    expect(await source.token()).toBe('t1');
    source.invalidate('t1');
    expect(await source.token()).toBe('t2');
    source.invalidate('t1');
    expect(await source.token()).toBe('t2');
  });

  it('throws the RFC error code without the secret, and asks again on the next call', async () => {
    const server = endpoint([
      () => ({ status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed.' } }),
      ok('t1'),
    ]);
    const source = serviceTokenSource({ url: 'https://keel.test', clientId: 'c', clientSecret: SECRET, fetch: server.fetch });
    const error = await source.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeelTokenError);
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 });
    expect(JSON.stringify(error) + String(error) + ((error as Error).stack ?? '')).not.toContain(SECRET);
    expect(await source.token()).toBe('t1');
  });
});
