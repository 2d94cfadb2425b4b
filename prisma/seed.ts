/**
 * `pnpm db:seed` (and `prisma db seed`): the idempotent seed on the configured database, or on the
 * embedded one when DATABASE_URL is unset. The server runs the same seed at start-up in development.
 */
import { ConfigError, loadConfig } from '../server/src/config.js';
import { createDatabase } from '../server/src/db/client.js';
import { ensureDatabase } from '../server/src/db/embedded.js';
import { seed } from '../server/src/db/seed.js';
import { redactUrl } from '../server/src/db/wait.js';
import { createLogger } from '../server/src/logger.js';

const log = (message: string) => process.stdout.write(`[keel] ${message}\n`);

async function main(): Promise<void> {
  const config = loadConfig();
  const handle = await ensureDatabase({ url: config.database.url, dir: config.database.embeddedDir, log });
  log(`seeding ${redactUrl(handle.url)}`);
  const database = createDatabase(handle.url, config.database, createLogger({ ...config, log: { ...config.log, level: 'warn' } }));
  try {
    const result = await seed(database.prisma, config, log);
    log(
      result.admin
        ? `admin ${result.admin.email} ${result.admin.created ? 'created' : 'already present'}`
        : 'no admin configured (set ADMIN_EMAIL and ADMIN_PASSWORD)',
    );
  } finally {
    await database.close();
    await handle.stop();
  }
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
  process.stderr.write(`[keel] seed failed: ${message}\n[keel] are the migrations applied? Run \`pnpm db:migrate\` first.\n`);
  process.exit(1);
});
