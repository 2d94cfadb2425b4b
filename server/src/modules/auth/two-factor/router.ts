/** `auth.twoFactor.*`: TOTP setup and the second step of a sign-in (service.ts beside this file). */
import { restMeta } from '../../../openapi/meta.js';
import type { Context } from '../../../trpc/context.js';
import { authedProcedure, publicProcedure, router } from '../../../trpc/init.js';
import { assertCookieOrigin, deliver } from '../router.js';
import { authResultSchema, okSchema } from '../schemas.js';
import type { ClientInfo } from '../types.js';
import {
  disableInput,
  enableInput,
  recoveryCodesSchema,
  regenerateInput,
  twoFactorSetupSchema,
  twoFactorStatusSchema,
  verifyInput,
} from './schemas.js';

const client = (ctx: Context): ClientInfo => ({ ip: ctx.request.ip, userAgent: ctx.request.userAgent, log: ctx.log });
const rest = restMeta('auth');
/** Codes, secrets and tokens: nothing of these calls is stored for an Idempotency-Key. */
const SECRETS = { handlesSecrets: true };

export const twoFactorRouter = router({
  status: authedProcedure
    .meta(rest('GET', '/auth/two-factor', 'Whether two-factor sign-in is on, and how many recovery codes are left'))
    .output(twoFactorStatusSchema)
    .query(({ ctx }) => ctx.services.twoFactor.status(ctx.user)),

  setup: authedProcedure
    .meta(
      rest('POST', '/auth/two-factor/setup', 'Start two-factor setup: a new TOTP secret, its otpauth URI and QR code', { errors: [409] }),
    )
    .meta(SECRETS)
    .output(twoFactorSetupSchema)
    .mutation(({ ctx }) => ctx.services.twoFactor.setup(ctx.user, client(ctx))),

  enable: authedProcedure
    .meta(
      rest('POST', '/auth/two-factor/enable', 'Confirm setup with a code; returns 10 recovery codes, shown once', {
        errors: [409, 429],
      }),
    )
    .meta(SECRETS)
    .input(enableInput)
    .output(recoveryCodesSchema)
    .mutation(({ ctx, input }) => ctx.services.twoFactor.enable(ctx.user, input, client(ctx))),

  disable: authedProcedure
    .meta(rest('POST', '/auth/two-factor/disable', 'Turn two-factor sign-in off (password and a current code)', { errors: [409, 429] }))
    .meta(SECRETS)
    .input(disableInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.twoFactor.disable(ctx.user, input, client(ctx))),

  regenerateRecoveryCodes: authedProcedure
    .meta(rest('POST', '/auth/two-factor/recovery-codes', 'Replace the recovery codes (a current code)', { errors: [409, 429] }))
    .meta(SECRETS)
    .input(regenerateInput)
    .output(recoveryCodesSchema)
    .mutation(({ ctx, input }) => ctx.services.twoFactor.regenerateRecoveryCodes(ctx.user, input, client(ctx))),

  verify: publicProcedure
    .meta(
      rest('POST', '/auth/two-factor/verify', 'Complete a sign-in challenge with a code or a recovery code', {
        public: true,
        errors: [401, 429],
      }),
    )
    .meta(SECRETS)
    .input(verifyInput)
    .output(authResultSchema)
    .mutation(async ({ ctx, input }) => {
      assertCookieOrigin(ctx);
      return deliver(ctx, await ctx.services.twoFactor.verify(input, client(ctx)));
    }),
});
