/**
 * The sign-in challenge: what `auth.login` answers, instead of tokens, when the password was right
 * and the account has a second factor. Single-purpose (only `auth.twoFactor.verify` takes it),
 * stored as a SHA-256 hash, dead after 5 minutes, after 5 wrong codes, or once used.
 */
import type { Db } from '../../../db/client.js';
import { hashToken, newOpaqueToken } from '../opaque-tokens.js';
import type { TwoFactorChallenge } from './schemas.js';

export const CHALLENGE_TTL_SECONDS = 5 * 60;
export const CHALLENGE_MAX_FAILURES = 5;

/** A new challenge when the account has an enabled second factor; undefined when it has none. */
export async function openChallenge(tx: Db, userId: string, now: Date): Promise<TwoFactorChallenge | undefined> {
  const factor = await tx.twoFactor.findUnique({ where: { userId }, select: { enabledAt: true } });
  if (!factor?.enabledAt) return undefined;
  const challenge = newOpaqueToken();
  const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_SECONDS * 1000);
  await tx.twoFactorChallenge.create({ data: { userId, tokenHash: hashToken(challenge), createdAt: now, expiresAt } });
  return { status: 'twoFactorRequired', challenge, challengeExpiresAt: expiresAt, methods: ['totp', 'recovery_code'] };
}

/**
 * Counts a wrong code against the challenge, atomically; the fifth kills it. True when it is dead
 * now (the caller must sign in again).
 */
export async function countChallengeFailure(db: Db, id: string, now: Date): Promise<boolean> {
  const rows = await db.$queryRaw<{ consumed_at: Date | null }[]>`
    UPDATE two_factor_challenges
       SET failed_attempts = failed_attempts + 1,
           consumed_at = CASE WHEN failed_attempts + 1 >= ${CHALLENGE_MAX_FAILURES} THEN ${now} ELSE consumed_at END
     WHERE id = ${id}::uuid
     RETURNING consumed_at`;
  return rows[0]?.consumed_at != null;
}
