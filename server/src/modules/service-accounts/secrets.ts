/**
 * Client ids and secrets. A secret is 256 bits from the OS CSPRNG; the database keeps only its
 * HMAC-SHA-256 under a server key (SERVICE_SECRET_HASH_KEY). A fast keyed hash suffices because
 * the secret has full entropy: there is no dictionary to guess from, so a slow hash would only
 * slow every token request (docs/decisions/0016-service-identities.md).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_PREFIX = 'keel_sk_';
const CLIENT_PREFIX = 'keel_ci_';

/** `keel_sk_` and 43 base64url characters (32 random bytes): easy for secret scanners to spot. */
export const newClientSecret = (): string => `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;

/** Public, but unguessable all the same (128 bits), so ids cannot be enumerated. */
export const newClientId = (): string => `${CLIENT_PREFIX}${randomBytes(16).toString('base64url')}`;

/** What the database keeps: HMAC-SHA-256(key, secret), hex (64 characters). */
export const hashSecret = (key: Buffer, secret: string): string => createHmac('sha256', key).update(secret, 'utf8').digest('hex');

/** Constant-time comparison of a presented secret with a stored hash (both hashed to 32 bytes first). */
export function secretMatches(key: Buffer, secret: string, storedHash: string | null): boolean {
  if (storedHash === null || storedHash.length !== 64) return false;
  return timingSafeEqual(Buffer.from(hashSecret(key, secret), 'hex'), Buffer.from(storedHash, 'hex'));
}

/** A hash compared against when the client id is unknown, so unknown and known ids cost the same. */
export const DUMMY_HASH = '0'.repeat(64);
