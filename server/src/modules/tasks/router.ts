import { z } from 'zod';
import { tasksOnChange } from '../../live/procedures.js';
import { restMeta } from '../../openapi/meta.js';
import { authedProcedure, router } from '../../trpc/init.js';
import {
  createTaskInput,
  deleteTaskInput,
  listTasksInput,
  moveTaskInput,
  taskIdInput,
  taskPageSchema,
  taskSchema,
  updateTaskInput,
} from './schemas.js';

const rest = restMeta('tasks');

export const tasksRouter = router({
  list: authedProcedure
    .meta({ ...rest('GET', '/projects/{projectId}/tasks', "A project's tasks, in board order"), scope: 'projects:read' })
    .input(listTasksInput)
    .output(taskPageSchema)
    .query(({ ctx, input }) => ctx.services.tasks.list(ctx.user, input)),
  byId: authedProcedure
    .meta({ ...rest('GET', '/tasks/{id}', 'One task'), scope: 'projects:read' })
    .input(taskIdInput)
    .output(taskSchema)
    .query(({ ctx, input }) => ctx.services.tasks.byId(ctx.user, input.id)),
  create: authedProcedure
    .meta(rest('POST', '/projects/{projectId}/tasks', 'Add a task at the end of a project', { errors: [409], created: '/tasks/{id}' }))
    .input(createTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.create(ctx.user, input)),
  update: authedProcedure
    .meta(rest('PATCH', '/tasks/{id}', 'Change a task (optimistic: send the version read)'))
    .input(updateTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.update(ctx.user, input)),
  move: authedProcedure
    .meta(rest('POST', '/tasks/{id}/move', 'Move a task to a position, in its project or another'))
    .input(moveTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.move(ctx.user, input)),
  delete: authedProcedure
    .meta(rest('DELETE', '/tasks/{id}', 'Delete a task'))
    .input(deleteTaskInput)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(({ ctx, input }) => ctx.services.tasks.delete(ctx.user, input.id, input.version)),
  /** Live changes over SSE (server/src/live). */
  onChange: tasksOnChange,
});
