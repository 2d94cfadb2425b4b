import { adminProcedure, router } from '../../trpc/init.js';
import { adminUserSchema, listUsersInput, setActiveInput, setRoleInput, userIdInput, userPage } from './schemas.js';

/** ADMIN only: every procedure is built on `adminProcedure`. */
export const usersRouter = router({
  list: adminProcedure
    .input(listUsersInput)
    .output(userPage)
    .query(({ ctx, input }) => ctx.services.users.list(input)),
  byId: adminProcedure
    .input(userIdInput)
    .output(adminUserSchema)
    .query(({ ctx, input }) => ctx.services.users.byId(input.id)),
  setRole: adminProcedure
    .input(setRoleInput)
    .output(adminUserSchema)
    .mutation(({ ctx, input }) => ctx.services.users.setRole(input.id, input.role)),
  setActive: adminProcedure
    .input(setActiveInput)
    .output(adminUserSchema)
    .mutation(({ ctx, input }) => ctx.services.users.setActive(input.id, input.active)),
});
