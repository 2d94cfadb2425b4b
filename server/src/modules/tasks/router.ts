import { z } from 'zod';
import { authedProcedure, router } from '../../trpc/init.js';
import {
  createTaskInput,
  deleteTaskInput,
  listTasksInput,
  moveTaskInput,
  taskIdInput,
  taskPage,
  taskSchema,
  updateTaskInput,
} from './schemas.js';

export const tasksRouter = router({
  list: authedProcedure
    .input(listTasksInput)
    .output(taskPage)
    .query(({ ctx, input }) => ctx.services.tasks.list(ctx.user, input)),
  byId: authedProcedure
    .input(taskIdInput)
    .output(taskSchema)
    .query(({ ctx, input }) => ctx.services.tasks.byId(ctx.user, input.id)),
  create: authedProcedure
    .input(createTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.create(ctx.user, input)),
  update: authedProcedure
    .input(updateTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.update(ctx.user, input)),
  move: authedProcedure
    .input(moveTaskInput)
    .output(taskSchema)
    .mutation(({ ctx, input }) => ctx.services.tasks.move(ctx.user, input)),
  delete: authedProcedure
    .input(deleteTaskInput)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(({ ctx, input }) => ctx.services.tasks.delete(ctx.user, input.id, input.version)),
});
