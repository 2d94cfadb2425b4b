/** Wire shapes of `auth.oidc.*`: sign-in with an OpenID Connect provider. */
import { z } from 'zod';

const providerId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { message: 'is not a configured provider' });

export const providerListSchema = z.array(z.object({ id: z.string(), name: z.string() }));

export const startInput = z.strictObject({ provider: providerId });

export const startResultSchema = z.object({
  /** Send the browser here; the provider sends it back to OIDC_REDIRECT_URI with `code` and `state`. */
  authorizationUrl: z.string(),
  expiresAt: z.date(),
});

/** What the provider put on the redirect URI: pass it on as it came. */
export const finishInput = z.strictObject({
  state: z.string().min(1).max(200),
  code: z.string().min(1).max(2000),
  /** RFC 9207: the issuer the provider names in its redirect, when it does. */
  iss: z.string().max(500).optional(),
});

export const identitySchema = z.object({
  id: z.uuid(),
  provider: z.string(),
  email: z.string().nullable(),
  createdAt: z.date(),
});
export const identityListSchema = z.array(identitySchema);
export const identityIdInput = z.strictObject({ id: z.uuid() });
