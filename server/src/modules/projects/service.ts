/**
 * Projects: owned by a user. Ownership lives in every query (`ownerId` in the `where`), so another
 * user's project is indistinguishable from one that does not exist. Admins may read everything;
 * only owners write. Updates name the version they read; a stale one changes nothing.
 */
import type { z } from 'zod';
import type { Db, PrismaClient } from '../../db/client.js';
import type { Sql } from '../../db/sql.js';
import { AppError, notFound } from '../../lib/errors.js';
import { type Page, paginate } from '../../lib/pagination.js';
import { explainStaleWrite, writeAtVersion } from '../../lib/versioned-write.js';
import type { AuthUser } from '../auth/types.js';
import { listProjects, listProjectsAfter } from './queries.js';
import type { ProjectReason } from './reasons.js';
import type { createProjectInput, listProjectsInput, Project, updateProjectInput } from './schemas.js';

export const projectSelect = {
  id: true,
  ownerId: true,
  name: true,
  description: true,
  archivedAt: true,
  version: true,
  createdAt: true,
  updatedAt: true,
} as const;

/** Who may read a project: its owner, or an admin. */
export const readableBy = (user: AuthUser) => (user.role === 'ADMIN' ? {} : { ownerId: user.id });

/** The refusal of any change to an archived project or its tasks. */
export const projectArchived = () =>
  new AppError('CONFLICT', 'This project is archived: its tasks cannot change.', { reason: 'ARCHIVED' satisfies ProjectReason });

/** Why a write to a project matched no row (lib/versioned-write.ts): missing, not the caller's, or stale. */
export async function explainMissedWrite(db: Db, user: AuthUser, id: string): Promise<AppError> {
  const row = await db.project.findFirst({ where: { id, ...readableBy(user) }, select: { ownerId: true, version: true } });
  return explainStaleWrite('project', row && { ownedByCaller: row.ownerId === user.id, version: row.version });
}

export function createProjectService(db: PrismaClient, sql: Sql, now: () => Date) {
  async function writeOwned(
    user: AuthUser,
    id: string,
    version: number,
    data: { name?: string; description?: string | null; archivedAt?: Date },
  ) {
    await writeAtVersion(
      db.project.updateMany({ where: { id, ownerId: user.id, version }, data: { ...data, version: { increment: 1 } } }),
      () => explainMissedWrite(db, user, id),
    );
    return db.project.findUniqueOrThrow({ where: { id }, select: projectSelect });
  }

  return {
    async list(user: AuthUser, input: z.infer<typeof listProjectsInput>): Promise<Page<Project>> {
      if (input.ownerId && input.ownerId !== user.id && user.role !== 'ADMIN') {
        throw new AppError('FORBIDDEN', "Only admins can list another user's projects.");
      }
      // Typed SQL (queries.ts): the hottest read, where Prisma's pipeline cost more than the query.
      const filter = { ownerId: input.ownerId ?? user.id, includeArchived: input.includeArchived };
      return paginate(
        input,
        'date',
        (p) => ({ key: p.createdAt, id: p.id }),
        ({ after, take }) =>
          after ? sql.rows(listProjectsAfter, { ...filter, take, after }) : sql.rows(listProjects, { ...filter, take }),
      );
    },

    async byId(user: AuthUser, id: string): Promise<Project> {
      const project = await db.project.findFirst({ where: { id, ...readableBy(user) }, select: projectSelect });
      if (!project) throw notFound('Project');
      return project;
    },

    create(user: AuthUser, input: z.infer<typeof createProjectInput>): Promise<Project> {
      // A duplicate name is a unique violation (P2002), mapped to CONFLICT on `name` in one place.
      return db.project.create({
        data: { ownerId: user.id, name: input.name, description: input.description ?? null, createdAt: now() },
        select: projectSelect,
      });
    },

    update(user: AuthUser, input: z.infer<typeof updateProjectInput>): Promise<Project> {
      const { id, version, ...changes } = input;
      return writeOwned(user, id, version, {
        ...(changes.name === undefined ? {} : { name: changes.name }),
        ...(changes.description === undefined ? {} : { description: changes.description }),
      });
    },

    archive(user: AuthUser, id: string, version: number): Promise<Project> {
      return writeOwned(user, id, version, { archivedAt: now() });
    },

    /** The project and all its tasks, in one transaction: a failure leaves both untouched. */
    async delete(user: AuthUser, id: string, version: number): Promise<{ ok: true; deletedTasks: number }> {
      const deletedTasks = await db.$transaction(async (tx) => {
        // The project row first, as every task write does: one lock order (no deadlock with a
        // move), and no task can be added between deleting the tasks and deleting the project.
        await tx.$queryRaw`SELECT 1 FROM projects WHERE id = ${id}::uuid AND owner_id = ${user.id}::uuid FOR UPDATE`;
        const tasks = await tx.task.deleteMany({ where: { projectId: id, project: { ownerId: user.id } } });
        const { count } = await tx.project.deleteMany({ where: { id, ownerId: user.id, version } });
        if (count === 0) throw await explainMissedWrite(tx, user, id);
        return tasks.count;
      });
      return { ok: true, deletedTasks };
    },
  };
}

export type ProjectService = ReturnType<typeof createProjectService>;
