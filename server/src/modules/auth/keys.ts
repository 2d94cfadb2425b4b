/**
 * Signing keys for access tokens, as a JWK set: the first private key signs, every key's public
 * half verifies, so a new key can be put first (and the old one kept) to rotate without logging
 * anyone out. Development keeps a generated pair in `.data/`; production must configure JWT_KEYS.
 */
import { hkdfSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type JWK, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Config } from '../../config.js';

export type SigningAlgorithm = Config['auth']['algorithm'];

const jwkSchema = z
  .object({
    kty: z.enum(['OKP', 'EC']),
    crv: z.enum(['Ed25519', 'P-256']),
    x: z.string().min(1),
    y: z.string().min(1).optional(),
    d: z.string().min(1).optional(),
    kid: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'kid: 1-128 characters of A-Z a-z 0-9 . _ -'),
    alg: z.enum(['EdDSA', 'ES256']).optional(),
    use: z.literal('sig').optional(),
  })
  .refine((k) => (k.crv === 'Ed25519') === (k.kty === 'OKP'), 'Ed25519 keys are OKP, P-256 keys are EC');

const jwkSetSchema = z.object({ keys: z.array(jwkSchema).min(1) });

type StoredJwk = z.infer<typeof jwkSchema>;

export interface KeySet {
  algorithm: SigningAlgorithm;
  kid: string;
  signingKey: CryptoKey | Uint8Array;
  /** Every key's public half, as served at /.well-known/jwks.json. */
  publicJwks: JWK[];
  /** The algorithms of the configured keys: verification accepts these and nothing else. */
  algorithms: SigningAlgorithm[];
  verificationKeys: JWTVerifyGetKey;
  /**
   * Secrets for the refresh-token successor MAC, one per private key in set order: the first is
   * used to derive, all are tried to recognise (instances mid-rotation may derive with another).
   */
  refreshSecrets: Buffer[];
}

const refreshSecretOf = (privateKey: string): Buffer =>
  Buffer.from(hkdfSync('sha256', Buffer.from(privateKey, 'base64url'), 'keel', 'refresh-token successor', 32));

const algorithmOf = (jwk: StoredJwk): SigningAlgorithm => jwk.alg ?? (jwk.crv === 'Ed25519' ? 'EdDSA' : 'ES256');

/** A new private JWK set with one key (what `pnpm keys:generate` prints). */
export async function generateJwkSet(algorithm: SigningAlgorithm): Promise<{ keys: JWK[] }> {
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true, ...(algorithm === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = await exportJWK(privateKey);
  const kid = `${algorithm.toLowerCase()}-${new Date().toISOString().slice(0, 10)}-${Math.random().toString(36).slice(2, 8)}`;
  return { keys: [{ ...jwk, kid, alg: algorithm, use: 'sig' }] };
}

export class KeyConfigError extends Error {
  override name = 'KeyConfigError';
}

/** Checks a JWK set (JSON text) without importing it: the keys, or a KeyConfigError saying what is wrong. */
export function parseKeySet(json: string): StoredJwk[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new KeyConfigError('JWT_KEYS is not valid JSON: expected {"keys":[...]}');
  }
  const parsed = jwkSetSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KeyConfigError(
      `JWT_KEYS is not a valid JWK set: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const { keys } = parsed.data;
  const signer = keys.find((k) => k.d !== undefined);
  if (!signer) throw new KeyConfigError('JWT_KEYS has no private key (with "d") to sign with');
  const kids = new Set(keys.map((k) => k.kid));
  if (kids.size !== keys.length) throw new KeyConfigError('JWT_KEYS: every key needs a distinct kid');
  return keys;
}

/** What is wrong with a JWK set (JSON text), for config validation before any side effect; undefined when nothing. */
export function keySetProblem(json: string): string | undefined {
  try {
    parseKeySet(json);
    return undefined;
  } catch (error) {
    if (error instanceof KeyConfigError) return error.message;
    throw error;
  }
}

/** Parses and imports a JWK set (JSON text). */
export async function importKeySet(json: string): Promise<KeySet> {
  const keys = parseKeySet(json);
  const signer = keys.find((k) => k.d !== undefined);
  if (!signer) throw new KeyConfigError('JWT_KEYS has no private key (with "d") to sign with');

  const algorithm = algorithmOf(signer);
  const publicJwks: JWK[] = keys.map((k) => {
    const { d: _private, ...publicPart } = k;
    return { ...publicPart, alg: algorithmOf(k), use: 'sig' };
  });
  const signingKey = await importJWK({ ...signer, alg: algorithm }, algorithm);
  if (!(signingKey instanceof Uint8Array) && signingKey.type !== 'private') throw new KeyConfigError('the signing key is not private');
  return {
    algorithm,
    kid: signer.kid,
    signingKey,
    publicJwks,
    algorithms: [...new Set(keys.map(algorithmOf))],
    verificationKeys: createLocalJWKSet({ keys: publicJwks }),
    refreshSecrets: keys.flatMap((k) => (k.d === undefined ? [] : [refreshSecretOf(k.d)])),
  };
}

/**
 * The configured keys; in development a pair generated once and kept in JWT_KEYS_FILE (owner-only),
 * in test a fresh in-memory pair. Production cannot get here without JWT_KEYS (config refuses).
 */
export async function loadKeySet(config: Config, log: (message: string) => void): Promise<KeySet> {
  if (config.auth.keys) return importKeySet(config.auth.keys);
  if (config.env === 'test') return importKeySet(JSON.stringify(await generateJwkSet(config.auth.algorithm)));
  const file = config.auth.keysFile;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(await generateJwkSet(config.auth.algorithm), null, 2), { mode: 0o600 });
    log(`auth: generated a development signing key in ${file}`);
  }
  return importKeySet(readFileSync(file, 'utf8'));
}
