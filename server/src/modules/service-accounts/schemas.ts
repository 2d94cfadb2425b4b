import { z } from 'zod';
import { pageInput, pageOf } from '../../lib/pagination.js';
import { text } from '../../lib/text.js';
import { scopeSchema } from './scopes.js';

const scopes = z
  .array(scopeSchema)
  .min(1, 'at least one scope')
  .max(20)
  .transform((list) => [...new Set(list)].sort());

export const serviceAccountSchema = z.object({
  id: z.uuid(),
  clientId: z.string(),
  name: z.string(),
  scopes: z.array(scopeSchema),
  /** When the secret replaced by the last rotation stops working (null: none is pending). */
  previousSecretExpiresAt: z.date().nullable(),
  revokedAt: z.date().nullable(),
  /** The last token issued to this account. */
  lastUsedAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type ServiceAccount = z.infer<typeof serviceAccountSchema>;

export const serviceAccountPage = pageOf(serviceAccountSchema);

/** The secret is in this answer and nowhere else, ever. */
export const issuedCredentialsSchema = z.object({
  id: z.uuid(),
  clientId: z.string(),
  clientSecret: z.string(),
  account: serviceAccountSchema,
});
export type IssuedCredentials = z.infer<typeof issuedCredentialsSchema>;

export const createServiceAccountInput = z.strictObject({ name: text().trim().min(1).max(100), scopes });
export const listServiceAccountsInput = z
  .strictObject({ ...pageInput, includeRevoked: z.boolean().default(false) })
  .default({ limit: 20, includeRevoked: false });
export const serviceAccountIdInput = z.strictObject({ id: z.uuid() });
export const updateServiceAccountInput = z.strictObject({
  id: z.uuid(),
  name: text().trim().min(1).max(100).optional(),
  scopes: scopes.optional(),
});
