import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../../server/src/lib/pagination.js';
import { callerFor } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { codeOf, trpcErrorOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();

async function setup(titles: string[] = ['a', 'b', 'c', 'd']) {
  const user = await createUser(deps);
  const caller = await callerFor(deps, user);
  const project = await caller.projects.create({ name: `P ${Math.random()}` });
  const tasks = [];
  for (const title of titles) tasks.push(await caller.tasks.create({ projectId: project.id, title }));
  return { user, caller, project, tasks };
}

async function order(caller: Awaited<ReturnType<typeof callerFor>>, projectId: string): Promise<string[]> {
  const page = await caller.tasks.list({ projectId, limit: 100 });
  expect(page.items.map((t) => t.position)).toEqual(page.items.map((_, i) => i));
  return page.items.map((t) => t.title);
}

describe('tasks', () => {
  it('appends new tasks at the end, with status TODO by default and a due date', async () => {
    const { caller, project, tasks } = await setup(['first', 'second']);
    expect(tasks.map((t) => [t.title, t.position, t.status])).toEqual([
      ['first', 0, 'TODO'],
      ['second', 1, 'TODO'],
    ]);
    const due = new Date('2027-01-15T09:00:00Z');
    const third = await caller.tasks.create({ projectId: project.id, title: 'third', status: 'IN_PROGRESS', dueAt: due });
    expect(third).toMatchObject({ position: 2, status: 'IN_PROGRESS', dueAt: due });
  });

  it('updates with the current version and refuses a stale one without writing', async () => {
    const { caller, tasks } = await setup(['only']);
    const task = tasks[0] as (typeof tasks)[number];
    const done = await caller.tasks.update({ id: task.id, version: 1, status: 'DONE', description: 'finished' });
    expect(done).toMatchObject({ status: 'DONE', description: 'finished', version: 2 });
    expect(await codeOf(caller.tasks.update({ id: task.id, version: 1, title: 'late write' }))).toBe('CONFLICT');
    expect(await caller.tasks.byId({ id: task.id })).toMatchObject({ title: 'only', version: 2 });
  });

  it('filters the list by status and paginates by position without duplicates', async () => {
    const { caller, project, tasks } = await setup(['a', 'b', 'c', 'd', 'e']);
    await caller.tasks.update({ id: (tasks[1] as { id: string }).id, version: 1, status: 'DONE' });
    await caller.tasks.update({ id: (tasks[3] as { id: string }).id, version: 1, status: 'DONE' });
    expect((await caller.tasks.list({ projectId: project.id, status: 'DONE' })).items.map((t) => t.title)).toEqual(['b', 'd']);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof caller.tasks.list>> = await caller.tasks.list({
        projectId: project.id,
        limit: 2,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.items.map((t) => t.title));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('moves a task up and down within its project, keeping positions dense', async () => {
    const { caller, project, tasks } = await setup();
    const [a, , , d] = tasks as [(typeof tasks)[0], unknown, unknown, (typeof tasks)[0]];
    await caller.tasks.move({ id: d.id, version: 1, position: 0 });
    expect(await order(caller, project.id)).toEqual(['d', 'a', 'b', 'c']);
    await caller.tasks.move({ id: a.id, version: 1, position: 99 });
    expect(await order(caller, project.id)).toEqual(['d', 'b', 'c', 'a']);
  });

  it("moves a task into another of the owner's projects, closing the gap it leaves", async () => {
    const { caller, project, tasks } = await setup(['a', 'b', 'c']);
    const other = await caller.projects.create({ name: `Other ${Math.random()}` });
    await caller.tasks.create({ projectId: other.id, title: 'x' });
    const moved = await caller.tasks.move({ id: (tasks[1] as { id: string }).id, version: 1, projectId: other.id, position: 0 });
    expect(moved).toMatchObject({ projectId: other.id, position: 0, version: 2 });
    expect(await order(caller, project.id)).toEqual(['a', 'c']);
    expect(await order(caller, other.id)).toEqual(['b', 'x']);
  });

  it("refuses to move a task into another user's project, as if it did not exist", async () => {
    const mine = await setup(['mine']);
    const theirs = await setup(['theirs']);
    const code = await codeOf(
      mine.caller.tasks.move({ id: (mine.tasks[0] as { id: string }).id, version: 1, projectId: theirs.project.id, position: 0 }),
    );
    expect(code).toBe('NOT_FOUND');
    expect(await order(theirs.caller, theirs.project.id)).toEqual(['theirs']);
  });

  it('deletes a task and closes the gap; a stale version deletes nothing', async () => {
    const { caller, project, tasks } = await setup(['a', 'b', 'c']);
    const b = tasks[1] as { id: string };
    await caller.tasks.update({ id: b.id, version: 1, title: 'b2' });
    expect(await codeOf(caller.tasks.delete({ id: b.id, version: 1 }))).toBe('CONFLICT');
    await caller.tasks.delete({ id: b.id, version: 2 });
    expect(await order(caller, project.id)).toEqual(['a', 'c']);
  });

  it('keeps positions unique when tasks are created concurrently', async () => {
    const { caller, project } = await setup([]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => caller.tasks.create({ projectId: project.id, title: `t${i}` })));
    const positions = (await caller.tasks.list({ projectId: project.id })).items.map((t) => t.position);
    expect(positions).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('refuses due dates PostgreSQL cannot store (or no plan needs) with a field error', async () => {
    const { caller, project } = await setup([]);
    for (const dueAt of [new Date(-8.64e15), new Date('0000-01-01T00:00:00Z'), new Date('1850-01-01T00:00:00Z')]) {
      expect(await codeOf(caller.tasks.create({ projectId: project.id, title: 't', dueAt }))).toBe('BAD_REQUEST');
    }
    await expect(
      caller.tasks.create({ projectId: project.id, title: 't', dueAt: new Date('2030-01-01T00:00:00Z') }),
    ).resolves.toBeDefined();
  });

  it('answers a crafted cursor with a position the database cannot compare with BAD_REQUEST, not a 500', async () => {
    const { caller, project } = await setup(['a']);
    const crafted = (key: number) => encodeCursor({ key, id: '00000000-0000-4000-8000-000000000000' });
    for (const key of [0.5, 3e9, -1]) {
      expect(await codeOf(caller.tasks.list({ projectId: project.id, cursor: crafted(key) }))).toBe('BAD_REQUEST');
    }
  });

  it('freezes the tasks of an archived project (reason ARCHIVED)', async () => {
    const { caller, project, tasks } = await setup(['a']);
    await caller.projects.archive({ id: project.id, version: 1 });
    expect(await codeOf(caller.tasks.create({ projectId: project.id, title: 'late' }))).toBe('CONFLICT');
    expect(await codeOf(caller.tasks.update({ id: (tasks[0] as { id: string }).id, version: 1, title: 'late' }))).toBe('CONFLICT');
    const refused = await trpcErrorOf(caller.tasks.update({ id: (tasks[0] as { id: string }).id, version: 1, title: 'late' }));
    expect(refused.cause).toMatchObject({ reason: 'ARCHIVED' });
    expect((await trpcErrorOf(caller.tasks.create({ projectId: project.id, title: 'late' }))).cause).toMatchObject({ reason: 'ARCHIVED' });
    await expect(caller.tasks.list({ projectId: project.id })).resolves.toMatchObject({ items: [{ title: 'a' }] });
  });
});
