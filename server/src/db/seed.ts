import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { hashPassword, verifyPassword } from '../lib/password.js';
import type { PrismaClient } from './client.js';

export interface SeedResult {
  admin: { email: string; created: boolean; generatedPassword?: string } | undefined;
}

const DEV_ADMIN_EMAIL = 'admin@keel.local';

/**
 * Idempotent: running it twice (or on several instances at once) changes nothing. The first admin comes from ADMIN_EMAIL and
 * ADMIN_PASSWORD; in development without them, one admin is created with a generated password
 * that is printed once. `register` never creates admins, and an account that already holds
 * ADMIN_EMAIL is promoted only if its password is ADMIN_PASSWORD.
 */
export async function seed(db: PrismaClient, config: Config, log: (message: string) => void): Promise<SeedResult> {
  const result: SeedResult = { admin: undefined };
  const email = config.seed.adminEmail ?? (config.env === 'development' ? DEV_ADMIN_EMAIL : undefined);
  if (email) result.admin = await seedAdmin(db, config, email, log);
  if (config.seed.demoData) await seedDemoData(db, config, log);
  return result;
}

/**
 * Safe with several instances starting at once: the row is inserted with ON CONFLICT DO NOTHING
 * (the unique email decides), so exactly one instance creates it and every other one finds it.
 * Logs one line whatever happened.
 */
async function seedAdmin(
  db: PrismaClient,
  config: Config,
  email: string,
  log: (message: string) => void,
): Promise<NonNullable<SeedResult['admin']>> {
  if (!(await db.user.findUnique({ where: { email }, select: { id: true } }))) {
    const generated = config.seed.adminPassword ? undefined : randomBytes(12).toString('base64url');
    const password = config.seed.adminPassword ?? (generated as string);
    const { count } = await db.user.createMany({
      data: [
        {
          email,
          name: 'Administrator',
          role: 'ADMIN',
          emailVerified: true,
          passwordHash: await hashPassword(password, config.passwords),
        },
      ],
      skipDuplicates: true,
    });
    if (count === 1) {
      log(
        generated
          ? `seed: created admin ${email} with generated password ${generated} (shown once; set ADMIN_EMAIL/ADMIN_PASSWORD to choose)`
          : `seed: created admin ${email}`,
      );
      return { email, created: true, ...(generated ? { generatedPassword: generated } : {}) };
    }
    // Another instance created it between our read and our insert: what follows applies.
  }
  const existing = await db.user.findUniqueOrThrow({ where: { email }, select: { id: true, role: true, passwordHash: true } });
  if (existing.role === 'ADMIN') {
    log(`seed: admin ${email} already present`);
    return { email, created: false };
  }
  // Anyone may have registered that address before the seed ran: promote the account only when
  // its password is ADMIN_PASSWORD, which proves it is the operator's.
  const provenOwn =
    config.seed.adminPassword !== undefined && (await verifyPassword(existing.passwordHash, config.seed.adminPassword, config.passwords));
  if (provenOwn) {
    await db.user.update({ where: { id: existing.id }, data: { role: 'ADMIN' } });
    log(`seed: promoted the existing account ${email} to admin`);
  } else {
    log(
      `seed: WARNING: ${email} is already registered with another password, so it was NOT made an admin. ` +
        'Choose another ADMIN_EMAIL, or promote the account yourself once you know it is yours (users.setRole).',
    );
  }
  return { email, created: false };
}

async function seedDemoData(db: PrismaClient, config: Config, log: (message: string) => void): Promise<void> {
  const email = 'demo@keel.local';
  if (await db.user.findUnique({ where: { email }, select: { id: true } })) return;
  const password = randomBytes(9).toString('base64url');
  // ON CONFLICT DO NOTHING: of two processes seeding at once, one creates the demo data.
  const { count } = await db.user.createMany({
    data: [{ email, name: 'Demo User', emailVerified: true, passwordHash: await hashPassword(password, config.passwords) }],
    skipDuplicates: true,
  });
  if (count === 0) return;
  const user = await db.user.findUniqueOrThrow({ where: { email }, select: { id: true } });
  await db.project.create({
    data: {
      ownerId: user.id,
      name: 'Getting started',
      description: 'A demo project: rename it, add tasks, move them around.',
      tasks: {
        create: [
          { title: 'Open Prisma Studio with pnpm studio', status: 'DONE', position: 0 },
          { title: 'Call projects.list with the demo user', status: 'IN_PROGRESS', position: 1 },
          { title: 'Add a feature module of your own', status: 'TODO', position: 2 },
        ],
      },
    },
  });
  log(`seed: created demo user ${email} with password ${password} and a demo project (development only)`);
}
