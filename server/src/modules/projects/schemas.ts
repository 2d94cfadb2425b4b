import { z } from 'zod';
import { pageInput, pageOf } from '../../lib/pagination.js';
import { text } from '../../lib/text.js';
import { versionInput } from '../../lib/versioned-write.js';

const name = text().trim().min(1, { message: 'must not be empty' }).max(100);
const description = text().trim().max(2000).nullable();
const version = versionInput;

export const projectSchema = z.object({
  id: z.uuid(),
  ownerId: z.uuid(),
  name: z.string(),
  description: z.string().nullable(),
  archivedAt: z.date().nullable(),
  version: z.number().int(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type Project = z.infer<typeof projectSchema>;

export const projectPageSchema = pageOf(projectSchema);

export const listProjectsInput = z
  .strictObject({
    ...pageInput,
    includeArchived: z.boolean().default(false),
    /** Admins only: list another user's projects. */
    ownerId: z.uuid().optional(),
  })
  .default({ limit: 20, includeArchived: false });

export const projectIdInput = z.strictObject({ id: z.uuid() });
export const createProjectInput = z.strictObject({ name, description: description.optional() });
export const updateProjectInput = z.strictObject({ id: z.uuid(), version, name: name.optional(), description: description.optional() });
export const versionedIdInput = z.strictObject({ id: z.uuid(), version });
