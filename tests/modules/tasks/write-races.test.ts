/**
 * Writes that race: another transaction (a raw pg client here) changes a row and holds its lock
 * while a procedure is on its way; the procedure must end up waiting for it and then honour what
 * it committed. "Waiting" is read from PostgreSQL itself (pg_stat_activity), not guessed by time.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { callerFor } from '../../support/caller.js';
import { useTestDatabase } from '../../support/database.js';
import { codeOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();
const prisma = deps.database.prisma;

const clients: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((client) => client.end().catch(() => {})));
});

/** Runs `statements` in a transaction of its own and keeps it (and its locks) open until `commit()`. */
async function openTransaction(statements: [text: string, values: unknown[]][]) {
  const client = new pg.Client({ connectionString: db.url });
  clients.push(client);
  await client.connect();
  await client.query('BEGIN');
  for (const [text, values] of statements) await client.query(text, values);
  return { commit: () => client.query('COMMIT') };
}

/** Resolves once another session of this database waits for a lock (polls PostgreSQL's own view). */
async function someoneWaitsForALock(): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [row] = await prisma.$queryRaw<{ waiting: number }[]>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    if ((row?.waiting ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error('no session started waiting for a lock within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function projectWithTasks(titles: string[]) {
  const user = await createUser(deps);
  const caller = await callerFor(deps, user);
  const project = await caller.projects.create({ name: `Races ${Math.random()}` });
  const tasks = [];
  for (const title of titles) tasks.push(await caller.tasks.create({ projectId: project.id, title }));
  return { caller, project, tasks };
}

/** [title, position, version] of a project's tasks, in order. */
const tasksOf = async (projectId: string) =>
  (await prisma.task.findMany({ where: { projectId }, orderBy: { position: 'asc' } })).map((t) => [t.title, t.position, t.version]);

/**
 * Runs `call` while another transaction holds an edit of task `taskId` (title and version), and
 * commits that edit once `call` waits for it: the outcome of `call`.
 */
async function whileEditedElsewhere(taskId: string, call: () => Promise<unknown>) {
  const other = await openTransaction([["UPDATE tasks SET title = 'edited elsewhere', version = version + 1 WHERE id = $1", [taskId]]]);
  const outcome = codeOf(call());
  await someoneWaitsForALock();
  await other.commit();
  return outcome;
}

describe('writes racing other writes', () => {
  it('a move whose task is updated meanwhile writes nothing: CONFLICT, the update and all positions stay', async () => {
    const { caller, project, tasks } = await projectWithTasks(['a', 'b', 'c']);
    const c = tasks[2] as (typeof tasks)[number];
    expect(await whileEditedElsewhere(c.id, () => caller.tasks.move({ id: c.id, version: 1, position: 0 }))).toBe('CONFLICT');
    expect(await tasksOf(project.id)).toEqual([
      ['a', 0, 1],
      ['b', 1, 1],
      ['edited elsewhere', 2, 2],
    ]);
  });

  it('a delete whose task is updated meanwhile deletes nothing: CONFLICT, the update stays', async () => {
    const { caller, project, tasks } = await projectWithTasks(['a', 'b']);
    const a = tasks[0] as (typeof tasks)[number];
    expect(await whileEditedElsewhere(a.id, () => caller.tasks.delete({ id: a.id, version: 1 }))).toBe('CONFLICT');
    expect(await tasksOf(project.id)).toEqual([
      ['edited elsewhere', 0, 2],
      ['b', 1, 1],
    ]);
  });

  it('a task added while its project is being deleted goes with it (no foreign-key failure, nothing left)', async () => {
    const { caller, project } = await projectWithTasks(['a', 'b']);
    // As tasks.create does: the project row locked first, then the task inserted.
    const other = await openTransaction([
      ['SELECT 1 FROM projects WHERE id = $1 FOR UPDATE', [project.id]],
      ["INSERT INTO tasks (id, project_id, title, position, updated_at) VALUES (gen_random_uuid(), $1, 'late', 2, now())", [project.id]],
    ]);
    const remove = caller.projects.delete({ id: project.id, version: 1 });
    await someoneWaitsForALock();
    await other.commit();
    expect(await remove).toEqual({ ok: true, deletedTasks: 3 });
    expect(await prisma.task.count({ where: { projectId: project.id } })).toBe(0);
    expect(await prisma.project.count({ where: { id: project.id } })).toBe(0);
  });
});
