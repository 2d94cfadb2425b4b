import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { hashPassword, verifyPassword } from '../lib/password.js';
import type { PrismaClient } from './client.js';

export interface SeedResult {
  admin: { email: string; created: boolean; generatedPassword?: string } | undefined;
}

const DEV_ADMIN_EMAIL = 'admin@keel.local';

/**
 * Idempotent: running it twice changes nothing. The first admin comes from ADMIN_EMAIL and
 * ADMIN_PASSWORD; in development without them, one admin is created with a generated password
 * that is printed once. `register` never creates admins, and an account that already holds
 * ADMIN_EMAIL is promoted only if its password is ADMIN_PASSWORD.
 */
export async function seed(db: PrismaClient, config: Config, log: (message: string) => void): Promise<SeedResult> {
  const result: SeedResult = { admin: undefined };
  const email = config.seed.adminEmail ?? (config.env === 'development' ? DEV_ADMIN_EMAIL : undefined);
  if (email) {
    const existing = await db.user.findUnique({ where: { email }, select: { id: true, role: true, passwordHash: true } });
    if (existing) {
      // Anyone may have registered that address before the seed ran: promote the account only when
      // its password is ADMIN_PASSWORD, which proves it is the operator's.
      const provenOwn =
        config.seed.adminPassword !== undefined &&
        (await verifyPassword(existing.passwordHash, config.seed.adminPassword, config.passwords));
      if (existing.role !== 'ADMIN' && provenOwn) {
        await db.user.update({ where: { id: existing.id }, data: { role: 'ADMIN' } });
        log(`seed: promoted the existing account ${email} to admin`);
      } else if (existing.role !== 'ADMIN') {
        log(
          `seed: WARNING: ${email} is already registered with another password, so it was NOT made an admin. ` +
            'Choose another ADMIN_EMAIL, or promote the account yourself once you know it is yours (users.setRole).',
        );
      }
      result.admin = { email, created: false };
    } else {
      const generated = config.seed.adminPassword ? undefined : randomBytes(12).toString('base64url');
      const password = config.seed.adminPassword ?? (generated as string);
      await db.user.create({
        data: {
          email,
          name: 'Administrator',
          role: 'ADMIN',
          emailVerified: true,
          passwordHash: await hashPassword(password, config.passwords),
        },
      });
      result.admin = { email, created: true, ...(generated ? { generatedPassword: generated } : {}) };
      log(
        generated
          ? `seed: created admin ${email} with generated password ${generated} (shown once; set ADMIN_EMAIL/ADMIN_PASSWORD to choose)`
          : `seed: created admin ${email}`,
      );
    }
  }
  if (config.seed.demoData) await seedDemoData(db, config, log);
  return result;
}

async function seedDemoData(db: PrismaClient, config: Config, log: (message: string) => void): Promise<void> {
  const email = 'demo@keel.local';
  if (await db.user.findUnique({ where: { email }, select: { id: true } })) return;
  const password = randomBytes(9).toString('base64url');
  const user = await db.user.create({
    data: { email, name: 'Demo User', emailVerified: true, passwordHash: await hashPassword(password, config.passwords) },
    select: { id: true },
  });
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
