/** `auth.oidc.*`: sign-in with an OpenID Connect provider, and linking one to the signed-in account (service.ts beside this file). */
import { restMeta } from '../../../openapi/meta.js';
import type { Context } from '../../../trpc/context.js';
import { authedProcedure, publicProcedure, router } from '../../../trpc/init.js';
import { assertCookieOrigin, deliver } from '../router.js';
import { okSchema } from '../schemas.js';
import { loginResultSchema } from '../two-factor/schemas.js';
import type { ClientInfo } from '../types.js';
import {
  finishInput,
  identityIdInput,
  identityListSchema,
  identitySchema,
  providerListSchema,
  startInput,
  startResultSchema,
} from './schemas.js';

const client = (ctx: Context): ClientInfo => ({ ip: ctx.request.ip, userAgent: ctx.request.userAgent, log: ctx.log });
const rest = restMeta('auth');
/** Authorization codes and tokens: nothing of these calls is stored for an Idempotency-Key. */
const SECRETS = { handlesSecrets: true };

export const oidcRouter = router({
  providers: publicProcedure
    .meta(rest('GET', '/auth/oidc/providers', 'The OpenID Connect providers one may sign in with', { public: true }))
    .output(providerListSchema)
    .query(({ ctx }) => ctx.services.oidc.providers()),

  start: publicProcedure
    .meta(
      rest('POST', '/auth/oidc/start', 'Start a sign-in with a provider: the URL to send the browser to', { public: true, errors: [429] }),
    )
    .input(startInput)
    .output(startResultSchema)
    .mutation(({ ctx, input }) => ctx.services.oidc.start(input.provider, client(ctx))),

  finish: publicProcedure
    .meta(
      rest(
        'POST',
        '/auth/oidc/finish',
        "Complete a provider sign-in with the redirect's code and state: tokens, or a two-factor challenge",
        {
          public: true,
          errors: [401, 403, 409, 429],
        },
      ),
    )
    .meta(SECRETS)
    .input(finishInput)
    .output(loginResultSchema)
    .mutation(async ({ ctx, input }) => {
      assertCookieOrigin(ctx);
      const result = await ctx.services.oidc.finish(input, client(ctx));
      return 'challenge' in result ? result : deliver(ctx, result);
    }),

  startLink: authedProcedure
    .meta(rest('POST', '/auth/oidc/link/start', 'Start linking a provider to the signed-in account', { errors: [429] }))
    .input(startInput)
    .output(startResultSchema)
    .mutation(({ ctx, input }) => ctx.services.oidc.startLink(ctx.user, input.provider, client(ctx))),

  finishLink: authedProcedure
    .meta(rest('POST', '/auth/oidc/link/finish', 'Complete linking a provider to the signed-in account', { errors: [401, 409, 429] }))
    .meta(SECRETS)
    .input(finishInput)
    .output(identitySchema)
    .mutation(({ ctx, input }) => ctx.services.oidc.finishLink(ctx.user, input, client(ctx))),

  identities: authedProcedure
    .meta(rest('GET', '/auth/oidc/identities', 'The providers linked to the account'))
    .output(identityListSchema)
    .query(({ ctx }) => ctx.services.oidc.identities(ctx.user)),

  unlink: authedProcedure
    .meta(rest('DELETE', '/auth/oidc/identities/{id}', 'Unlink a provider from the account'))
    .input(identityIdInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.oidc.unlink(ctx.user, input.id, client(ctx))),
});
