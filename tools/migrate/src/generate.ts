/**
 * `pnpm db:generate` (also run on install, build and test): the Prisma client from
 * prisma/schema.prisma, offline (see tools/migrate/src/prisma-generate.ts).
 */
import { generatePrismaClient } from './prisma-generate.js';

console.log('[keel] generating the Prisma client from prisma/schema.prisma');
try {
  await generatePrismaClient();
} catch {
  console.error('[keel] prisma generate failed: fix the error above (schema syntax?) and run `pnpm db:generate`');
  process.exit(1);
}
