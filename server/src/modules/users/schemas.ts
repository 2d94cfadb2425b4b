import { z } from 'zod';
import { pageInput, pageOf } from '../../lib/pagination.js';
import { text } from '../../lib/text.js';
import { roleSchema, userSchema } from '../auth/schemas.js';

export const adminUserSchema = userSchema.extend({ active: z.boolean(), updatedAt: z.date() });
export type AdminUser = z.infer<typeof adminUserSchema>;

export const userPageSchema = pageOf(adminUserSchema);

export const listUsersInput = z
  .strictObject({
    ...pageInput,
    /** An email prefix or part of a name, case-insensitive. */
    search: text().trim().min(1).max(100).optional(),
    role: roleSchema.optional(),
    active: z.boolean().optional(),
  })
  .default({ limit: 20 });

export const userIdInput = z.strictObject({ id: z.uuid() });
export const setRoleInput = z.strictObject({ id: z.uuid(), role: roleSchema });
export const setActiveInput = z.strictObject({ id: z.uuid(), active: z.boolean() });
