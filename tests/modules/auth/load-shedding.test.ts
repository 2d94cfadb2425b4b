/**
 * Load shedding of password work: a process takes at most PASSWORD_HASH_CONCURRENCY +
 * PASSWORD_HASH_QUEUE sign-ins, registrations, changes and resets at once. Past that, the call is
 * refused with TOO_MANY_REQUESTS and Retry-After before any database query, so a flood of
 * sign-ins neither queues without bound nor takes the pool's connections from every other request.
 *
 * The test fills the places itself (as a flood would) instead of racing real hashes, and counts
 * the pool's checkouts to see that a refused call made no query.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { admitPasswordWork } from '../../../server/src/lib/password.js';
import { flushAuditRepeats } from '../../../server/src/modules/auth/audit.js';
import { callerWith, signIn } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser, KNOWN_PASSWORD } from '../../support/factories.js';
import { startTestServer } from '../../support/http.js';
import { withCapturedLogs } from '../../support/log-capture.js';
import { mutate } from '../../support/trpc-http.js';

const db = await useTestDatabase();
const { deps, logs } = withCapturedLogs(
  db.deps({
    config: {
      TRUST_PROXY: 'loopback',
      PASSWORD_HASH_CONCURRENCY: '1',
      PASSWORD_HASH_QUEUE: '2',
      LOG_LEVEL: 'info',
      // The general limit shares its counts only when told to: no background query during a count.
      RATE_LIMIT_API_SYNC_MS: '60000',
    },
  }),
);
const server = await startTestServer(deps);

/** What a flood leaves behind: every place taken. Returns the function that frees them. */
function fillPasswordWork(): () => void {
  const held: (() => void)[] = [];
  for (;;) {
    const admission = admitPasswordWork(deps.config.passwords);
    if (!admission.admitted) break;
    held.push(admission.release);
  }
  expect(held).toHaveLength(1 + 2);
  return () => {
    for (const release of held) release();
  };
}

let release: (() => void) | undefined;
afterEach(() => {
  release?.();
  release = undefined;
});

/** Checkouts of a connection from the pool while `work` runs: every query needs one. */
async function queriesDuring<T>(work: () => Promise<T>): Promise<{ result: T; queries: number }> {
  let queries = 0;
  const count = () => {
    queries += 1;
  };
  deps.database.pool.on('acquire', count);
  try {
    return { result: await work(), queries };
  } finally {
    deps.database.pool.off('acquire', count);
  }
}

describe('password work past the queue', () => {
  it('refuses a sign-in with 429 and Retry-After before any query: no limit counted, no attempt recorded', async () => {
    const user = await createUser(deps);
    const ip = '192.0.2.80';
    const rateLimitRows = await deps.database.prisma.rateLimit.count();
    release = fillPasswordWork();

    const { result: refused, queries } = await queriesDuring(() =>
      mutate(server.url, 'auth.login', { email: user.email, password: 'a wrong password' }, { 'x-forwarded-for': ip }),
    );
    expect(refused.status).toBe(429);
    expect(refused.error?.data.code).toBe('TOO_MANY_REQUESTS');
    expect(refused.error?.data.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('retry-after')).toBe(String(refused.error?.data.retryAfterSeconds));
    expect(queries).toBe(0);
    // Neither the address's login budget nor the account's failures moved.
    expect(await deps.database.prisma.rateLimit.count()).toBe(rateLimitRows);
    // The refusal is logged with the client's address.
    await logs.waitFor((line) => line.audit === 'auth.shed' && line.ip === ip && line.operation === 'login');

    release();
    release = undefined;
    const ok = await mutate(server.url, 'auth.login', { email: user.email, password: KNOWN_PASSWORD }, { 'x-forwarded-for': ip });
    expect(ok.status).toBe(200);
  });

  it('logs the first refusal of an address in full and its repeats as one line with their count', async () => {
    const user = await createUser(deps);
    const ip = '192.0.2.83';
    release = fillPasswordWork();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        mutate(server.url, 'auth.login', { email: user.email, password: 'a wrong password' }, { 'x-forwarded-for': ip }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(429));
    const shedLines = () => logs.lines().filter((line) => line.audit === 'auth.shed' && line.ip === ip);
    expect(shedLines()).toHaveLength(1);
    expect(shedLines()[0]?.repeated).toBeUndefined();

    flushAuditRepeats(); // what the window's end (or a stop) does
    expect(shedLines()).toHaveLength(2);
    expect(shedLines()[1]).toMatchObject({ audit: 'auth.shed', ip, operation: 'login', repeated: 19, msg: 'auth.shed (repeated)' });
  });

  it('refuses registration, password change and reset the same way, before any query', async () => {
    const user = await createUser(deps);
    const { accessToken } = await signIn(deps, user);
    release = fillPasswordWork();
    const anonymous = callerWith(deps, { ip: '192.0.2.81' });
    const signedIn = callerWith(deps, { ip: '192.0.2.81', authorization: `Bearer ${accessToken}` });
    const calls = {
      register: () => anonymous.auth.register({ email: 'shed-register@example.test', password: 'a sturdy passphrase' }),
      changePassword: () => signedIn.auth.changePassword({ currentPassword: KNOWN_PASSWORD, newPassword: 'a brand new passphrase' }),
      resetPassword: () => anonymous.auth.resetPassword({ token: 'A'.repeat(43), newPassword: 'a brand new passphrase' }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const { result: error, queries } = await queriesDuring(() => trpcErrorOf(call()));
      expect({ name, code: error.code, queries }).toEqual({ name, code: 'TOO_MANY_REQUESTS', queries: 0 });
    }
    expect(await deps.database.prisma.user.count({ where: { email: 'shed-register@example.test' } })).toBe(0);
  });

  it('frees the place of a refused or failed operation: the full capacity serves again afterwards', async () => {
    const caller = callerWith(deps, { ip: '192.0.2.82' });
    // Concurrency + queue wrong passwords at once, then the same again: none is shed, none leaks a place.
    for (let round = 0; round < 2; round += 1) {
      const user = await createUser(deps);
      const outcomes = await Promise.all(
        Array.from({ length: 3 }, () => trpcErrorOf(caller.auth.login({ email: user.email, password: 'a wrong password' }))),
      );
      expect(outcomes.map((e) => e.code)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED']);
    }
    release = fillPasswordWork();
  });
});
