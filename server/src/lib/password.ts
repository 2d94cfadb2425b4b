import { type Algorithm, hash, verify } from '@node-rs/argon2';
import type { Config } from '../config.js';

/** `Algorithm.Argon2id`: the package exports a const enum, which isolated modules cannot read. */
const ARGON2ID = 2 as Algorithm;

export type PasswordParams = Config['passwords'];

/**
 * argon2id through @node-rs/argon2, which hashes on libuv's thread pool: the event loop keeps
 * serving other requests while a hash is computed.
 */
export function hashPassword(password: string, params: PasswordParams): Promise<string> {
  return hash(password, {
    algorithm: ARGON2ID,
    memoryCost: params.memoryKib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  });
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false; // a malformed stored hash never matches
  }
}

/** True when a stored hash was made with other parameters than the configured ones (rehash on login). */
export function needsRehash(passwordHash: string, params: PasswordParams): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash);
  if (!match) return true;
  return Number(match[1]) !== params.memoryKib || Number(match[2]) !== params.iterations || Number(match[3]) !== params.parallelism;
}
