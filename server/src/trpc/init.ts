import { initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { ZodError } from 'zod';
import { AppError } from '../lib/errors.js';
import { audit } from '../modules/auth/audit.js';
import { apiLimitExceeded } from '../modules/auth/rate-limits.js';
import type { Role } from '../modules/auth/schemas.js';
import type { Context } from './context.js';
import { toTRPCError } from './errors.js';
import { transformer } from './transformer.js';

/** Field errors keyed by the dotted path of the offending input (`items.0.name`); `_` for the root. */
export type FieldErrors = Record<string, string[]>;

function zodFieldErrors(error: ZodError): FieldErrors {
  const fields: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '_';
    fields[key] = [...(fields[key] ?? []), issue.message];
  }
  return fields;
}

// `meta.openapi` puts a procedure on the REST surface under /api (see server/src/openapi).
/**
 * tRPC answers TIMEOUT with 408, which tells a client that *it* was too slow, and some clients
 * (OkHttp) resend the request on a 408, even a POST. Keel's TIMEOUT is the database not answering
 * in time: 504, like a gateway whose upstream timed out.
 */
const httpStatusOf = (code: string, status: number): number => (code === 'TIMEOUT' ? 504 : status);

const builder = initTRPC.context<Context>().meta<OpenApiMeta>();

const t = builder.create({
  // superjson on the wire; answers are written by a faster walk of the same format (transformer.ts).
  transformer,
  // Stacks are added by the formatter below, only outside production.
  isDev: false,
  errorFormatter({ shape, error, ctx }) {
    // Without a context (it failed to build) we cannot know the mode: assume production.
    const production = ctx?.config.isProduction ?? true;
    const requestId = ctx?.requestId;
    const isInputError = error.code === 'BAD_REQUEST' && error.cause instanceof ZodError;
    const appError = error.cause instanceof AppError ? error.cause : undefined;
    const unexpected = error.code === 'INTERNAL_SERVER_ERROR';
    // A malformed body or ?input= fails JSON.parse: say so in our words, not the parser's.
    const isMalformed = error.code === 'BAD_REQUEST' && error.cause instanceof SyntaxError;
    let message = shape.message;
    if (isInputError) message = 'Invalid input.';
    else if (isMalformed) message = 'Malformed request: the input is not valid JSON.';
    else if (unexpected && production) message = `Internal server error. Reference: ${requestId ?? 'unknown'}.`;
    const fieldErrors = isInputError ? zodFieldErrors(error.cause) : appError?.fieldErrors;
    return {
      ...shape,
      message,
      data: {
        code: shape.data.code,
        httpStatus: httpStatusOf(shape.data.code, shape.data.httpStatus),
        ...(shape.data.path === undefined ? {} : { path: shape.data.path }),
        ...(requestId === undefined ? {} : { requestId }),
        ...(fieldErrors === undefined ? {} : { fieldErrors }),
        ...(appError?.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: appError.retryAfterSeconds }),
        ...(production ? {} : { stack: error.stack }),
      },
    };
  },
});

/** Maps domain, Prisma and database errors to tRPC codes for every procedure (see errors.ts). */
const errorMapping = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) {
    const mapped = toTRPCError(result.error);
    if (mapped !== result.error) throw mapped;
  }
  return result;
});

/**
 * Identical queries running at the same time in one request (a batch asking several times for the
 * same list, as separate components of a page do) run once and share the answer, like a
 * request-scoped DataLoader. Only concurrent calls share: a query made after another finished runs
 * again, and mutations never share.
 */
const sharedQueries = t.middleware(async ({ ctx, type, path, getRawInput, next }) => {
  if (type !== 'query') return next();
  const input = await getRawInput(); // a malformed input fails here, as a BAD_REQUEST
  let key: string;
  try {
    key = `${path}\u0000${JSON.stringify(input) ?? ''}`;
  } catch {
    return next(); // an input JSON cannot write (a BigInt): not shared, and its validation answers
  }
  const running = ctx.runningQueries.get(key) as ReturnType<typeof next> | undefined;
  if (running) return running;
  const result = next().finally(() => ctx.runningQueries.delete(key));
  ctx.runningQueries.set(key, result);
  return result;
});

/**
 * The general limit on every call (rate-limits.ts `checkApi`): per client address before
 * authentication, per user after it. Decided in memory: no database round trip per call.
 */
const apiLimit = (by: 'address' | 'user') =>
  t.middleware(({ ctx, next }) => {
    const decision = ctx.rateLimits.checkApi(by === 'address' ? { ip: ctx.ip } : { userId: ctx.user?.id });
    if (!decision.allowed) throw apiLimitExceeded(ctx.log, { ip: ctx.ip, userId: ctx.user?.id }, decision);
    return next();
  });

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;

/**
 * A valid access token (Authorization header only) puts a non-null `user` in the context and the
 * user id on the request's logger; anything else is UNAUTHORIZED, logged with the client address.
 */
const authenticated = t.middleware(async ({ ctx, next }) => {
  const token = ctx.authorization ? BEARER.exec(ctx.authorization)?.[1] : undefined;
  if (!token) {
    audit(ctx.log, 'auth.access_token.rejected', { ip: ctx.ip, reason: 'missing' });
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing access token.' });
  }
  const user = await ctx.services.auth.authenticate(token).catch((error: unknown) => {
    if (error instanceof AppError && error.code === 'UNAUTHORIZED')
      audit(ctx.log, 'auth.access_token.rejected', { ip: ctx.ip, reason: error.message });
    throw error;
  });
  ctx.identify?.(user.id);
  return next({ ctx: { user, log: ctx.log.child({ userId: user.id }) } });
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(errorMapping).use(apiLimit('address')).use(sharedQueries);
export const authedProcedure = publicProcedure.use(authenticated).use(apiLimit('user'));

/** Authenticated, and of `role`: others get FORBIDDEN. */
export const requireRole = (role: Role) =>
  authedProcedure.use(({ ctx, next }) => {
    if (ctx.user.role !== role) throw new TRPCError({ code: 'FORBIDDEN', message: 'You are not allowed to do this.' });
    return next();
  });

export const adminProcedure = requireRole('ADMIN');
export { TRPCError };
