/**
 * A small router built with the project's own `router` / `publicProcedure`, so tests exercise the
 * real middleware, error mapping and error formatter on procedures that fail on purpose.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { PrismaClient } from '../../server/src/db/client.js';
import { AppError } from '../../server/src/lib/errors.js';
import { restMeta } from '../../server/src/openapi/meta.js';
import { createCallerFactory, publicProcedure, router } from '../../server/src/trpc/init.js';

/** The secret-looking text an unexpected error carries; it must never reach a client in production. */
export const LEAKY_MESSAGE = 'db password=hunter2-leaked';

/**
 * Built for one database: procedures read it directly (the production context carries services,
 * not the client), which is what these failure cases need.
 */
export const testRouterFor = (db: PrismaClient) =>
  router({
    /** (a) Validates its input with zod. */
    register: publicProcedure
      .input(z.object({ email: z.email(), age: z.number().int().min(18), nested: z.object({ name: z.string().min(1) }).optional() }))
      .mutation(({ input }) => ({ ok: true as const, email: input.email })),
    /** (b) Fails with an unexpected error whose message must stay on the server. */
    explode: publicProcedure.query(() => {
      throw new Error(LEAKY_MESSAGE);
    }),
    /** (c) Fails with a domain error carrying field errors. */
    conflict: publicProcedure.mutation(() => {
      throw new AppError('CONFLICT', 'That name is taken.', { fieldErrors: { name: ['already taken'] } });
    }),
    /** Needs the database: fails when it is down. */
    userCount: publicProcedure.query(() => db.user.count()),
    /** Creates a user: a second call with the same email violates the unique index. */
    createUser: publicProcedure
      .input(z.object({ email: z.email() }))
      .mutation(({ input }) => db.user.create({ data: { email: input.email, passwordHash: 'not-a-real-hash' }, select: { id: true } })),
    /** A query slower than any statement timeout the tests set; on the REST surface too. */
    slowQuery: publicProcedure
      .meta(restMeta('test')('GET', '/test/slow', 'A query slower than the statement timeout', { public: true }))
      .input(z.object({}).optional())
      .output(z.object({ done: z.boolean() }))
      .query(async () => {
        await db.$queryRaw`SELECT 1 AS slept FROM pg_sleep(2)`;
        return { done: true };
      }),
    /** Updates a user that does not exist (Prisma P2025). */
    renameMissingUser: publicProcedure.mutation(() =>
      db.user.update({ where: { id: randomUUID() }, data: { name: 'nobody' }, select: { id: true } }),
    ),
  });

export const createTestCaller = (db: PrismaClient) => createCallerFactory(testRouterFor(db));

/** A superjson-encoded tRPC body or query input. */
export const superjsonInput = (value: unknown) => JSON.stringify({ json: value });

/**
 * Config overrides for a complete production environment (what `parseConfig` demands there),
 * with a freshly generated signing key and an SMTP URL nothing listens on.
 */
export function productionEnv(): Record<string, string> {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return {
    NODE_ENV: 'production',
    CORS_ORIGINS: 'none',
    JWT_KEYS: JSON.stringify({ keys: [{ ...jwk, kid: 'test-key-1', alg: 'EdDSA', use: 'sig' }] }),
    MAIL_TRANSPORT: 'smtp',
    SMTP_URL: 'smtp://127.0.0.1:9',
    SERVICE_SECRET_HASH_KEY: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
    APP_URL: 'https://app.example.com',
    TWO_FACTOR_ENCRYPTION_KEYS: randomBytes(32).toString('base64'),
  };
}
