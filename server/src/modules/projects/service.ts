/**
 * Projects: owned by a user. Ownership lives in every query (`ownerId` in the `where`), so another
 * user's project is indistinguishable from one that does not exist. Admins may read everything;
 * only owners write. Updates name the version they read; a stale one changes nothing.
 */
import type { z } from 'zod';
import type { Db, PrismaClient } from '../../db/client.js';
import type { Sql } from '../../db/sql.js';
import { AppError } from '../../lib/errors.js';
import { decodeCursor, type Page, toPage } from '../../lib/pagination.js';
import type { AuthUser } from '../auth/service.js';
import { listProjects, listProjectsAfter } from './queries.js';
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

const notFound = () => new AppError('NOT_FOUND', 'Project not found.');

/**
 * Who may read a project: its owner, an admin, or a service (its `projects:read` scope was checked
 * by the procedure: a service acts for no user, so it reads every user's projects).
 */
export const readableBy = (user: AuthUser) => (user.role === 'ADMIN' || user.service ? {} : { ownerId: user.id });

/** Who may change a project: its owner, or a service (whose `projects:write` scope was checked). */
const writableBy = (user: AuthUser) => (user.service ? {} : { ownerId: user.id });

/**
 * Why a write matched no row: not there (or not visible) -> NOT_FOUND; visible but someone else's
 * (an admin reading) -> FORBIDDEN; the caller's own with another version -> CONFLICT.
 */
export async function explainMissedWrite(db: Db, user: AuthUser, id: string): Promise<AppError> {
  const row = await db.project.findFirst({ where: { id, ...readableBy(user) }, select: { ownerId: true, version: true } });
  if (!row) return notFound();
  if (row.ownerId !== user.id && !user.service) return new AppError('FORBIDDEN', 'Only the owner can change this project.');
  return new AppError('CONFLICT', `This project was changed meanwhile (now version ${row.version}). Reload it and try again.`, {
    fieldErrors: { version: ['is stale'] },
  });
}

export function createProjectService(db: PrismaClient, sql: Sql, now: () => Date) {
  async function writeOwned(
    user: AuthUser,
    id: string,
    version: number,
    data: { name?: string; description?: string | null; archivedAt?: Date },
  ) {
    const { count } = await db.project.updateMany({
      where: { id, ...writableBy(user), version },
      data: { ...data, version: { increment: 1 } },
    });
    if (count === 0) throw await explainMissedWrite(db, user, id);
    return db.project.findUniqueOrThrow({ where: { id }, select: projectSelect });
  }

  return {
    async list(user: AuthUser, input: z.infer<typeof listProjectsInput>): Promise<Page<Project>> {
      if (input.ownerId && input.ownerId !== user.id && user.role !== 'ADMIN' && !user.service) {
        throw new AppError('FORBIDDEN', "Only admins can list another user's projects.");
      }
      if (user.service && !input.ownerId) {
        throw new AppError('BAD_REQUEST', 'A service owns no projects: name the owner whose projects to list.', {
          fieldErrors: { ownerId: ['is required for a service'] },
        });
      }
      // Typed SQL (queries.ts): the hottest read, where Prisma's pipeline cost more than the query.
      const page = { ownerId: input.ownerId ?? user.id, includeArchived: input.includeArchived, take: input.limit + 1 };
      const rows = input.cursor
        ? await sql.rows(listProjectsAfter, { ...page, after: decodeCursor(input.cursor, 'date') })
        : await sql.rows(listProjects, page);
      return toPage(
        rows,
        input.limit,
        (p) => ({ key: p.createdAt, id: p.id }),
        (p) => p,
      );
    },

    async byId(user: AuthUser, id: string): Promise<Project> {
      const project = await db.project.findFirst({ where: { id, ...readableBy(user) }, select: projectSelect });
      if (!project) throw notFound();
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
        await tx.$queryRaw`SELECT 1 FROM projects WHERE id = ${id}::uuid AND (owner_id = ${user.id}::uuid OR ${user.service !== undefined}) FOR UPDATE`;
        const tasks = await tx.task.deleteMany({ where: { projectId: id, project: writableBy(user) } });
        const { count } = await tx.project.deleteMany({ where: { id, ...writableBy(user), version } });
        if (count === 0) throw await explainMissedWrite(tx, user, id);
        return tasks.count;
      });
      return { ok: true, deletedTasks };
    },
  };
}

export type ProjectService = ReturnType<typeof createProjectService>;
