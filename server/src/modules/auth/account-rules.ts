/**
 * What the account procedures (credentials.ts, account-tokens.ts, session-lifecycle.ts) share:
 * their error messages, the password acceptance rule, the admission of password work and the
 * logging of limit refusals.
 */
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { admitPasswordWork } from '../../lib/password.js';
import { audit } from './audit.js';
import { passwordProblems } from './password-policy.js';
import type { ClientInfo } from './types.js';

export const userSelect = { id: true, email: true, name: true, role: true, emailVerified: true, createdAt: true } as const;

export const INVALID_CREDENTIALS = 'Invalid email or password.';
export const INVALID_REFRESH = 'Invalid or expired refresh token.';
export const INVALID_LINK = 'This link is invalid or has expired. Request a new one.';

export const unauthorized = (message: string) => new AppError('UNAUTHORIZED', message);
export const deactivated = () => new AppError('FORBIDDEN', 'This account is deactivated.');
export const fieldError = (field: string, problems: string[]) =>
  new AppError('BAD_REQUEST', 'Invalid input.', { fieldErrors: { [field]: problems } });

export function assertAcceptablePassword(config: Pick<Config, 'passwords'>, password: string, email: string, field: string): void {
  const problems = passwordProblems(password, email, config.passwords.minScore);
  if (problems.length > 0) throw fieldError(field, problems);
}

/**
 * When the user's password last changed, and whether the account is active, under a row lock, for
 * the write that follows a password check: a change, reset or deactivation committed since the
 * check is seen (and waited for when it is still running), so it cannot be undone by a sign-in or
 * a change that read the row before. A rehash on sign-in does not count as a change.
 */
export async function lockUser(tx: Db, userId: string): Promise<{ passwordChangedAt: Date | null; active: boolean } | undefined> {
  const rows = await tx.$queryRaw<{ password_changed_at: Date | null; active: boolean }[]>`
    SELECT password_changed_at, active FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
  const row = rows[0];
  return row && { passwordChangedAt: row.password_changed_at, active: row.active };
}

/** Whether the password changed (a change or reset; not a rehash) between two reads of the user. */
export const passwordChangedSince = (before: Date | null, now: Date | null | undefined) =>
  (before?.getTime() ?? null) !== (now?.getTime() ?? null);

/**
 * First thing in every procedure that hashes (sign-in, registration, change, reset): a place
 * among the password operations this process takes at once (lib/password.ts), held until `work`
 * ends. When there is none, TOO_MANY_REQUESTS at once, before any query: under a flood of
 * sign-ins the excess costs only its parsing, and neither waits for a hashing slot nor holds
 * database connections that every other request needs.
 */
export async function withPasswordWork<T>(
  config: Pick<Config, 'passwords'>,
  procedure: string,
  client: ClientInfo,
  work: () => Promise<T>,
): Promise<T> {
  const admission = admitPasswordWork(config.passwords);
  if (!admission.admitted) {
    const { retryAfterSeconds } = admission;
    audit(client.log, 'auth.shed', { ip: client.ip, operation: procedure, retryAfterSeconds });
    throw new AppError('TOO_MANY_REQUESTS', `The server is busy checking passwords. Retry in ${retryAfterSeconds} s.`, {
      retryAfterSeconds,
    });
  }
  try {
    return await work();
  } finally {
    admission.release();
  }
}

/** Runs a limit check; a refusal is logged with the client's address before it goes to the caller. */
export async function limited<T>(procedure: string, client: ClientInfo, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof AppError && error.code === 'TOO_MANY_REQUESTS')
      audit(client.log, 'auth.rate_limited', { ip: client.ip, operation: procedure });
    throw error;
  }
}
