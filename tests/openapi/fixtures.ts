/**
 * A small router on the REST surface, built with the project's own procedures, for the paths the
 * real routers cannot take on demand: an unexpected error, a database outage, query coercion of
 * every scalar type.
 */
import { z } from 'zod';
import { AppError } from '../../server/src/lib/errors.js';
import { restMeta } from '../../server/src/openapi/meta.js';
import { publicProcedure, router } from '../../server/src/trpc/init.js';

/** Secret-looking text of an unexpected error: it must never reach a client in production. */
export const LEAKY_MESSAGE = 'db password=hunter2-leaked';

const rest = restMeta('test');
const ok = z.object({ ok: z.literal(true) });

export const restTestRouter = router({
  explode: publicProcedure
    .meta(rest('GET', '/explode', 'Fails unexpectedly', { public: true }))
    .output(ok)
    .query(() => {
      throw new Error(LEAKY_MESSAGE);
    }),
  outage: publicProcedure
    .meta(rest('GET', '/outage', 'Fails as if the database were down', { public: true }))
    .output(ok)
    .query(() => {
      // What pg throws when nothing listens: Node's socket error, classified by its code and syscall.
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect', errno: -111 });
    }),
  conflict: publicProcedure
    .meta(rest('POST', '/conflict', 'Fails with a domain error', { public: true, errors: [409] }))
    .input(z.strictObject({ name: z.string().min(1) }))
    .output(ok)
    .mutation(() => {
      throw new AppError('CONFLICT', 'That name is taken.', { fieldErrors: { name: ['already taken'] } });
    }),
  echo: publicProcedure
    .meta(rest('GET', '/echo/{id}', 'Returns its query input as parsed', { public: true }))
    .input(
      z.strictObject({
        id: z.uuid(),
        count: z.number().int(),
        flag: z.boolean().default(true),
        at: z.date().optional(),
        tag: z.enum(['a', 'b']).optional(),
      }),
    )
    .output(z.object({ id: z.uuid(), count: z.number(), flag: z.boolean(), at: z.date().nullable(), tag: z.string().nullable() }))
    .query(({ input }) => ({ ...input, at: input.at ?? null, tag: input.tag ?? null })),
});
