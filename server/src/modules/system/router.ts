import { z } from 'zod';
import { publicProcedure, router } from '../../trpc/init.js';
import { VERSION } from '../../version.js';

export const healthOutput = z.object({
  status: z.literal('ok'),
  version: z.string(),
  uptimeSeconds: z.number().int().nonnegative(),
});

export const systemRouter = router({
  health: publicProcedure.output(healthOutput).query(() => ({
    status: 'ok' as const,
    version: VERSION,
    uptimeSeconds: Math.floor(process.uptime()),
  })),
});
