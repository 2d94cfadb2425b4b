import { createHash, createHmac, randomBytes } from 'node:crypto';

/** 256 bits from the OS CSPRNG, base64url (43 characters). */
export const newOpaqueToken = (): string => randomBytes(32).toString('base64url');

/** What the database keeps instead of a token: its SHA-256, hex. */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/**
 * The successor of a refresh token, derived with a server-side secret instead of drawn at random,
 * so a retried refresh inside the grace window can be given the very successor already issued
 * without the database ever holding a usable token. Without the secret it is as unpredictable
 * as a random token.
 */
export const successorToken = (secret: Buffer, token: string): string =>
  createHmac('sha256', secret).update(`refresh-successor:${token}`).digest('base64url');
