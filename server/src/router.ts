import { systemRouter } from './modules/system/router.js';
import { createCallerFactory, router } from './trpc/init.js';

export const appRouter = router({
  system: systemRouter,
});

/** The type the client SDK is built on. Import it with `import type` only. */
export type AppRouter = typeof appRouter;

export const createCaller = createCallerFactory(appRouter);
