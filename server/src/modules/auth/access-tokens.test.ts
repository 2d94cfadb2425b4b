import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config.js';
import { createAccessTokens, InvalidAccessTokenError } from './access-tokens.js';
import { generateJwkSet, importKeySet, KeyConfigError } from './keys.js';

const config = parseConfig({ NODE_ENV: 'test' }).auth;
const userId = '6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f';
const sessionId = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const keysJson = JSON.stringify(await generateJwkSet('EdDSA'));
const keys = await importKeySet(keysJson);
const fixedNow = new Date('2026-11-26T12:00:00Z');
const tokens = createAccessTokens(keys, config, () => fixedNow);
const nowSeconds = Math.floor(fixedNow.getTime() / 1000);

/** A token signed with our real key but with chosen header and claims. */
async function forge(
  header: { alg?: string; typ?: string; kid?: string; jwk?: Record<string, unknown> } = {},
  claims: Record<string, unknown> = {},
  signingKey: CryptoKey | Uint8Array = keys.signingKey,
): Promise<string> {
  return new SignJWT({ sid: sessionId, role: 'USER', jti: 'j1', ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: keys.kid, ...header })
    .setIssuer((claims.iss as string) ?? config.issuer)
    .setAudience((claims.aud as string) ?? config.audience)
    .setSubject(userId)
    .setIssuedAt((claims.iat as number) ?? nowSeconds)
    .setExpirationTime((claims.exp as number) ?? nowSeconds + 900)
    .sign(signingKey);
}

async function rejects(token: string): Promise<void> {
  await expect(tokens.verify(token)).rejects.toBeInstanceOf(InvalidAccessTokenError);
}

