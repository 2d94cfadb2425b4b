import { z } from 'zod';
import { authedProcedure, router } from '../../trpc/init.js';
import {
  createProjectInput,
  listProjectsInput,
  projectIdInput,
  projectPage,
  projectSchema,
  updateProjectInput,
  versionedIdInput,
} from './schemas.js';

export const projectsRouter = router({
  list: authedProcedure
    .input(listProjectsInput)
    .output(projectPage)
    .query(({ ctx, input }) => ctx.services.projects.list(ctx.user, input)),
  byId: authedProcedure
    .input(projectIdInput)
    .output(projectSchema)
    .query(({ ctx, input }) => ctx.services.projects.byId(ctx.user, input.id)),
  create: authedProcedure
    .input(createProjectInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.create(ctx.user, input)),
  update: authedProcedure
    .input(updateProjectInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.update(ctx.user, input)),
  archive: authedProcedure
    .input(versionedIdInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.archive(ctx.user, input.id, input.version)),
  delete: authedProcedure
    .input(versionedIdInput)
    .output(z.object({ ok: z.literal(true), deletedTasks: z.number().int().nonnegative() }))
    .mutation(({ ctx, input }) => ctx.services.projects.delete(ctx.user, input.id, input.version)),
});
