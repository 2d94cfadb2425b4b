import { describe, expect, it } from 'vitest';
import { hashPassword, needsRehash, verifyPassword } from './password.js';

const params = { memoryKib: 19_456, iterations: 2, parallelism: 1 };

describe('passwords', () => {
  it('hashes with argon2id and the configured parameters, and verifies', async () => {
    const hash = await hashPassword('correct horse battery', params);
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(hash, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(hash, 'wrong')).toBe(false);
  });

  it('never matches a malformed stored hash', async () => {
    expect(await verifyPassword('not-a-hash', 'x')).toBe(false);
  });

  it('asks for a rehash when the parameters changed', async () => {
    const hash = await hashPassword('pw-123456', params);
    expect(needsRehash(hash, params)).toBe(false);
    expect(needsRehash(hash, { ...params, iterations: 3 })).toBe(true);
    expect(needsRehash('$2b$10$bcrypt', params)).toBe(true);
  });
});
