import { z } from 'zod';
import { pageInput, pageOf } from '../../lib/pagination.js';
import { text } from '../../lib/text.js';
import { versionInput } from '../../lib/versioned-write.js';

export const taskStatusSchema = z.enum(['TODO', 'IN_PROGRESS', 'DONE']);

const title = text().trim().min(1, { message: 'must not be empty' }).max(200);
const description = text().trim().max(5000).nullable();
/** A Date over tRPC (superjson), an ISO 8601 string with offset over REST; a Date either way inside. */
const dueAt = z
  .union([z.date(), z.iso.datetime({ offset: true })])
  .transform((value) => new Date(value))
  // What PostgreSQL can store, and what a due date can sensibly be.
  .refine((date) => date.getUTCFullYear() >= 1900 && date.getUTCFullYear() <= 9999, { message: 'must be a date from 1900 to 9999' })
  .nullable();
const version = versionInput;

export const taskSchema = z.object({
  id: z.uuid(),
  projectId: z.uuid(),
  title: z.string(),
  description: z.string().nullable(),
  status: taskStatusSchema,
  dueAt: z.date().nullable(),
  position: z.number().int().nonnegative(),
  version: z.number().int(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type Task = z.infer<typeof taskSchema>;

export const taskPageSchema = pageOf(taskSchema);

export const listTasksInput = z.strictObject({ projectId: z.uuid(), status: taskStatusSchema.optional(), ...pageInput });
export const taskIdInput = z.strictObject({ id: z.uuid() });
export const createTaskInput = z.strictObject({
  projectId: z.uuid(),
  title,
  description: description.optional(),
  status: taskStatusSchema.optional(),
  dueAt: dueAt.optional(),
});
export const updateTaskInput = z.strictObject({
  id: z.uuid(),
  version,
  title: title.optional(),
  description: description.optional(),
  status: taskStatusSchema.optional(),
  dueAt: dueAt.optional(),
});
export const moveTaskInput = z.strictObject({
  id: z.uuid(),
  version,
  /** Another project of the same owner; omitted: stay in the current one. */
  projectId: z.uuid().optional(),
  /** 0-based; past the end means last. */
  position: z.number().int().min(0).max(1_000_000),
});
export const deleteTaskInput = z.strictObject({ id: z.uuid(), version });
