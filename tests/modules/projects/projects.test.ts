import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../../server/src/lib/pagination.js';
import { callerFor } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { trpcErrorOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();
const prisma = deps.database.prisma;

async function owner() {
  const user = await createUser(deps);
  return { user, caller: await callerFor(deps, user) };
}

describe('projects', () => {
  it('creates, reads, updates with the current version and archives a project', async () => {
    const { user, caller } = await owner();
    const created = await caller.projects.create({ name: '  Launch  ', description: 'Q4' });
    expect(created).toMatchObject({ name: 'Launch', description: 'Q4', ownerId: user.id, version: 1, archivedAt: null });
    expect(await caller.projects.byId({ id: created.id })).toEqual(created);
    const updated = await caller.projects.update({ id: created.id, version: 1, name: 'Launch v2' });
    expect(updated).toMatchObject({ name: 'Launch v2', description: 'Q4', version: 2 });
    const archived = await caller.projects.archive({ id: created.id, version: 2 });
    expect(archived.archivedAt).toBeInstanceOf(Date);
    expect((await caller.projects.list()).items.map((p) => p.id)).not.toContain(created.id);
    expect((await caller.projects.list({ includeArchived: true })).items.map((p) => p.id)).toContain(created.id);
  });

  it('refuses a stale version with CONFLICT and writes nothing', async () => {
    const { caller } = await owner();
    const project = await caller.projects.create({ name: 'Versioned' });
    await caller.projects.update({ id: project.id, version: 1, description: 'first writer' });
    const error = await trpcErrorOf(caller.projects.update({ id: project.id, version: 1, description: 'second writer' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.cause).toMatchObject({ reason: 'STALE_VERSION', fieldErrors: { version: ['is stale'] } });
    expect(await prisma.project.findUniqueOrThrow({ where: { id: project.id } })).toMatchObject({
      description: 'first writer',
      version: 2,
    });
  });

  it('keeps names unique per owner: a duplicate is a CONFLICT naming the field, another owner may reuse it', async () => {
    const a = await owner();
    const b = await owner();
    await a.caller.projects.create({ name: 'Roadmap' });
    const error = await trpcErrorOf(a.caller.projects.create({ name: 'Roadmap' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('A record with this name already exists.');
    expect(error.cause).toMatchObject({ fieldErrors: { name: ['already exists'] } });
    await expect(b.caller.projects.create({ name: 'Roadmap' })).resolves.toMatchObject({ name: 'Roadmap' });
  });

  it('deletes a project with all its tasks in one transaction', async () => {
    const { caller } = await owner();
    const project = await caller.projects.create({ name: 'Doomed' });
    for (const title of ['one', 'two', 'three']) await caller.tasks.create({ projectId: project.id, title });
    expect(await caller.projects.delete({ id: project.id, version: 1 })).toEqual({ ok: true, deletedTasks: 3 });
    expect(await prisma.project.count({ where: { id: project.id } })).toBe(0);
    expect(await prisma.task.count({ where: { projectId: project.id } })).toBe(0);
  });

  it('leaves project and tasks untouched when the delete fails half way (stale version)', async () => {
    const { caller } = await owner();
    const project = await caller.projects.create({ name: 'Survivor' });
    await caller.tasks.create({ projectId: project.id, title: 'keep me' });
    await caller.projects.update({ id: project.id, version: 1, name: 'Survivor 2' });
    // The tasks are deleted first inside the transaction; the stale version fails the second step.
    expect((await trpcErrorOf(caller.projects.delete({ id: project.id, version: 1 }))).code).toBe('CONFLICT');
    expect(await prisma.task.count({ where: { projectId: project.id } })).toBe(1);
  });

  it("lets an admin read anyone's project but not change it", async () => {
    const { caller } = await owner();
    const project = await caller.projects.create({ name: 'Audited' });
    const admin = await callerFor(deps, await createUser(deps, { role: 'ADMIN' }));
    await expect(admin.projects.byId({ id: project.id })).resolves.toMatchObject({ name: 'Audited' });
    expect((await trpcErrorOf(admin.projects.update({ id: project.id, version: 1, name: 'Hijacked' }))).code).toBe('FORBIDDEN');
    expect((await admin.projects.list({ ownerId: project.ownerId })).items.map((p) => p.id)).toEqual([project.id]);
  });

  it("refuses a user listing another user's projects", async () => {
    const a = await owner();
    const b = await owner();
    expect((await trpcErrorOf(b.caller.projects.list({ ownerId: a.user.id }))).code).toBe('FORBIDDEN');
  });

  it('paginates newest first with an opaque cursor, and inserts between pages cause no duplicate or gap', async () => {
    const { caller } = await owner();
    // Each creation one second after the previous one: a strictly increasing sort key.
    let tick = Date.now();
    const timed = db.deps({
      now: () => {
        tick += 1000;
        return new Date(tick);
      },
    });
    const existing: string[] = [];
    const { user: pager, caller: pagerCaller } = await owner();
    for (let i = 0; i < 7; i++)
      existing.push((await timed.services.projects.create({ id: pager.id, role: 'USER', sessionId: pager.id }, { name: `p${i}` })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await pagerCaller.projects.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((p) => p.id));
      // Someone inserts while we page.
      await timed.services.projects.create({ id: pager.id, role: 'USER', sessionId: pager.id }, { name: `late${pages}` });
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...existing].reverse());
    expect(pages).toBe(3);
    expect((await trpcErrorOf(caller.projects.list({ cursor: 'not-a-cursor' }))).code).toBe('BAD_REQUEST');
  });

  it('bounds every input: unknown keys, long names, bad ids and limits are BAD_REQUEST with field errors', async () => {
    const { caller } = await owner();
    const unknownKey = await trpcErrorOf(caller.projects.create({ name: 'x', owner: 'me' } as never));
    expect(unknownKey.code).toBe('BAD_REQUEST');
    const long = await trpcErrorOf(caller.projects.create({ name: 'x'.repeat(101) }));
    expect(long.code).toBe('BAD_REQUEST');
    expect((await trpcErrorOf(caller.projects.byId({ id: 'not-a-uuid' }))).code).toBe('BAD_REQUEST');
    expect((await trpcErrorOf(caller.projects.list({ limit: 101 }))).code).toBe('BAD_REQUEST');
    expect((await trpcErrorOf(caller.projects.list({ limit: 0 }))).code).toBe('BAD_REQUEST');
  });

  it('answers BAD_REQUEST, never a 500, for input the database could not take', async () => {
    const { caller } = await owner();
    // PostgreSQL text cannot hold NUL.
    const nul = await trpcErrorOf(caller.projects.create({ name: 'a\u0000b' }));
    expect(nul.code).toBe('BAD_REQUEST');
    expect(nul.cause).toMatchObject({ issues: [{ path: ['name'], message: 'must not contain NUL characters' }] });
    // A crafted cursor holding a timestamp PostgreSQL cannot take (year 0; tasks.test.ts crafts positions).
    const crafted = encodeCursor({ key: new Date('0000-01-01T00:00:00Z'), id: '00000000-0000-4000-8000-000000000000' });
    expect((await trpcErrorOf(caller.projects.list({ cursor: crafted }))).code).toBe('BAD_REQUEST');
    // An input JSON cannot write (superjson carries BigInt): a validation error, not a crash in the batching middleware.
    expect((await trpcErrorOf(caller.projects.list({ limit: 5n as unknown as number }))).code).toBe('BAD_REQUEST');
  });
});
