/**
 * Tasks: they belong to a project, and so to its owner. Positions are dense (0..n-1) per project;
 * every write that moves positions locks the project rows involved, so concurrent creates and
 * moves never produce duplicates or holes.
 */
import type { z } from 'zod';
import type { Db, PrismaClient } from '../../db/client.js';
import { notFound } from '../../lib/errors.js';
import { type Page, paginate, rowsAfter } from '../../lib/pagination.js';
import { explainStaleWrite, writeAtVersion } from '../../lib/versioned-write.js';
import type { AuthUser } from '../auth/types.js';
import { explainMissedWrite, projectArchived, readableBy } from '../projects/service.js';
import type { createTaskInput, listTasksInput, moveTaskInput, Task, updateTaskInput } from './schemas.js';

const taskSelect = {
  id: true,
  projectId: true,
  title: true,
  description: true,
  status: true,
  dueAt: true,
  position: true,
  version: true,
  createdAt: true,
  updatedAt: true,
} as const;

/** Why a write to a task matched no row: as for any versioned row (lib/versioned-write.ts), or its project is archived. */
async function explainMissedTaskWrite(db: Db, user: AuthUser, id: string) {
  const row = await db.task.findFirst({
    where: { id, project: readableBy(user) },
    select: { version: true, project: { select: { ownerId: true, archivedAt: true } } },
  });
  const ownedByCaller = row?.project.ownerId === user.id;
  if (row && ownedByCaller && row.project.archivedAt) return projectArchived();
  return explainStaleWrite('task', row && { ownedByCaller, version: row.version });
}

/** Locks the caller's own, unarchived projects (in id order, so two movers cannot deadlock). */
async function lockOwnedProjects(tx: Db, user: AuthUser, ids: string[]): Promise<void> {
  const unique = [...new Set(ids)].sort();
  const rows = await tx.$queryRaw<{ id: string; archived: boolean }[]>`
    SELECT id, archived_at IS NOT NULL AS archived FROM projects
    WHERE id = ANY(${unique}::uuid[]) AND owner_id = ${user.id}::uuid
    ORDER BY id FOR UPDATE`;
  for (const id of unique) {
    const row = rows.find((r) => r.id === id);
    if (!row) throw await explainMissedWrite(tx, user, id);
    if (row.archived) throw projectArchived();
  }
}

export function createTaskService(db: PrismaClient, now: () => Date) {
  return {
    async list(user: AuthUser, input: z.infer<typeof listTasksInput>): Promise<Page<Task>> {
      const project = await db.project.findFirst({ where: { id: input.projectId, ...readableBy(user) }, select: { id: true } });
      if (!project) throw notFound('Project');
      return paginate(
        input,
        'number',
        (t) => ({ key: t.position, id: t.id }),
        ({ after, take }) =>
          db.task.findMany({
            where: {
              projectId: input.projectId,
              ...(input.status ? { status: input.status } : {}),
              ...rowsAfter('position', after, 'asc'),
            },
            orderBy: [{ position: 'asc' }, { id: 'asc' }],
            take,
            select: taskSelect,
          }),
      );
    },

    async byId(user: AuthUser, id: string): Promise<Task> {
      const task = await db.task.findFirst({ where: { id, project: readableBy(user) }, select: taskSelect });
      if (!task) throw notFound('Task');
      return task;
    },

    create(user: AuthUser, input: z.infer<typeof createTaskInput>): Promise<Task> {
      return db.$transaction(async (tx) => {
        await lockOwnedProjects(tx, user, [input.projectId]);
        const position = await tx.task.count({ where: { projectId: input.projectId } });
        return tx.task.create({
          data: {
            projectId: input.projectId,
            title: input.title,
            description: input.description ?? null,
            status: input.status ?? 'TODO',
            dueAt: input.dueAt ?? null,
            position,
            createdAt: now(),
          },
          select: taskSelect,
        });
      });
    },

    async update(user: AuthUser, input: z.infer<typeof updateTaskInput>): Promise<Task> {
      const { id, version, ...changes } = input;
      const data = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
      await writeAtVersion(
        db.task.updateMany({
          where: { id, version, project: { ownerId: user.id, archivedAt: null } },
          data: { ...data, version: { increment: 1 } },
        }),
        () => explainMissedTaskWrite(db, user, id),
      );
      return db.task.findUniqueOrThrow({ where: { id }, select: taskSelect });
    },

    /** To another position, in the same project or another project of the same owner. */
    move(user: AuthUser, input: z.infer<typeof moveTaskInput>): Promise<Task> {
      return db.$transaction(async (tx) => {
        const task = await tx.task.findFirst({
          where: { id: input.id, project: { ownerId: user.id } },
          select: { projectId: true, position: true, version: true },
        });
        if (!task) throw await explainMissedTaskWrite(tx, user, input.id);
        const target = input.projectId ?? task.projectId;
        await lockOwnedProjects(tx, user, [task.projectId, target]);
        const current = await tx.task.findUniqueOrThrow({
          where: { id: input.id },
          select: { projectId: true, position: true, version: true },
        });
        if (current.version !== input.version) throw await explainMissedTaskWrite(tx, user, input.id);

        const sameProject = target === current.projectId;
        const size = await tx.task.count({ where: { projectId: target } });
        const position = Math.min(input.position, sameProject ? size - 1 : size);
        if (sameProject && position < current.position) {
          await tx.task.updateMany({
            where: { projectId: target, position: { gte: position, lt: current.position } },
            data: { position: { increment: 1 } },
          });
        } else if (sameProject && position > current.position) {
          await tx.task.updateMany({
            where: { projectId: target, position: { gt: current.position, lte: position } },
            data: { position: { decrement: 1 } },
          });
        } else if (!sameProject) {
          await tx.task.updateMany({
            where: { projectId: current.projectId, position: { gt: current.position } },
            data: { position: { decrement: 1 } },
          });
          await tx.task.updateMany({ where: { projectId: target, position: { gte: position } }, data: { position: { increment: 1 } } });
        }
        // Conditional on the version: an update committed since the check above (updates lock
        // only the task row) makes this write nothing, and the shifts above roll back.
        const { count } = await tx.task.updateMany({
          where: { id: input.id, version: input.version },
          data: { projectId: target, position, version: { increment: 1 } },
        });
        if (count === 0) throw await explainMissedTaskWrite(tx, user, input.id);
        return tx.task.findUniqueOrThrow({ where: { id: input.id }, select: taskSelect });
      });
    },

    delete(user: AuthUser, id: string, version: number): Promise<{ ok: true }> {
      return db.$transaction(async (tx) => {
        const task = await tx.task.findFirst({ where: { id, project: { ownerId: user.id } }, select: { projectId: true } });
        if (!task) throw await explainMissedTaskWrite(tx, user, id);
        await lockOwnedProjects(tx, user, [task.projectId]);
        const current = await tx.task.findUnique({ where: { id }, select: { position: true, version: true } });
        if (!current || current.version !== version) throw await explainMissedTaskWrite(tx, user, id);
        const { count } = await tx.task.deleteMany({ where: { id, version } });
        if (count === 0) throw await explainMissedTaskWrite(tx, user, id);
        await tx.task.updateMany({
          where: { projectId: task.projectId, position: { gt: current.position } },
          data: { position: { decrement: 1 } },
        });
        return { ok: true as const };
      });
    },
  };
}

export type TaskService = ReturnType<typeof createTaskService>;
