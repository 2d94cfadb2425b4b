/**
 * The SDK over real HTTP through a two-factor sign-in: `login` answers a typed challenge and keeps
 * no tokens, `verifyTwoFactor` completes it and keeps them, and the account errors carry typed
 * reasons (`hasReason`), in bearer and cookie mode.
 */
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { createKeelClient, hasReason, isTwoFactorChallenge } from '../../client-sdk/src/index.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();
const deps = db.deps({ config: { TWO_FACTOR_ENCRYPTION_KEYS: Buffer.alloc(32, 5).toString('base64') } });
const server = await startTestServer(deps);
const PASSWORD = 'a sturdy passphrase';

/** A registered account with two-factor sign-in on; its authenticator, and the client that set it up (signed out). */
async function enrolledAccount(email: string) {
  const keel = createKeelClient({ url: server.url });
  await keel.register({ email, password: PASSWORD });
  const setup = await keel.auth.twoFactor.setup.mutate();
  const totp = new TOTP({ secret: Secret.fromBase32(setup.secret) });
  const { recoveryCodes } = await keel.auth.twoFactor.enable.mutate({ code: totp.generate() });
  await keel.logout();
  return { totp, recoveryCodes };
}

describe('SDK two-factor sign-in', () => {
  it('login answers a challenge and keeps no tokens; verifyTwoFactor completes it and the session works', async () => {
    const email = `sdk-2fa-${Date.now()}@example.test`;
    const { totp } = await enrolledAccount(email);
    const keel = createKeelClient({ url: server.url });
    const result = await keel.login({ email, password: PASSWORD });
    expect(isTwoFactorChallenge(result)).toBe(true);
    if (!isTwoFactorChallenge(result)) return;
    expect(result.challengeExpiresAt).toBeInstanceOf(Date);
    expect(await keel.getTokens()).toBeNull();

    const wrong = await keel.verifyTwoFactor({ challenge: result.challenge, code: '000000' }).catch((e: unknown) => e);
    expect(hasReason(wrong, 'INVALID_TWO_FACTOR_CODE')).toBe(true);
    expect(await keel.getTokens()).toBeNull();

    // The next step's code: inside the window, and never the one enabling used.
    const signed = await keel.verifyTwoFactor({ challenge: result.challenge, code: totp.generate({ timestamp: Date.now() + 30_000 }) });
    expect((await keel.getTokens())?.accessToken).toBe(signed.accessToken);
    expect((await keel.auth.me.query()).email).toBe(email);
    const sessions = await keel.auth.sessions.list.query();
    expect(sessions.items.find((s) => s.current)?.factors).toEqual(['password', 'totp']);

    const again = await keel.verifyTwoFactor({ challenge: result.challenge, code: totp.generate() }).catch((e: unknown) => e);
    expect(hasReason(again, 'TWO_FACTOR_CHALLENGE_INVALID')).toBe(true);
  });

  it('cookie mode: the refresh token of a completed challenge goes into the HttpOnly cookie only', async () => {
    const email = `sdk-2fa-cookie-${Date.now()}@example.test`;
    const { recoveryCodes } = await enrolledAccount(email);
    const response = await fetch(`${server.url}/trpc/auth.login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-keel-auth': 'cookie', origin: 'http://localhost:5173' },
      body: JSON.stringify({ json: { email, password: PASSWORD } }),
    });
    const login = (await response.json()) as { result: { data: { json: { challenge: string } } } };
    expect(response.headers.get('set-cookie')).toBeNull();
    const verified = await fetch(`${server.url}/trpc/auth.twoFactor.verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-keel-auth': 'cookie', origin: 'http://localhost:5173' },
      body: JSON.stringify({ json: { challenge: login.result.data.json.challenge, recoveryCode: recoveryCodes[0] } }),
    });
    expect(verified.status).toBe(200);
    expect(verified.headers.get('set-cookie')).toMatch(/^keel_refresh=[A-Za-z0-9_-]{43};.*HttpOnly/);
    const body = (await verified.json()) as { result: { data: { json: Record<string, unknown> } } };
    expect(body.result.data.json).not.toHaveProperty('refreshToken');
    expect(body.result.data.json).toHaveProperty('accessToken');
  });
});
