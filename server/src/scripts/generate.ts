/**
 * `prisma generate` without network. The CLI insists on locating its native schema engine even
 * though generation never runs it; pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file
 * satisfies that check (see docs/decisions/0003-offline-migrations.md).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const prismaCli = require.resolve('prisma/build/index.js');

console.log('[keel] generating the Prisma client from prisma/schema.prisma');
const result = spawnSync(process.execPath, [prismaCli, 'generate'], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  },
});
if (result.status !== 0) {
  console.error('[keel] prisma generate failed: fix the error above (schema syntax?) and run `pnpm db:generate`');
  process.exit(result.status ?? 1);
}
