/**
 * The machine's raw password-verification rate: the ceiling any login throughput is measured
 * against. Same library and parameters as the server (its own `hashPassword` / `verifyPassword`).
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../../server/src/config.js';
import { hashPassword, verifyPassword } from '../../server/src/lib/password.js';

export interface VerifyRate {
  verifiesPerSecond: number;
  verifies: number;
  seconds: number;
  concurrency: number;
  params: Config['passwords'];
}

/**
 * Keeps `concurrency` verifications in flight (one per libuv thread-pool thread: @node-rs/argon2
 * runs there) for about `durationMs`, and counts the ones that completed.
 */
export async function measureVerifyRate(params: Config['passwords'], concurrency: number, durationMs: number): Promise<VerifyRate> {
  const password = 'a sturdy bench passphrase';
  const hash = await hashPassword(password, params);
  // Warm-up: first calls load the native module and allocate the memory blocks.
  await Promise.all(Array.from({ length: concurrency }, () => verifyPassword(hash, password, { concurrency })));
  let verifies = 0;
  const started = performance.now();
  const end = started + durationMs;
  const lane = async () => {
    while (performance.now() < end) {
      if (!(await verifyPassword(hash, password, { concurrency }))) throw new Error('argon2 verify of a fresh hash failed');
      verifies += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { verifiesPerSecond: verifies / seconds, verifies, seconds, concurrency, params };
}
