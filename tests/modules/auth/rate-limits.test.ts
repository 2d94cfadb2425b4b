/**
 * Abuse limits: per client address (login, register, password-reset requests) and per account
 * (a growing backoff after the free login failures). Every test acts from its own addresses
 * (TRUST_PROXY + x-forwarded-for over HTTP, the `ip` meta in-process), so budgets never mix.
 *
 * The limiter keeps its windows in PostgreSQL with expiry times from `Date.now()`; the account
 * backoff tests fake `Date` only (timers stay real) to step past a block instead of sleeping.
 */
import { randomBytes } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import superjson from 'superjson';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../../../server/src/lib/errors.js';
import { callerWith } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { decodeTrpcError, mutate as mutateOverHttp, type SuperJsonEnvelope, type TrpcErrorShape } from '../../support/trpc-http.js';

const LOGIN_PER_IP = 3;
const FREE_FAILURES = 2;
const REGISTER_PER_IP = 2;
const RESET_PER_IP = 2;
const RESET_PER_ACCOUNT = 2;

const db = await useTestDatabase();
const limits = {
  TRUST_PROXY: 'loopback',
  RATE_LIMIT_LOGIN_PER_IP: String(LOGIN_PER_IP),
  RATE_LIMIT_LOGIN_FREE_FAILURES: String(FREE_FAILURES),
  RATE_LIMIT_REGISTER_PER_IP: String(REGISTER_PER_IP),
  RATE_LIMIT_RESET_PER_IP: String(RESET_PER_IP),
  RATE_LIMIT_RESET_PER_ACCOUNT: String(RESET_PER_ACCOUNT),
};
const deps = db.deps({ config: limits });
const server = await startTestServer(deps);
const unlimited = db.deps({
  config: { ...limits, RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_LOGIN_PER_IP: '1', RATE_LIMIT_LOGIN_FREE_FAILURES: '1' },
});
const unlimitedServer = await startTestServer(unlimited);

const FAILURES_PER_IP = 3;
const TOKEN_FAILURES_PER_IP = 2;
/** Generous per-address login budget, so only the failure budgets decide. */
const stuffing = db.deps({
  config: {
    TRUST_PROXY: 'loopback',
    RATE_LIMIT_LOGIN_PER_IP: '1000',
    RATE_LIMIT_LOGIN_FAILURES_PER_IP: String(FAILURES_PER_IP),
    RATE_LIMIT_TOKEN_FAILURES_PER_IP: String(TOKEN_FAILURES_PER_IP),
  },
});
const stuffingServer = await startTestServer(stuffing);

afterEach(() => {
  vi.useRealTimers();
});

// ---------------------------------------------------------------------------------------------
// Over HTTP (headers and batches) and in-process (the account backoff, with a fake Date).

interface Outcome {
  status: number;
  code: string;
  retryAfterSeconds: number | undefined;
}

const outcomeOf = (status: number, error: TrpcErrorShape | undefined): Outcome => ({
  status,
  code: error?.data.code ?? 'OK',
  retryAfterSeconds: error?.data.retryAfterSeconds,
});

/** One mutation over HTTP from client address `ip`: its status, outcome and response headers. */
async function mutate(base: string, path: string, input: unknown, ip: string): Promise<Outcome & { headers: Headers }> {
  const answer = await mutateOverHttp<unknown>(base, path, input, { 'x-forwarded-for': ip });
  return { ...outcomeOf(answer.status, answer.error), headers: answer.headers };
}

/** One in-process call from `ip`: OK, or the error's code and retry-after. */
async function attempt(call: Promise<unknown>): Promise<Omit<Outcome, 'status'>> {
  try {
    await call;
    return { code: 'OK', retryAfterSeconds: undefined };
  } catch (error) {
    if (!(error instanceof TRPCError)) throw error;
    return { code: error.code, retryAfterSeconds: error.cause instanceof AppError ? error.cause.retryAfterSeconds : undefined };
  }
}

/** A fresh address per call: the account limit must hold whatever address an attacker uses. */
let addressCounter = 0;
const nextIp = () => {
  addressCounter += 1;
  return `10.77.${Math.floor(addressCounter / 250)}.${(addressCounter % 250) + 1}`;
};

const login = (email: string, password: string) => attempt(callerWith(deps, { ip: nextIp() }).auth.login({ email, password }));

