import { z } from 'zod';
import { restMeta } from '../../openapi/meta.js';
import { publicProcedure, router } from '../../trpc/init.js';
import { VERSION } from '../../version.js';

export const healthOutput = z.object({
  status: z.literal('ok'),
  version: z.string(),
  uptimeSeconds: z.number().int().nonnegative(),
});

const rest = restMeta('system');

export const systemRouter = router({
  health: publicProcedure
    .meta(rest('GET', '/health', 'Liveness and version', { public: true }))
    .output(healthOutput)
    .query(() => ({
      status: 'ok' as const,
      version: VERSION,
      uptimeSeconds: Math.floor(process.uptime()),
    })),
});
