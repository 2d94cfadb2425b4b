/** Wire shapes of account deletion and export (`auth.deleteAccount`, `auth.exportData`, `users.delete`). */
import { z } from 'zod';
import { roleSchema } from '../auth/schemas.js';
import { totpCodeSchema } from '../auth/two-factor/schemas.js';

export const deleteAccountInput = z.strictObject({
  password: z.string().min(1).max(128),
  /** A current code of the authenticator app: required when two-factor sign-in is on. */
  code: totpCodeSchema.optional(),
});

export const deletedSchema = z.object({ deleted: z.literal(true) });

const exportedSession = z.object({
  id: z.uuid(),
  createdAt: z.date(),
  lastUsedAt: z.date(),
  expiresAt: z.date(),
  revokedAt: z.date().nullable(),
  revokedReason: z.string().nullable(),
  userAgent: z.string().nullable(),
  ip: z.string().nullable(),
  factors: z.array(z.string()),
});

const exportedTask = z.object({
  id: z.uuid(),
  title: z.string(),
  description: z.string().nullable(),
  status: z.enum(['TODO', 'IN_PROGRESS', 'DONE']),
  dueAt: z.date().nullable(),
  position: z.number().int(),
  createdAt: z.date(),
  updatedAt: z.date(),
});

const exportedProject = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string().nullable(),
  archivedAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
  tasks: z.array(exportedTask),
});

/** Everything Keel holds about the account, as the person may take it (GDPR art. 15 and 20). */
export const accountExportSchema = z.object({
  exportedAt: z.date(),
  profile: z.object({
    id: z.uuid(),
    email: z.string(),
    name: z.string().nullable(),
    role: roleSchema,
    emailVerified: z.boolean(),
    active: z.boolean(),
    twoFactorEnabled: z.boolean(),
    passwordChangedAt: z.date().nullable(),
    createdAt: z.date(),
    updatedAt: z.date(),
  }),
  sessions: z.array(exportedSession),
  /** Providers linked for sign-in (`auth.oidc.*`). */
  identities: z.array(z.object({ provider: z.string(), email: z.string().nullable(), createdAt: z.date() })),
  projects: z.array(exportedProject),
});
export type AccountExport = z.infer<typeof accountExportSchema>;