/** Freezes `Date` (only) at the real current time; returns a function that moves it forward. */
function freezeDate(): (ms: number) => void {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
  return (ms) => vi.setSystemTime(Date.now() + ms);
}

const tooMany = (retryAfterSeconds: number | undefined = expect.any(Number)) => ({ code: 'TOO_MANY_REQUESTS', retryAfterSeconds });

describe('per-address limits', () => {
  it('limits logins per address: TOO_MANY_REQUESTS with data.retryAfterSeconds and a matching Retry-After header', async () => {
    const user = await createUser(deps);
    const input = { email: user.email, password: KNOWN_PASSWORD };
    for (let i = 0; i < LOGIN_PER_IP; i += 1) expect((await mutate(server.url, 'auth.login', input, '192.0.2.10')).status).toBe(200);

    const limited = await mutate(server.url, 'auth.login', input, '192.0.2.10');
    expect(limited).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS' });
    expect(limited.retryAfterSeconds).toBeGreaterThan(0);
    expect(limited.retryAfterSeconds).toBeLessThanOrEqual(15 * 60);
    expect(limited.headers.get('retry-after')).toBe(String(limited.retryAfterSeconds));
    expect(limited.headers.get('cache-control')).toBe('no-store');

    // Failed attempts count too, and another address is not affected.
    expect((await mutate(server.url, 'auth.login', { ...input, password: 'wrong password' }, '192.0.2.10')).status).toBe(429);
    expect((await mutate(server.url, 'auth.login', input, '192.0.2.11')).status).toBe(200);
  });

  it('refuses an address past its budget from memory: the flood behind it adds nothing to the shared count', async () => {
    const user = await createUser(deps);
    const input = { email: user.email, password: KNOWN_PASSWORD };
    const ip = '192.0.2.12';
    for (let i = 0; i < LOGIN_PER_IP; i += 1) expect((await mutate(server.url, 'auth.login', input, ip)).status).toBe(200);
    const shared = () => deps.database.prisma.rateLimit.findUnique({ where: { key: `ip-login:${ip}` } });
    // The first refusal is the shared count's (one past the budget); it blocks the address in this process.
    expect((await mutate(server.url, 'auth.login', input, ip)).status).toBe(429);
    const counted = (await shared())?.points;
    expect(counted).toBe(LOGIN_PER_IP + 1);

    const refusals = await Promise.all(Array.from({ length: 10 }, () => mutate(server.url, 'auth.login', input, ip)));
    expect(refusals.map((r) => r.status)).toEqual(Array(10).fill(429));
    for (const refusal of refusals) expect(refusal.retryAfterSeconds).toBeGreaterThan(0);
    expect((await shared())?.points).toBe(counted);
  });

  it('counts the address the trusted proxy saw: a client cannot escape by writing its own X-Forwarded-For entries', async () => {
    const user = await createUser(deps);
    const input = { email: user.email, password: KNOWN_PASSWORD };
    for (let i = 0; i < LOGIN_PER_IP; i += 1) expect((await mutate(server.url, 'auth.login', input, '192.0.2.70')).status).toBe(200);
    // What a client would send through the proxy: its own made-up entries, then the proxy appends the real address.
    expect((await mutate(server.url, 'auth.login', input, '203.0.113.5, 192.0.2.70')).status).toBe(429);
    expect((await mutate(server.url, 'auth.login', input, 'not-an-ip, 192.0.2.70')).status).toBe(429);
  });

  it('limits registrations per address', async () => {
    for (let i = 0; i < REGISTER_PER_IP; i += 1) {
      const ok = await mutate(
        server.url,
        'auth.register',
        { email: `reg-limit-${i}@example.test`, password: 'a sturdy passphrase' },
        '192.0.2.20',
      );
      expect(ok.status).toBe(200);
    }
    const limited = await mutate(
      server.url,
      'auth.register',
      { email: 'reg-limit-x@example.test', password: 'a sturdy passphrase' },
      '192.0.2.20',
    );
    expect(limited).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS' });
    expect(limited.headers.get('retry-after')).toBe(String(limited.retryAfterSeconds));
    expect(await deps.database.prisma.user.count({ where: { email: 'reg-limit-x@example.test' } })).toBe(0);
    const elsewhere = await mutate(
      server.url,
      'auth.register',
      { email: 'reg-limit-y@example.test', password: 'a sturdy passphrase' },
      '192.0.2.21',
    );
    expect(elsewhere.status).toBe(200);
  });

  it('limits password-reset requests per address, whether or not the email has an account', async () => {
    const user = await createUser(deps);
    const emails = [user.email, 'nobody-1@example.test'];
    for (const email of emails) expect((await mutate(server.url, 'auth.requestPasswordReset', { email }, '192.0.2.30')).status).toBe(200);
    for (const email of emails) {
      const limited = await mutate(server.url, 'auth.requestPasswordReset', { email }, '192.0.2.30');
      expect(limited).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS' });
      expect(limited.headers.get('retry-after')).toBe(String(limited.retryAfterSeconds));
    }
    expect((await mutate(server.url, 'auth.requestPasswordReset', { email: user.email }, '192.0.2.31')).status).toBe(200);
  });

  it('mails at most RATE_LIMIT_RESET_PER_ACCOUNT resets an hour to one account, whatever addresses ask; the answer never changes', async () => {
    const user = await createUser(deps);
    for (let i = 0; i < RESET_PER_ACCOUNT + 2; i += 1) {
      await expect(callerWith(deps, { ip: nextIp() }).auth.requestPasswordReset({ email: user.email })).resolves.toEqual({ ok: true });
    }
    await deps.background.drain();
    const mails = await deps.database.prisma.mailOutbox.count({ where: { recipient: user.email, subject: 'Reset your password' } });
    expect(mails).toBe(RESET_PER_ACCOUNT);
  });

  it('counts each call of a batch: N logins in ONE HTTP request spend N of the budget', async () => {
    const user = await createUser(deps);
    const calls = LOGIN_PER_IP + 2;
    const paths = Array.from({ length: calls }, () => 'auth.login').join(',');
    const body = Object.fromEntries(
      Array.from({ length: calls }, (_, i) => [String(i), superjson.serialize({ email: user.email, password: KNOWN_PASSWORD })]),
    );
    const response = await fetch(`${server.url}/trpc/${paths}?batch=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.40' },
      body: JSON.stringify(body),
    });
    const results = (await response.json()) as { result?: unknown; error?: SuperJsonEnvelope }[];
    expect(results).toHaveLength(calls);
    const outcomes = results.map((r) => (r.error ? decodeTrpcError(r.error).data.code : 'OK'));
    expect(outcomes.filter((c) => c === 'OK')).toHaveLength(LOGIN_PER_IP);
    expect(outcomes.filter((c) => c === 'TOO_MANY_REQUESTS')).toHaveLength(calls - LOGIN_PER_IP);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);

    // The budget is spent: the next single call is refused too.
    expect((await mutate(server.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, '192.0.2.40')).status).toBe(429);
  });
});

describe('per-account backoff', () => {
  it(`blocks the account once the ${FREE_FAILURES} free failures are spent, even for the right password and from any address`, async () => {
    freezeDate();
    const user = await createUser(deps);
    const outcomes = [];
    for (let i = 0; i < FREE_FAILURES; i += 1) outcomes.push(await login(user.email, 'wrong password'));
    // The free failures block nothing: the right password still works now.
    expect(outcomes).toEqual(Array.from({ length: FREE_FAILURES }, () => ({ code: 'UNAUTHORIZED', retryAfterSeconds: undefined })));
    expect(await login(user.email, KNOWN_PASSWORD)).toEqual({ code: 'OK', retryAfterSeconds: undefined });

    for (let i = 0; i < FREE_FAILURES; i += 1) await login(user.email, 'wrong password');
    // One failure past the free ones starts a backoff...
    expect(await login(user.email, 'wrong password')).toEqual({ code: 'UNAUTHORIZED', retryAfterSeconds: undefined });
    // ...during which even the right password, from yet another address, is refused.
    expect(await login(user.email, KNOWN_PASSWORD)).toEqual(tooMany());
    expect(await login(user.email, KNOWN_PASSWORD)).toEqual(tooMany());
    expect(await deps.database.prisma.session.count({ where: { userId: user.id } })).toBe(1);
  });

  it('checks at most the free failures plus one password when many attempts on one account arrive at once', async () => {
    freezeDate();
    const user = await createUser(deps);
    const attempts = 12;
    // As a batch runs its calls (concurrently), or many addresses at once: none waits for another's failure.
    const outcomes = await Promise.all(Array.from({ length: attempts }, () => login(user.email, 'wrong password')));
    const codes = outcomes.map((o) => o.code);
    expect(codes.filter((c) => c === 'UNAUTHORIZED')).toHaveLength(FREE_FAILURES + 1);
    expect(codes.filter((c) => c === 'TOO_MANY_REQUESTS')).toHaveLength(attempts - FREE_FAILURES - 1);
    // The failure past the free ones started the backoff: the right password waits too.
    expect(await login(user.email, KNOWN_PASSWORD)).toEqual(tooMany());
  });

  it('makes the retry-after grow with each further failure', async () => {
    const advance = freezeDate();
    const user = await createUser(deps);
    for (let i = 0; i <= FREE_FAILURES; i += 1) await login(user.email, 'wrong password');

    const retryAfters: number[] = [];
    for (let block = 0; block < 3; block += 1) {
      const refused = await login(user.email, KNOWN_PASSWORD);
      expect(refused).toEqual(tooMany());
      retryAfters.push(refused.retryAfterSeconds as number);
      // Step past this block, and fail once more.
      advance((refused.retryAfterSeconds as number) * 1000 + 1);
      expect(await login(user.email, 'wrong password')).toEqual({ code: 'UNAUTHORIZED', retryAfterSeconds: undefined });
    }
    expect(retryAfters[1]).toBeGreaterThan(retryAfters[0] as number);
    expect(retryAfters[2]).toBeGreaterThan(retryAfters[1] as number);
  });

  it('limits unknown emails exactly like known ones, so the answers tell nothing about which exist', async () => {
    freezeDate();
    const user = await createUser(deps);
    const sequence = async (email: string) => {
      const outcomes = [];
      for (let i = 0; i < FREE_FAILURES + 3; i += 1) outcomes.push(await login(email, 'wrong password'));
      return outcomes;
    };
    const known = await sequence(user.email);
    const unknown = await sequence('no-such-account@example.test');
    expect(unknown).toEqual(known);
    expect(known.slice(FREE_FAILURES + 1)).toEqual([tooMany(1), tooMany(1)]);
  });

  it('resets the failure count on a successful login', async () => {
    freezeDate();
    const user = await createUser(deps);
    const outcomes = [];
    for (let round = 0; round < 3; round += 1) {
      for (let i = 0; i < FREE_FAILURES; i += 1) outcomes.push((await login(user.email, 'wrong password')).code);
      outcomes.push((await login(user.email, KNOWN_PASSWORD)).code);
    }
    // Without the reset, the third failure overall would have started a backoff.
    const round = [...Array.from({ length: FREE_FAILURES }, () => 'UNAUTHORIZED'), 'OK'];
    expect(outcomes).toEqual([...round, ...round, ...round]);
  });
});

describe('per-address failure budgets', () => {
  it(`limits failed logins across accounts per address: after ${FAILURES_PER_IP} failures, one try per account is refused too`, async () => {
    // Credential stuffing: many accounts (known or not), one try each, from a few addresses.
    const known = await Promise.all(Array.from({ length: 3 }, () => createUser(stuffing)));
    const accounts = [...known.map((u) => u.email), 'stuffed-1@example.test', 'stuffed-2@example.test', 'stuffed-3@example.test'];
    const addresses = ['203.0.113.101', '203.0.113.102', '203.0.113.103', '203.0.113.104'];
    for (const ip of addresses) {
      const statuses = [];
      for (const email of accounts)
        statuses.push((await mutate(stuffingServer.url, 'auth.login', { email, password: 'Summer2026!' }, ip)).status);
      expect({ ip, statuses }).toEqual({ ip, statuses: [401, 401, 401, 429, 429, 429] });
    }
    const refused = await mutate(
      stuffingServer.url,
      'auth.login',
      { email: accounts[0], password: KNOWN_PASSWORD },
      addresses[0] as string,
    );
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe(String(refused.retryAfterSeconds));
    // The accounts themselves are not blocked: their owners sign in from elsewhere.
    const owner = await mutate(stuffingServer.url, 'auth.login', { email: accounts[0], password: KNOWN_PASSWORD }, '203.0.113.105');
    expect(owner.status).toBe(200);
  });

  it('lets an address sign in again once concurrent right logins that crowded its failure budget are refunded', async () => {
    // Each attempt counts as a failure until its password checks: one more than the budget at once
    // may refuse one (a refused attempt stays counted); once the others are refunded, the address
    // is well within its budget again, on this instance too.
    const users = await Promise.all(Array.from({ length: FAILURES_PER_IP + 1 }, () => createUser(stuffing)));
    const ip = '203.0.113.111';
    const statuses = await Promise.all(
      users.map(async (u) => (await mutate(stuffingServer.url, 'auth.login', { email: u.email, password: KNOWN_PASSWORD }, ip)).status),
    );
    for (const status of statuses) expect([200, 429]).toContain(status);
    const later = await mutate(stuffingServer.url, 'auth.login', { email: users[0]?.email, password: KNOWN_PASSWORD }, ip);
    expect(later.status).toBe(200);
  });

  it('gives a successful login its attempt back: people behind one address who sign in fine are not limited', async () => {
    const user = await createUser(stuffing);
    const ip = '203.0.113.110';
    const login = async (password: string) => (await mutate(stuffingServer.url, 'auth.login', { email: user.email, password }, ip)).status;
    const statuses = [];
    for (let i = 0; i < FAILURES_PER_IP + 2; i += 1) statuses.push(await login(KNOWN_PASSWORD));
    statuses.push(await login('a wrong password'), await login('a wrong password'), await login(KNOWN_PASSWORD));
    statuses.push(await login('a wrong password'), await login(KNOWN_PASSWORD));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 401, 401, 200, 401, 429]);
  });

  it('limits guessed reset and verification tokens per address; a right token is not counted', async () => {
    const guess = (path: 'auth.resetPassword' | 'auth.verifyEmail', ip: string, token = randomBytes(32).toString('base64url')) =>
      mutate(stuffingServer.url, path, path === 'auth.resetPassword' ? { token, newPassword: 'a brand new passphrase' } : { token }, ip);
    const ip = '203.0.113.120';
    const statuses = [];
    for (let i = 0; i < TOKEN_FAILURES_PER_IP; i += 1) statuses.push((await guess('auth.resetPassword', ip)).status);
    const limited = await guess('auth.verifyEmail', ip);
    expect([...statuses, limited.status]).toEqual([400, 400, 429]);
    expect(limited.code).toBe('TOO_MANY_REQUESTS');
    expect(limited.headers.get('retry-after')).toBe(String(limited.retryAfterSeconds));

    // A right token (from the registration mail) is no guess: it gives its attempt back.
    const other = '203.0.113.121';
    await mutate(stuffingServer.url, 'auth.register', { email: 'token-owner@example.test', password: 'a sturdy passphrase' }, other);
    const mail = await stuffing.database.prisma.mailOutbox.findFirstOrThrow({ where: { recipient: 'token-owner@example.test' } });
    const token = /[?&]token=([A-Za-z0-9_-]{43})/.exec(mail.body)?.[1];
    expect((await guess('auth.verifyEmail', other)).status).toBe(400);
    expect((await guess('auth.verifyEmail', other, token)).status).toBe(200);
    expect((await guess('auth.verifyEmail', other)).status).toBe(400);
    expect((await guess('auth.verifyEmail', other)).status).toBe(429);
  });
});

describe('RATE_LIMIT_ENABLED=false', () => {
  it('disables every limit: per-address logins, registrations and reset requests, and the account backoff', async () => {
    const ip = '192.0.2.50';
    const user = await createUser(unlimited);
    for (let i = 0; i < 4; i += 1)
      expect((await mutate(unlimitedServer.url, 'auth.login', { email: user.email, password: 'wrong password' }, ip)).status).toBe(401);
    expect((await mutate(unlimitedServer.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, ip)).status).toBe(200);
    for (let i = 0; i < REGISTER_PER_IP + 1; i += 1) {
      const register = await mutate(
        unlimitedServer.url,
        'auth.register',
        { email: `unlimited-${i}@example.test`, password: 'a sturdy passphrase' },
        ip,
      );
      expect(register.status).toBe(200);
    }
    for (let i = 0; i < RESET_PER_IP + 1; i += 1) {
      expect((await mutate(unlimitedServer.url, 'auth.requestPasswordReset', { email: user.email }, ip)).status).toBe(200);
    }
    // Nothing was even counted for this address (while the enabled limiter records the next one's login).
    expect(await unlimited.database.prisma.rateLimit.count({ where: { key: { contains: ip } } })).toBe(0);
    await mutate(server.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, '192.0.2.51');
    expect(await deps.database.prisma.rateLimit.count({ where: { key: { contains: '192.0.2.51' } } })).toBeGreaterThan(0);
  });
});
