/**
 * Seals TOTP secrets at rest with AES-256-GCM under keys from config (TWO_FACTOR_ENCRYPTION_KEYS):
 * a copy of the database alone cannot produce codes. The first key seals; every key opens, so a
 * key is rotated by putting a new one first and re-sealing (a sign-in re-seals with the first key).
 * Sealed form: `v1.<key fingerprint>.<iv>.<tag>.<ciphertext>`, base64url parts.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../../../config.js';

export interface SecretBox {
  seal(plain: Buffer, userId: string): string;
  /** The secret, and whether it was sealed with another key than the first (re-seal it). */
  open(sealed: string, userId: string): { plain: Buffer; stale: boolean };
}

const fingerprint = (key: Buffer) => createHash('sha256').update(key).digest('base64url').slice(0, 8);

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

/**
 * `userId` is bound as associated data: a sealed secret copied onto another account's row does
 * not open there.
 */
export function createSecretBox(keys: Buffer[]): SecretBox {
  const first = keys[0];
  if (!first || keys.some((k) => k.length !== 32)) throw new SecretBoxError('Two-factor keys must be 32 bytes each.');
  const byPrint = new Map(keys.map((k) => [fingerprint(k), k]));
  const firstPrint = fingerprint(first);
  return {
    seal(plain, userId) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', first, iv);
      cipher.setAAD(Buffer.from(userId));
      const data = Buffer.concat([cipher.update(plain), cipher.final()]);
      return ['v1', firstPrint, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
    },
    open(sealed, userId) {
      const [version, print, iv, tag, data] = sealed.split('.');
      const key = print === undefined ? undefined : byPrint.get(print);
      if (version !== 'v1' || !key || !iv || !tag || data === undefined)
        throw new SecretBoxError('A two-factor secret is sealed with a key this server does not hold (TWO_FACTOR_ENCRYPTION_KEYS).');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(userId));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]);
      return { plain, stale: print !== firstPrint };
    },
  };
}

/**
 * The configured keys, or in development and test a key generated once and kept in
 * TWO_FACTOR_KEY_FILE (production refuses to start without TWO_FACTOR_ENCRYPTION_KEYS: config.ts).
 */
export function loadTwoFactorKeys(config: Pick<Config, 'accounts' | 'isProduction'>): Buffer[] {
  if (config.accounts.twoFactorKeys) return config.accounts.twoFactorKeys;
  if (config.isProduction) throw new SecretBoxError('TWO_FACTOR_ENCRYPTION_KEYS is required in production.');
  const file = config.accounts.twoFactorKeyFile;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    // `wx`: two processes starting at once keep the first one's key.
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return readFileSync(file, 'utf8')
    .split(/[,\n]/)
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => Buffer.from(k, 'base64'));
}

/** A box whose keys are loaded on first use: processes that never touch a second factor read no key file. */
export function lazySecretBox(keys: () => Buffer[]): SecretBox {
  let box: SecretBox | undefined;
  const get = () => {
    box ??= createSecretBox(keys());
    return box;
  };
  return { seal: (plain, userId) => get().seal(plain, userId), open: (sealed, userId) => get().open(sealed, userId) };
}
