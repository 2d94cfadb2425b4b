/**
 * Account deletion and export: procedures of the `auth` router (`auth.deleteAccount`,
 * `auth.exportData`) and of the admin `users` router (`users.delete`), kept here beside their service.
 */
import { restMeta } from '../../openapi/meta.js';
import type { Context } from '../../trpc/context.js';
import { adminProcedure, authedProcedure } from '../../trpc/init.js';
import { userIdInput } from '../users/schemas.js';
import { accountExportSchema, deleteAccountInput, deletedSchema } from './schemas.js';

const client = (ctx: Context) => ({ ip: ctx.request.ip, userAgent: ctx.request.userAgent, log: ctx.log });

/** Spread into the `auth` router. */
export const accountProcedures = {
  deleteAccount: authedProcedure
    .meta(
      restMeta('auth')(
        'POST',
        '/auth/delete-account',
        'Delete the account and everything in it (password, and a code with two-factor sign-in)',
        { errors: [409, 429] },
      ),
    )
    .meta({ handlesSecrets: true })
    .input(deleteAccountInput)
    .output(deletedSchema)
    .mutation(({ ctx, input }) => ctx.services.account.deleteOwn(ctx.user, input, client(ctx))),

  exportData: authedProcedure
    .meta(restMeta('auth')('GET', '/auth/export', "The account's data as JSON: profile, sessions, projects and tasks"))
    .output(accountExportSchema)
    .query(({ ctx }) => ctx.services.account.exportData(ctx.user, client(ctx))),
};

/** Spread into the `users` router. */
export const adminAccountProcedures = {
  delete: adminProcedure
    .meta(restMeta('users')('DELETE', '/users/{id}', 'Delete a user and everything they own (admins only)', { errors: [409] }))
    .input(userIdInput)
    .output(deletedSchema)
    .mutation(({ ctx, input }) => ctx.services.account.deleteByAdmin(ctx.user, input.id, ctx.log)),
};
