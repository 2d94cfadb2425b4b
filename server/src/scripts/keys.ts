/**
 * `pnpm keys:generate [EdDSA|ES256]`: prints a new private JWK set for JWT_KEYS. To rotate, put
 * the new key first in the existing set and keep the old one until its tokens have expired.
 */
import { generateJwkSet } from '../modules/auth/keys.js';

const algorithm = process.argv[2] ?? 'EdDSA';
if (algorithm !== 'EdDSA' && algorithm !== 'ES256') {
  process.stderr.write(`[keel] unknown algorithm "${algorithm}": use EdDSA (default) or ES256\n`);
  process.exit(1);
}
process.stderr.write(`[keel] generated a ${algorithm} signing key; set JWT_KEYS to the JSON below (keep it secret)\n`);
process.stdout.write(`${JSON.stringify(await generateJwkSet(algorithm))}\n`);
