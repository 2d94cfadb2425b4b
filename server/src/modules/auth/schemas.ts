/** Wire shapes of the auth procedures. Types come from here (`z.infer`), never written twice. */
import { z } from 'zod';
import { pageInput } from '../../lib/pagination.js';
import { text } from '../../lib/text.js';
import { passwordSchema } from './password-policy.js';

export const roleSchema = z.enum(['USER', 'ADMIN']);
export type Role = z.infer<typeof roleSchema>;

/** Trimmed and lower-cased before validation, so `  Ann@Example.COM ` and `ann@example.com` are one account. */
export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, { message: 'must be at most 254 characters' })
  .pipe(z.email({ message: 'must be an email address' }));

/** 32 random bytes, base64url: the shape of every opaque token Keel issues. */
export const opaqueTokenSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { message: 'is not a valid token' });

export const userSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string().nullable(),
  role: roleSchema,
  emailVerified: z.boolean(),
  createdAt: z.date(),
});
export type User = z.infer<typeof userSchema>;

export const authResultSchema = z.object({
  user: userSchema,
  accessToken: z.string(),
  accessTokenExpiresAt: z.date(),
  /** Absent in cookie mode: the refresh token then travels only in an HttpOnly cookie. */
  refreshToken: opaqueTokenSchema.optional(),
  refreshTokenExpiresAt: z.date(),
});
export type AuthResult = z.infer<typeof authResultSchema>;

export const registerInput = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
  name: text().trim().min(1).max(100).optional(),
});

export const loginInput = z.strictObject({
  email: emailSchema,
  // No policy on login: only the length bound that keeps hashing cheap to refuse.
  password: z.string().min(1).max(128),
});

/**
 * Any string: a malformed token is refused by the service like an unknown one (UNAUTHORIZED, as
 * for every other refresh failure), not as invalid input. A client then has one answer to handle:
 * the session is over. The body limit bounds its length.
 */
export const refreshInput = z.strictObject({ refreshToken: z.string().optional() }).optional();

export const sessionSchema = z.object({
  id: z.uuid(),
  createdAt: z.date(),
  lastUsedAt: z.date(),
  userAgent: z.string().nullable(),
  ip: z.string().nullable(),
  /** How the sign-in was proven: `password`, then `totp` or `recovery_code` for two-factor sign-ins. */
  factors: z.array(z.string()),
  current: z.boolean(),
});
export const sessionPageInput = z.strictObject(pageInput).optional();
export type SessionInfo = z.infer<typeof sessionSchema>;

export const sessionIdInput = z.strictObject({ sessionId: z.uuid() });

export const changePasswordInput = z.strictObject({
  currentPassword: z.string().min(1).max(128),
  newPassword: passwordSchema,
});

export const requestPasswordResetInput = z.strictObject({ email: emailSchema });
export const resetPasswordInput = z.strictObject({ token: opaqueTokenSchema, newPassword: passwordSchema });
export const verifyEmailInput = z.strictObject({ token: opaqueTokenSchema });

export const okSchema = z.object({ ok: z.literal(true) });
export const countSchema = z.object({ count: z.number().int().nonnegative() });
