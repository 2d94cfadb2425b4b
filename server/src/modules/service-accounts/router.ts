import { restMeta } from '../../openapi/meta.js';
import { adminProcedure, router } from '../../trpc/init.js';
import {
  createServiceAccountInput,
  issuedCredentialsSchema,
  listServiceAccountsInput,
  serviceAccountIdInput,
  serviceAccountPage,
  serviceAccountSchema,
  updateServiceAccountInput,
} from './schemas.js';

const rest = restMeta('service accounts');

/** ADMIN only. Answers that carry a secret are never stored (`handlesSecrets`: no Idempotency-Key). */
export const serviceAccountsRouter = router({
  create: adminProcedure
    .meta({
      ...rest('POST', '/service-accounts', 'Create a service account; its secret is shown once (admins only)'),
      handlesSecrets: true,
    })
    .input(createServiceAccountInput)
    .output(issuedCredentialsSchema)
    .mutation(({ ctx, input }) => ctx.services.serviceAccounts.create(input, { userId: ctx.user.id, ip: ctx.request.ip, log: ctx.log })),
  list: adminProcedure
    .meta(rest('GET', '/service-accounts', 'Service accounts, newest first (admins only)'))
    .input(listServiceAccountsInput)
    .output(serviceAccountPage)
    .query(({ ctx, input }) => ctx.services.serviceAccounts.list(input)),
  get: adminProcedure
    .meta(rest('GET', '/service-accounts/{id}', 'One service account (admins only)'))
    .input(serviceAccountIdInput)
    .output(serviceAccountSchema)
    .query(({ ctx, input }) => ctx.services.serviceAccounts.get(input.id)),
  update: adminProcedure
    .meta(rest('PATCH', '/service-accounts/{id}', 'Rename or change scopes (admins only)', { errors: [409] }))
    .input(updateServiceAccountInput)
    .output(serviceAccountSchema)
    .mutation(({ ctx, input }) => ctx.services.serviceAccounts.update(input, { userId: ctx.user.id, ip: ctx.request.ip, log: ctx.log })),
  rotateSecret: adminProcedure
    .meta({
      ...rest('POST', '/service-accounts/{id}/rotate-secret', 'New secret, shown once; the old one works for the overlap (admins only)', {
        errors: [409],
      }),
      handlesSecrets: true,
    })
    .input(serviceAccountIdInput)
    .output(issuedCredentialsSchema)
    .mutation(({ ctx, input }) =>
      ctx.services.serviceAccounts.rotateSecret(input.id, { userId: ctx.user.id, ip: ctx.request.ip, log: ctx.log }),
    ),
  revoke: adminProcedure
    .meta(rest('POST', '/service-accounts/{id}/revoke', 'Revoke: no more tokens (admins only)', { errors: [409] }))
    .input(serviceAccountIdInput)
    .output(serviceAccountSchema)
    .mutation(({ ctx, input }) => ctx.services.serviceAccounts.revoke(input.id, { userId: ctx.user.id, ip: ctx.request.ip, log: ctx.log })),
});
