/**
 * The authorization matrix, for every procedure of projects, tasks and users. The list of
 * procedures comes from the router itself: a new procedure without a case here fails the first test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { appRouter } from '../../server/src/router.js';
import { callerFor } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { codeOf } from '../support/errors.js';
import { createUser } from '../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();

interface Rows {
  projectId: string;
  taskId: string;
  userId: string;
}

/** A valid input for each procedure, aimed at user A's rows. */
const inputs: Record<string, (rows: Rows) => unknown> = {
  'projects.list': () => ({}),
  'projects.byId': (r) => ({ id: r.projectId }),
  'projects.create': () => ({ name: `p-${Math.random()}` }),
  'projects.update': (r) => ({ id: r.projectId, version: 1, name: 'renamed' }),
  'projects.archive': (r) => ({ id: r.projectId, version: 1 }),
  'projects.delete': (r) => ({ id: r.projectId, version: 1 }),
  'tasks.list': (r) => ({ projectId: r.projectId }),
  'tasks.byId': (r) => ({ id: r.taskId }),
  'tasks.create': (r) => ({ projectId: r.projectId, title: 'intruder' }),
  'tasks.update': (r) => ({ id: r.taskId, version: 1, title: 'renamed' }),
  'tasks.move': (r) => ({ id: r.taskId, version: 1, position: 0 }),
  'tasks.delete': (r) => ({ id: r.taskId, version: 1 }),
  'users.list': () => ({}),
  'users.byId': (r) => ({ id: r.userId }),
  'users.setRole': (r) => ({ id: r.userId, role: 'ADMIN' }),
  'users.setActive': (r) => ({ id: r.userId, active: false }),
};

/** Procedures that address one of A's rows: user B must get NOT_FOUND, as if it did not exist. */
const ROW_PROCEDURES = Object.keys(inputs).filter((p) => !['projects.list', 'projects.create'].includes(p) && !p.startsWith('users.'));

const domainProcedures = Object.keys(appRouter._def.procedures).filter((path) => /^(projects|tasks|users)\./.test(path));

type Caller = Awaited<ReturnType<typeof callerFor>>;
function call(caller: Caller, path: string, input: unknown): Promise<unknown> {
  const fn = path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], caller) as (
    input: unknown,
  ) => Promise<unknown>;
  return fn(input);
}

let rows: Rows;
let anonymous: Caller;
let userB: Caller;

beforeAll(async () => {
  const a = await createUser(deps);
  const project = await deps.services.projects.create({ id: a.id, role: 'USER', sessionId: a.id }, { name: 'A private project' });
  const task = await deps.services.tasks.create(
    { id: a.id, role: 'USER', sessionId: a.id },
    { projectId: project.id, title: 'A private task' },
  );
  rows = { projectId: project.id, taskId: task.id, userId: a.id };
  anonymous = await callerFor(deps, null);
  userB = await callerFor(deps, await createUser(deps));
});

describe('authorization of every domain procedure', () => {
  it('has a case for every procedure of projects, tasks and users', () => {
    expect(Object.keys(inputs).sort()).toEqual([...domainProcedures].sort());
  });

  it.each(domainProcedures)('%s: unauthenticated -> UNAUTHORIZED', async (path) => {
    const input = inputs[path];
    expect(input).toBeDefined();
    expect(await codeOf(call(anonymous, path, input?.(rows)))).toBe('UNAUTHORIZED');
  });

  it.each(domainProcedures.filter((p) => p.startsWith('users.')))('%s: a USER -> FORBIDDEN', async (path) => {
    expect(await codeOf(call(userB, path, inputs[path]?.(rows)))).toBe('FORBIDDEN');
  });

  it.each(ROW_PROCEDURES)("%s: user B on user A's rows -> NOT_FOUND", async (path) => {
    expect(await codeOf(call(userB, path, inputs[path]?.(rows)))).toBe('NOT_FOUND');
  });

  it("leaves user A's rows untouched after every attempt", async () => {
    const project = await deps.database.prisma.project.findUniqueOrThrow({ where: { id: rows.projectId } });
    const task = await deps.database.prisma.task.findUniqueOrThrow({ where: { id: rows.taskId } });
    expect(project).toMatchObject({ name: 'A private project', version: 1, archivedAt: null });
    expect(task).toMatchObject({ title: 'A private task', version: 1, position: 0 });
    expect(await deps.database.prisma.task.count({ where: { projectId: rows.projectId } })).toBe(1);
  });
});
