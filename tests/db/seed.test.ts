import { describe, expect, it } from 'vitest';
import { seed } from '../../server/src/db/seed.js';
import { hashPassword, verifyPassword } from '../../server/src/lib/password.js';
import { shouldSeed } from '../../server/src/server.js';
import { testConfig, useTestDatabase } from '../support/database.js';

const db = await useTestDatabase();
const prisma = db.database.prisma;
const quiet = () => {};

describe('seed', () => {
  it('creates the admin from ADMIN_EMAIL/ADMIN_PASSWORD once, and changes nothing on a second run', async () => {
    const config = testConfig(db.url, { ADMIN_EMAIL: 'Boss@Example.test', ADMIN_PASSWORD: 'a long admin passphrase' });
    const first = await seed(prisma, config, quiet);
    expect(first.admin).toEqual({ email: 'boss@example.test', created: true });
    const row = await prisma.user.findUniqueOrThrow({ where: { email: 'boss@example.test' } });
    expect(row).toMatchObject({ role: 'ADMIN', emailVerified: true, active: true });
    expect(await verifyPassword(row.passwordHash, 'a long admin passphrase', config.passwords)).toBe(true);
    const second = await seed(prisma, config, quiet);
    expect(second.admin).toEqual({ email: 'boss@example.test', created: false });
    expect(await prisma.user.count({ where: { email: 'boss@example.test' } })).toBe(1);
  });

  it('promotes an existing account named by ADMIN_EMAIL only when its password is ADMIN_PASSWORD', async () => {
    const config = testConfig(db.url, { ADMIN_EMAIL: 'promote@example.test', ADMIN_PASSWORD: 'a long admin passphrase' });
    await prisma.user.create({
      data: { email: 'promote@example.test', passwordHash: await hashPassword('a long admin passphrase', config.passwords) },
    });
    await seed(prisma, config, quiet);
    expect((await prisma.user.findUniqueOrThrow({ where: { email: 'promote@example.test' } })).role).toBe('ADMIN');
  });

  it('never promotes an account someone registered with ADMIN_EMAIL before the seed ran, and says so', async () => {
    const config = testConfig(db.url, { ADMIN_EMAIL: 'squatted@example.test', ADMIN_PASSWORD: 'a long admin passphrase' });
    await prisma.user.create({
      data: { email: 'squatted@example.test', passwordHash: await hashPassword("the squatter's own password", config.passwords) },
    });
    const lines: string[] = [];
    const result = await seed(prisma, config, (line) => lines.push(line));
    expect(result.admin).toEqual({ email: 'squatted@example.test', created: false });
    expect((await prisma.user.findUniqueOrThrow({ where: { email: 'squatted@example.test' } })).role).toBe('USER');
    expect(lines.join('\n')).toMatch(/squatted@example\.test is already registered with another password, so it was NOT made an admin/);
  });

  it('in development without ADMIN_EMAIL creates admin@keel.local with a generated password printed once, and demo data', async () => {
    const lines: string[] = [];
    const config = testConfig(db.url, { NODE_ENV: 'development' });
    const result = await seed(prisma, config, (line) => lines.push(line));
    const password = result.admin?.generatedPassword as string;
    expect(result.admin).toMatchObject({ email: 'admin@keel.local', created: true });
    expect(lines.some((line) => line.includes(password))).toBe(true);
    const admin = await prisma.user.findUniqueOrThrow({ where: { email: 'admin@keel.local' } });
    expect(await verifyPassword(admin.passwordHash, password, config.passwords)).toBe(true);
    const demo = await prisma.user.findUniqueOrThrow({
      where: { email: 'demo@keel.local' },
      include: { projects: { include: { tasks: true } } },
    });
    expect(demo.projects).toHaveLength(1);
    expect(demo.projects[0]?.tasks.map((t) => t.position).sort()).toEqual([0, 1, 2]);
    const again = await seed(prisma, config, (line) => lines.push(line));
    expect(again.admin).toEqual({ email: 'admin@keel.local', created: false });
    expect(await prisma.project.count({ where: { ownerId: demo.id } })).toBe(1);
  });

  it('outside development seeds no demo data and no generated admin', async () => {
    const before = await prisma.user.count();
    const result = await seed(prisma, testConfig(db.url), quiet);
    expect(result.admin).toBeUndefined();
    expect(await prisma.user.count()).toBe(before);
  });
});

describe('when the server seeds at start-up (shouldSeed)', () => {
  const url = 'postgresql://keel@127.0.0.1:5432/keel';
  it('in development on your own DATABASE_URL, in production only with ADMIN_EMAIL and ADMIN_PASSWORD, never in test without them', () => {
    expect(shouldSeed(testConfig(url, { NODE_ENV: 'development' }))).toBe(true);
    expect(shouldSeed(testConfig(url))).toBe(false);
    expect(shouldSeed(testConfig(url, { ADMIN_EMAIL: 'ops@example.test' }))).toBe(false);
    expect(shouldSeed(testConfig(url, { ADMIN_EMAIL: 'ops@example.test', ADMIN_PASSWORD: 'a long admin passphrase' }))).toBe(true);
  });
});
