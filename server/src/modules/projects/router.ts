import { z } from 'zod';
import { projectsOnChange } from '../../live/procedures.js';
import { restMeta } from '../../openapi/meta.js';
import { authedProcedure, router } from '../../trpc/init.js';
import {
  createProjectInput,
  listProjectsInput,
  projectIdInput,
  projectPageSchema,
  projectSchema,
  updateProjectInput,
  versionedIdInput,
} from './schemas.js';

const rest = restMeta('projects');

export const projectsRouter = router({
  list: authedProcedure
    .meta({ ...rest('GET', '/projects', 'Your projects, newest first'), scope: 'projects:read' })
    .input(listProjectsInput)
    .output(projectPageSchema)
    .query(({ ctx, input }) => ctx.services.projects.list(ctx.user, input)),
  byId: authedProcedure
    .meta({ ...rest('GET', '/projects/{id}', 'One project'), scope: 'projects:read' })
    .input(projectIdInput)
    .output(projectSchema)
    .query(({ ctx, input }) => ctx.services.projects.byId(ctx.user, input.id)),
  create: authedProcedure
    .meta(rest('POST', '/projects', 'Create a project', { errors: [409], created: '/projects/{id}' }))
    .input(createProjectInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.create(ctx.user, input)),
  update: authedProcedure
    .meta({ ...rest('PATCH', '/projects/{id}', 'Change name or description (optimistic: send the version read)'), scope: 'projects:write' })
    .input(updateProjectInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.update(ctx.user, input)),
  archive: authedProcedure
    .meta({ ...rest('POST', '/projects/{id}/archive', 'Archive a project (its tasks become read-only)'), scope: 'projects:write' })
    .input(versionedIdInput)
    .output(projectSchema)
    .mutation(({ ctx, input }) => ctx.services.projects.archive(ctx.user, input.id, input.version)),
  delete: authedProcedure
    .meta({ ...rest('DELETE', '/projects/{id}', 'Delete a project and its tasks'), scope: 'projects:write' })
    .input(versionedIdInput)
    .output(z.object({ ok: z.literal(true), deletedTasks: z.number().int().nonnegative() }))
    .mutation(({ ctx, input }) => ctx.services.projects.delete(ctx.user, input.id, input.version)),
  /** Live changes over SSE (server/src/live). */
  onChange: projectsOnChange,
});
