import { describe, expect, it } from 'vitest';
import { admitPasswordWork, hashPassword, needsRehash, verifyPassword, withHashingSlot } from './password.js';

const params = { memoryKib: 19_456, iterations: 2, parallelism: 1, concurrency: 2, queue: 0, minScore: 3 };

describe('passwords', () => {
  it('hashes with argon2id and the configured parameters, and verifies', async () => {
    const hash = await hashPassword('correct horse battery', params);
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(hash, 'correct horse battery', params)).toBe(true);
    expect(await verifyPassword(hash, 'wrong', params)).toBe(false);
  });

  it('never matches a malformed stored hash', async () => {
    expect(await verifyPassword('not-a-hash', 'x', params)).toBe(false);
  });

  it('asks for a rehash when the parameters changed', async () => {
    const hash = await hashPassword('pw-123456', params);
    expect(needsRehash(hash, params)).toBe(false);
    expect(needsRehash(hash, { ...params, iterations: 3 })).toBe(true);
    expect(needsRehash('$2b$10$bcrypt', params)).toBe(true);
  });

  it('runs at most `limit` hashing jobs at once, and every queued one still completes', async () => {
    let running = 0;
    let peak = 0;
    const job = (i: number) =>
      withHashingSlot(2, async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        return i;
      });
    expect(await Promise.all(Array.from({ length: 7 }, (_, i) => job(i)))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(peak).toBe(2);
    expect(running).toBe(0);
  });

  it('frees its slot when a job fails', async () => {
    await expect(withHashingSlot(1, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(withHashingSlot(1, async () => 'next')).resolves.toBe('next');
  });

  it('admits concurrency + queue password operations at once, then refuses with a Retry-After until one ends', () => {
    const limits = { concurrency: 2, queue: 3 };
    const admitted = Array.from({ length: 5 }, () => admitPasswordWork(limits));
    expect(admitted.every((a) => a.admitted)).toBe(true);
    const refused = admitPasswordWork(limits);
    expect(refused).toEqual({ admitted: false, retryAfterSeconds: expect.any(Number) });
    expect(refused.admitted === false && refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);

    const first = admitted[0];
    if (!first?.admitted) throw new Error('expected an admission');
    first.release();
    first.release(); // idempotent: a second release frees nothing more
    const next = admitPasswordWork(limits);
    expect(next.admitted).toBe(true);
    expect(admitPasswordWork(limits).admitted).toBe(false);
    for (const a of [...admitted, next]) if (a.admitted) a.release();
  });
});