describe('access tokens', () => {
  it('issues an EdDSA at+jwt with kid and the claims iss, aud, sub, sid, role, iat, exp, jti', async () => {
    const { token, expiresAt } = await tokens.issue({ userId, sessionId, role: 'ADMIN' });
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'EdDSA', kid: keys.kid, typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: 'keel',
      aud: 'keel-api',
      sub: userId,
      sid: sessionId,
      role: 'ADMIN',
      iat: nowSeconds,
      exp: nowSeconds + 900,
    });
    expect(payload.jti).toEqual(expect.any(String));
    expect(expiresAt.getTime()).toBe((nowSeconds + 900) * 1000);
    await expect(tokens.verify(token)).resolves.toMatchObject({ sub: userId, sid: sessionId, role: 'ADMIN' });
  });

  it('signs with ES256 when the key set says so', async () => {
    const es = await importKeySet(JSON.stringify(await generateJwkSet('ES256')));
    const esTokens = createAccessTokens(es, config, () => fixedNow);
    const { token } = await esTokens.issue({ userId, sessionId, role: 'USER' });
    expect(JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).alg).toBe('ES256');
    await expect(esTokens.verify(token)).resolves.toMatchObject({ sub: userId });
  });

  it('rejects alg none', async () => {
    const unsecured = new UnsecuredJWT({ sid: sessionId, role: 'USER', jti: 'x' })
      .setIssuer(config.issuer)
      .setAudience(config.audience)
      .setSubject(userId)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + 900)
      .encode();
    await rejects(unsecured);
  });

  it('rejects HS256 signed with the public key as the HMAC secret', async () => {
    const publicKey = JSON.stringify(keys.publicJwks[0]);
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: keys.kid })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({
        iss: config.issuer,
        aud: config.audience,
        sub: userId,
        sid: sessionId,
        role: 'ADMIN',
        jti: 'x',
        iat: nowSeconds,
        exp: nowSeconds + 900,
      }),
    ).toString('base64url');
    const signature = createHmac('sha256', publicKey).update(`${header}.${payload}`).digest('base64url');
    await rejects(`${header}.${payload}.${signature}`);
  });

  it('rejects a wrong issuer, audience or type', async () => {
    await rejects(await forge({}, { iss: 'someone-else' }));
    await rejects(await forge({}, { aud: 'another-api' }));
    await rejects(await forge({ typ: 'JWT' }));
  });

  it('rejects an expired token, allowing at most 30 s of clock skew', async () => {
    await expect(tokens.verify(await forge({}, { iat: nowSeconds - 900, exp: nowSeconds - 25 }))).resolves.toBeDefined();
    await rejects(await forge({}, { iat: nowSeconds - 900, exp: nowSeconds - 31 }));
    await rejects(await forge({}, { iat: nowSeconds + 60, exp: nowSeconds + 960 }));
  });

  it('rejects a tampered payload', async () => {
    const { token } = await tokens.issue({ userId, sessionId, role: 'USER' });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const tampered = Buffer.from(JSON.stringify({ ...claims, role: 'ADMIN' })).toString('base64url');
    await rejects(`${header}.${tampered}.${signature}`);
  });

  it('rejects a token signed by a key that is not in the set, even with a known kid or an embedded jwk', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    await rejects(await forge({ kid: 'unknown-kid' }, {}, privateKey));
    await rejects(await forge({}, {}, privateKey));
    await rejects(await forge({ kid: 'attacker', jwk: await exportJWK(publicKey) }, {}, privateKey));
  });

  it('rejects claims of the wrong shape even when correctly signed', async () => {
    await rejects(await forge({}, { role: 'ROOT' }));
    await rejects(await forge({}, { sid: 'not-a-uuid' }));
  });

  it('keeps accepting tokens of an older key listed after the new signing key (rotation)', async () => {
    const next = await generateJwkSet('EdDSA');
    const rotatedSet = { keys: [...next.keys, ...JSON.parse(keysJson).keys] };
    const rotated = await importKeySet(JSON.stringify(rotatedSet));
    const rotatedTokens = createAccessTokens(rotated, config, () => fixedNow);
    const { token: old } = await tokens.issue({ userId, sessionId, role: 'USER' });
    await expect(rotatedTokens.verify(old)).resolves.toMatchObject({ sub: userId });
    const { token: fresh } = await rotatedTokens.issue({ userId, sessionId, role: 'USER' });
    expect(JSON.parse(Buffer.from(fresh.split('.')[0] as string, 'base64url').toString()).kid).toBe(next.keys[0]?.kid);
    expect(rotated.publicJwks.every((k) => !('d' in k))).toBe(true);
  });

  it('keeps verified tokens in memory but still expires them on time', async () => {
    const clock = { now: fixedNow };
    const cached = createAccessTokens(keys, config, () => clock.now);
    const { token } = await cached.issue({ userId, sessionId, role: 'USER' });
    await expect(cached.verify(token)).resolves.toMatchObject({ sub: userId });
    clock.now = new Date(fixedNow.getTime() + 900_000 + 25_000);
    await expect(cached.verify(token)).resolves.toMatchObject({ sub: userId });
    clock.now = new Date(fixedNow.getTime() + 900_000 + 31_000);
    await expect(cached.verify(token)).rejects.toBeInstanceOf(InvalidAccessTokenError);
    clock.now = fixedNow;
    // Evicted once expired: a later check does the full verification again (and passes).
    await expect(cached.verify(token)).resolves.toMatchObject({ sub: userId });
  });

  it('never caches a rejected token: a tampered one fails every time', async () => {
    const { token } = await tokens.issue({ userId, sessionId, role: 'USER' });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), role: 'ADMIN' })).toString('base64url')}.${signature}`;
    for (let i = 0; i < 3; i++) await rejects(forged);
  });

  it('refuses key sets without a private key, with duplicate kids, or that are not JSON', async () => {
    const {
      keys: [key],
    } = JSON.parse(keysJson) as { keys: Record<string, unknown>[] };
    const { d: _d, ...publicOnly } = key as Record<string, unknown>;
    await expect(importKeySet(JSON.stringify({ keys: [publicOnly] }))).rejects.toThrow(/no private key/);
    await expect(importKeySet(JSON.stringify({ keys: [key, key] }))).rejects.toThrow(/distinct kid/);
    await expect(importKeySet('{nope')).rejects.toBeInstanceOf(KeyConfigError);
    await expect(importKeySet(JSON.stringify({ keys: [{ kty: 'RSA' }] }))).rejects.toThrow(/not a valid JWK set/);
  });
});
