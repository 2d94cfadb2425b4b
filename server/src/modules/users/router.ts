import { restMeta } from '../../openapi/meta.js';
import { adminProcedure, router } from '../../trpc/init.js';
import { adminUserSchema, listUsersInput, setActiveInput, setRoleInput, userIdInput, userPageSchema } from './schemas.js';

const rest = restMeta('users');

/** ADMIN only: every procedure is built on `adminProcedure`. */
export const usersRouter = router({
  list: adminProcedure
    .meta(rest('GET', '/users', 'Users, newest first (admins only)'))
    .input(listUsersInput)
    .output(userPageSchema)
    .query(({ ctx, input }) => ctx.services.users.list(input)),
  byId: adminProcedure
    .meta(rest('GET', '/users/{id}', 'One user (admins only)'))
    .input(userIdInput)
    .output(adminUserSchema)
    .query(({ ctx, input }) => ctx.services.users.byId(input.id)),
  setRole: adminProcedure
    .meta(rest('PUT', '/users/{id}/role', "Set a user's role (admins only)", { errors: [409] }))
    .input(setRoleInput)
    .output(adminUserSchema)
    .mutation(({ ctx, input }) => ctx.services.users.setRole(input.id, input.role)),
  setActive: adminProcedure
    .meta(rest('PUT', '/users/{id}/active', 'Deactivate or reactivate a user (admins only)', { errors: [409] }))
    .input(setActiveInput)
    .output(adminUserSchema)
    .mutation(({ ctx, input }) => ctx.services.users.setActive(input.id, input.active)),
});
