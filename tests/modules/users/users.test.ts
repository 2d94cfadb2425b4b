import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../../server/src/db/client.js';
import { createAppDeps } from '../../../server/src/deps.js';
import { callerFor, callerWith, signIn } from '../../support/caller.js';
import { createScratchDatabase, testConfig, useTestDatabase } from '../../support/database.js';
import { codeOf, trpcErrorOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();

/** A database of its own, so "the last admin" is not disturbed by the admins of other tests. */
const lonely = await createScratchDatabase({ migrated: true });
const lonelyDatabase = createDatabase(lonely.url, testConfig(lonely.url).database, deps.logger);
const isolated = createAppDeps({ config: testConfig(lonely.url), database: lonelyDatabase, logger: deps.logger, keys: db.keys });
afterAll(async () => {
  await isolated.mailer.stop();
  await lonelyDatabase.close();
  await lonely.drop();
});

describe('admin user management', () => {
  it('lists users newest first, filtered by email prefix, name, role and active, with pagination', async () => {
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    await createUser(deps, { email: 'zoe.list@example.test', name: 'Zoe Lister' });
    await createUser(deps, { email: 'zack.list@example.test', name: 'Zack', active: false });
    await createUser(deps, { email: 'other@example.test', name: 'Listless Larry' });
    expect((await admin.users.list({ search: 'ZO' })).items.map((u) => u.email)).toEqual(['zoe.list@example.test']);
    expect((await admin.users.list({ search: 'listl' })).items.map((u) => u.email)).toEqual(['other@example.test']);
    expect((await admin.users.list({ search: 'z', active: false })).items.map((u) => u.email)).toEqual(['zack.list@example.test']);
    expect((await admin.users.list({ role: 'ADMIN' })).items.every((u) => u.role === 'ADMIN')).toBe(true);
    const first = await admin.users.list({ limit: 2 });
    const second = await admin.users.list({ limit: 2, cursor: first.nextCursor as string });
    expect(first.items).toHaveLength(2);
    expect(second.items.map((u) => u.id)).not.toContain(first.items[0]?.id);
    expect(first.items[0]?.createdAt.getTime()).toBeGreaterThanOrEqual(first.items[1]?.createdAt.getTime() ?? 0);
  });

  it('searches for %, _ and \\ as themselves, not as LIKE wildcards', async () => {
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    await createUser(deps, { email: 'wild_card@example.test', name: 'Wild_Card 100%' });
    await createUser(deps, { email: 'wildxcard@example.test', name: 'WildXCard 100 x' });
    await createUser(deps, { email: 'back\\slash@example.test', name: 'C:\\Users' });
    const emails = async (search: string) => (await admin.users.list({ search })).items.map((u) => u.email).sort();
    expect(await emails('wild_')).toEqual(['wild_card@example.test']);
    expect(await emails('100%')).toEqual(['wild_card@example.test']);
    expect(await emails('%')).toEqual(['wild_card@example.test']);
    expect(await emails('_')).toEqual(['wild_card@example.test']);
    expect(await emails('back\\')).toEqual(['back\\slash@example.test']);
    expect(await emails(':\\u')).toEqual(['back\\slash@example.test']);
  });

  it('reads one user by id, and NOT_FOUND for an unknown id', async () => {
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    const user = await createUser(deps, { email: 'byid@example.test' });
    expect(await admin.users.byId({ id: user.id })).toMatchObject({ email: 'byid@example.test', active: true, role: 'USER' });
    expect(await codeOf(admin.users.byId({ id: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');
  });

  it('promotes and demotes; a demotion ends the sessions that still carry the ADMIN role', async () => {
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    const user = await createUser(deps);
    expect((await admin.users.setRole({ id: user.id, role: 'ADMIN' })).role).toBe('ADMIN');
    const session = await signIn(deps, { id: user.id, role: 'ADMIN' });
    expect((await admin.users.setRole({ id: user.id, role: 'USER' })).role).toBe('USER');
    expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: session.refreshToken }))).toBe('UNAUTHORIZED');
  });

  it('deactivating a user revokes every one of their sessions at once, and they cannot log in', async () => {
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    const user = await createUser(deps);
    const sessions = await Promise.all([signIn(deps, user), signIn(deps, user)]);
    expect((await admin.users.setActive({ id: user.id, active: false })).active).toBe(false);
    expect(await deps.database.prisma.session.count({ where: { userId: user.id, revokedAt: null } })).toBe(0);
    for (const s of sessions) expect(await codeOf(callerWith(deps).auth.refresh({ refreshToken: s.refreshToken }))).toBe('UNAUTHORIZED');
    expect(await codeOf(callerWith(deps).auth.login({ email: user.email, password: user.password }))).toBe('FORBIDDEN');
    expect((await admin.users.setActive({ id: user.id, active: true })).active).toBe(true);
  });
});

describe('the last active admin', () => {
  it('can be neither demoted nor deactivated, even by two admins demoting each other at once', async () => {
    const [a, b] = [await createUser(isolated, { role: 'ADMIN' }), await createUser(isolated, { role: 'ADMIN' })];
    const own = { deps: isolated, callers: [await callerFor(isolated, a), await callerFor(isolated, b)] as const };
    const results = await Promise.all([
      codeOf(own.callers[0].users.setRole({ id: b.id, role: 'USER' })),
      codeOf(own.callers[1].users.setRole({ id: a.id, role: 'USER' })),
    ]);
    expect(results.sort()).toEqual(['CONFLICT', 'OK']);
    const remaining = await own.deps.database.prisma.user.findMany({ where: { role: 'ADMIN', active: true } });
    expect(remaining).toHaveLength(1);
    const lastId = (remaining[0] as { id: string }).id;
    const last = await callerFor(own.deps, { id: lastId, role: 'ADMIN' });
    expect(await codeOf(last.users.setActive({ id: lastId, active: false }))).toBe('CONFLICT');
    expect(await codeOf(last.users.setRole({ id: lastId, role: 'USER' }))).toBe('CONFLICT');
    expect((await trpcErrorOf(last.users.setRole({ id: lastId, role: 'USER' }))).cause).toMatchObject({ reason: 'LAST_ADMIN' });
  });
});
