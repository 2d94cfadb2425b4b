/** Wire shapes of `auth.twoFactor.*` and of the challenge `auth.login` answers for accounts with two factors. */
import { z } from 'zod';
import { authResultSchema, opaqueTokenSchema } from '../schemas.js';

/** Six digits; spaces typed between them are dropped. */
export const totpCodeSchema = z
  .string()
  .max(20)
  .transform((v) => v.replace(/\s/g, ''))
  .pipe(z.string().regex(/^\d{6}$/, { message: 'must be the 6-digit code of your authenticator app' }));

/** `xxxx-xxxx-xxxx-xxxx`, case, spaces and dashes free. */
export const recoveryCodeSchema = z
  .string()
  .max(40)
  .transform((v) => v.toLowerCase().replace(/[\s-]/g, ''))
  .pipe(z.string().regex(/^[a-z2-7]{16}$/, { message: 'is not a recovery code' }));

export const factorSchema = z.enum(['password', 'totp', 'recovery_code', 'oidc']);
export type Factor = z.infer<typeof factorSchema>;

/** What `auth.login` answers instead of tokens when the account has a second factor. */
export const twoFactorChallengeSchema = z.object({
  status: z.literal('twoFactorRequired'),
  /** Single-use, for `auth.twoFactor.verify` only; dies after 5 minutes or 5 wrong codes. */
  challenge: opaqueTokenSchema,
  challengeExpiresAt: z.date(),
  methods: z.array(z.enum(['totp', 'recovery_code'])),
});
export type TwoFactorChallenge = z.infer<typeof twoFactorChallengeSchema>;

export const twoFactorSetupSchema = z.object({
  /** Base32, for typing into an app that cannot scan. */
  secret: z.string(),
  /** `otpauth://totp/...` */
  uri: z.string(),
  /** The URI as a QR code: `data:image/svg+xml;base64,...` */
  qrCodeSvg: z.string(),
});

export const twoFactorStatusSchema = z.object({
  enabled: z.boolean(),
  enabledAt: z.date().nullable(),
  recoveryCodesLeft: z.number().int().nonnegative(),
});

export const recoveryCodesSchema = z.object({
  /** Shown once: only their hashes are kept. */
  recoveryCodes: z.array(z.string()),
});

export const enableInput = z.strictObject({ code: totpCodeSchema });
export const disableInput = z.strictObject({ password: z.string().min(1).max(128), code: totpCodeSchema });
export const regenerateInput = z.strictObject({ code: totpCodeSchema });

/** A code from the app, or one recovery code: exactly one. */
export const verifyInput = z
  .strictObject({ challenge: opaqueTokenSchema, code: totpCodeSchema.optional(), recoveryCode: recoveryCodeSchema.optional() })
  .refine((v) => (v.code === undefined) !== (v.recoveryCode === undefined), {
    message: 'give either code or recoveryCode',
    path: ['code'],
  });

/** `auth.login`: tokens, or the challenge of an account with two factors (tell them apart with `status`/`isTwoFactorChallenge`). */
export const loginResultSchema = z.union([authResultSchema, twoFactorChallengeSchema]);
export type LoginResult = z.infer<typeof loginResultSchema>;
