import { authRouter } from './modules/auth/router.js';
import { projectsRouter } from './modules/projects/router.js';
import { serviceAccountsRouter } from './modules/service-accounts/router.js';
import { systemRouter } from './modules/system/router.js';
import { tasksRouter } from './modules/tasks/router.js';
import { usersRouter } from './modules/users/router.js';
import { createCallerFactory, router } from './trpc/init.js';

export const appRouter = router({
  system: systemRouter,
  auth: authRouter,
  projects: projectsRouter,
  tasks: tasksRouter,
  users: usersRouter,
  serviceAccounts: serviceAccountsRouter,
});

/** The type the client SDK is built on. Import it with `import type` only. */
export type AppRouter = typeof appRouter;

export const createCaller = createCallerFactory(appRouter);
