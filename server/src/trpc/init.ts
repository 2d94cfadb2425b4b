import { getTRPCErrorFromUnknown, initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { AppError } from '../lib/errors.js';
import { parseIdempotencyKey } from '../lib/idempotency.js';
import { audit } from '../modules/auth/audit.js';
import { type ApiCaller, apiLimitExceeded } from '../modules/auth/rate-limits.js';
import type { Role } from '../modules/auth/schemas.js';
import type { AuthUser } from '../modules/auth/types.js';
import { authenticateService } from '../modules/service-accounts/authenticate.js';
import { requireScope, type Scope } from '../modules/service-accounts/scopes.js';
import { looksLikeServiceToken } from '../modules/service-accounts/tokens.js';
import { hooks } from '../observability/hooks.js';
import type { Context } from './context.js';
import { describeError, toTRPCError } from './error-edge.js';
import { transformer } from './transformer.js';

// `meta.openapi` puts a procedure on the REST surface under /api (see server/src/openapi).
/** What a procedure declares beyond its schemas: its REST route (openapi/meta.ts), and the flags below. */
export interface Meta extends OpenApiMeta {
  /**
   * The call's input or answer holds secrets (passwords, tokens): nothing of it is ever stored, so
   * an Idempotency-Key on it is refused (a stored answer or even a hash of the input would be a copy
   * of a credential). These calls have retries of their own: a refresh's grace window, a new sign-in.
   */
  handlesSecrets?: boolean;
  /**
   * A REST create: the answer's `id` names a new resource at this path under /api (`/projects/{id}`):
   * REST answers 201 with `Location` (openapi/meta.ts, `rest(..., { created })`).
   */
  restCreated?: `/${string}{id}${string}`;
  /**
   * The scope a service token needs to call this procedure (modules/service-accounts/scopes.ts).
   * Without one, the procedure is closed to service tokens; user tokens never need one.
   */
  scope?: Scope;
}

const builder = initTRPC.context<Context>().meta<Meta>();

const t = builder.create({
  // superjson on the wire; answers are written by a faster walk of the same format (transformer.ts).
  transformer,
  // Stacks are added by the formatter below, only outside production.
  isDev: false,
  // The error edge (error-edge.ts) decides status, message, reason and field errors; this only wraps them in tRPC's shape.
  errorFormatter({ shape, error, ctx }) {
    // Without a context (it failed to build) we cannot know the mode: assume production.
    const production = ctx?.config.isProduction ?? true;
    const requestId = ctx?.request.requestId;
    const answer = describeError(error, { production, requestId });
    return {
      ...shape,
      message: answer.message,
      data: {
        code: shape.data.code,
        httpStatus: answer.status,
        ...(shape.data.path === undefined ? {} : { path: shape.data.path }),
        ...(requestId === undefined ? {} : { requestId }),
        ...(answer.reason === undefined ? {} : { reason: answer.reason }),
        ...(answer.fieldErrors === undefined ? {} : { fieldErrors: answer.fieldErrors }),
        ...(answer.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: answer.retryAfterSeconds }),
        ...(production ? {} : { stack: error.stack }),
      },
    };
  },
});

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i;

/**
 * The caller of an authenticated procedure, or UNAUTHORIZED, logged with the client address. A
 * batch verifies its token once.
 */
async function authenticate(ctx: Context): Promise<AuthUser> {
  const header = ctx.request.authorization;
  if (!header) {
    audit(ctx.log, 'auth.access_token.rejected', { ip: ctx.request.ip, reason: 'missing' });
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing access token.' });
  }
  const token = BEARER.exec(header)?.[1];
  if (!token) {
    // Sent, but not as `Bearer <JWT>` (another scheme, a cut or padded token): saying "missing"
    // would send its author looking for the wrong fault.
    audit(ctx.log, 'auth.access_token.rejected', { ip: ctx.request.ip, reason: 'malformed' });
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Malformed Authorization header: send `Bearer <access token>`.' });
  }
  // User tokens first (a Map lookup once verified); a service token goes there only the first time
  // it is seen, and is then known to the service verifier (docs/decisions/0016-service-identities.md).
  const services = ctx.services;
  const verify = services.serviceTokens.isKnown(token)
    ? authenticateService(services, ctx.config, token)
    : services.authenticator.authenticate(token).catch((error: unknown) => {
        if (error instanceof AppError && error.code === 'UNAUTHORIZED' && looksLikeServiceToken(token))
          return authenticateService(services, ctx.config, token);
        throw error;
      });
  const user = await verify.catch((error: unknown) => {
    if (error instanceof AppError && error.code === 'UNAUTHORIZED')
      audit(ctx.log, 'auth.access_token.rejected', { ip: ctx.request.ip, reason: error.message });
    throw error;
  });
  // The request's log line (written by the transport) names the user; a batch shares one token.
  ctx.request.userId = user.id;
  return user;
}

const anyone = async (): Promise<null> => null;
const signedIn =
  (role?: Role) =>
  async (ctx: Context, meta: Meta | undefined): Promise<AuthUser> => {
    // An in-process caller may name its principal (trpc/context.ts); everyone else shows a token.
    const user = ctx.user ?? (await authenticate(ctx));
    // A service passes on its scope alone: roles are for people.
    if (user.service) {
      requireScope(user.service, meta?.scope);
      return user;
    }
    if (role !== undefined && user.role !== role) throw new TRPCError({ code: 'FORBIDDEN', message: 'You are not allowed to do this.' });
    return user;
  };

/**
 * Identical queries running at the same time in one request (a batch asking several times for the
 * same list, as separate components of a page do) run once and share the answer, like a
 * request-scoped DataLoader. Only concurrent calls of a batch share: a query made after another
 * finished runs again, and mutations never share. Undefined when the call cannot share.
 */
function sharingKey(ctx: Context, type: string, path: string, input: unknown): string | undefined {
  if (type !== 'query' || ctx.runningQueries === undefined) return undefined;
  try {
    return `${path}\u0000${JSON.stringify(input) ?? ''}`;
  } catch {
    return undefined; // an input JSON cannot write (a BigInt): not shared, and its validation answers
  }
}

/** The general limit (rate-limits.ts `checkApi`): decided in memory, no database round trip per call. */
function limitCall(ctx: Context, who: ApiCaller): void {
  const decision = ctx.services.rateLimits.checkApi(who);
  if (!decision.allowed) throw apiLimitExceeded(ctx.log, { ip: ctx.request.ip, ...who }, decision);
}

/** tRPC 11's mark on a middleware result (a plain string there): a replayed answer carries it too. */
const MIDDLEWARE_MARKER = 'middlewareMarker';

/**
 * A mutation sent with an Idempotency-Key (lib/idempotency.ts): runs once per caller, key and call
 * of the batch; a retry of the same call gets the stored answer, marked for the transport to say so.
 */
async function idempotent<R extends { ok: boolean; marker: unknown }>(
  ctx: Context,
  call: { user: AuthUser | null; path: string; input: unknown; batchIndex: number; handlesSecrets: boolean },
  run: () => Promise<R>,
): Promise<R> {
  const clientKey = parseIdempotencyKey(ctx.request.idempotencyKey);
  if (clientKey === undefined) return run();
  if (call.handlesSecrets) {
    throw new AppError('BAD_REQUEST', `${call.path} does not take an Idempotency-Key: it handles credentials, which are never stored.`, {
      reason: 'IDEMPOTENCY_NOT_SUPPORTED',
    });
  }
  const store = ctx.services.idempotency;
  const slot = {
    scope: call.user ? `user:${call.user.id}` : 'public',
    key: ctx.request.calls > 1 ? `${clientKey}#${call.batchIndex}` : clientKey,
  };
  const claim = await store.claim({ ...slot, path: call.path, rawInput: call.input });
  if (claim.kind === 'replay') {
    ctx.request.replayed = true;
    return { ok: true, data: claim.answer, marker: MIDDLEWARE_MARKER } as unknown as R;
  }
  let result: R;
  try {
    result = await run();
  } catch (error) {
    await store.release(slot).catch(() => {});
    throw error;
  }
  if (result.ok) {
    const { data } = result as unknown as { data: unknown };
    // The call is done; only its replay is lost if this fails, and its claim blocks a rerun until abandoned.
    await store
      .complete({ ...slot, answer: data })
      .catch((error: unknown) => ctx.log.warn({ err: error, path: call.path }, 'idempotency: could not store the answer'));
  } else {
    await store.release(slot).catch(() => {});
  }
  return result;
}

/**
 * Every procedure's one middleware: the request's input read (a malformed one fails every call),
 * the caller (`caller` resolves it: anyone, or a signed-in user of an optional role), sharing of identical queries in a batch, and the mapping of domain, Prisma
 * and database errors to tRPC codes (errors.ts). One level instead of one per concern: tRPC copies
 * the call's options and context at every level, a measurable share of a cheap call
 * (docs/decisions/0011-request-path.md).
 */
function pipeline<U extends AuthUser | null>(caller: (ctx: Context, meta: Meta | undefined) => Promise<U>) {
  return t.middleware(({ ctx, type, path, getRawInput, meta, batchIndex, next }) => {
    const run = async () => {
      limitCall(ctx, { ip: ctx.request.ip });
      // Read first, also by procedures that take no input: a malformed one is refused, never ignored.
      const input = await getRawInput();
      const user = await caller(ctx, meta);
      if (user) limitCall(ctx, { userId: user.id });
      // REQUIRE_VERIFIED_EMAIL: a person's calls but auth.* (sign-in, verification) wait for a verified
      // email; a service account has no email (its admin vouched for it).
      if (user && !user.service && ctx.config.accounts.requireVerifiedEmail && !path.startsWith('auth.'))
        await ctx.services.account.assertEmailVerified(user.id);
      const call = () => next({ ctx: { user } });
      if (type === 'mutation' && ctx.request.idempotencyKey !== undefined) {
        return idempotent(ctx, { user, path, input, batchIndex, handlesSecrets: meta?.handlesSecrets === true }, call);
      }
      const key = sharingKey(ctx, type, path, input);
      if (key === undefined || ctx.runningQueries === undefined) return call();
      const running = ctx.runningQueries.get(key) as ReturnType<typeof call> | undefined;
      if (running) return running;
      const started = call();
      ctx.runningQueries.set(key, started);
      return started.finally(() => ctx.runningQueries?.delete(key));
    };
    // Spans, metrics and slow logs (observability/hooks.ts): one property read when they are off.
    const observe = hooks.procedure;
    return observe === undefined ? settle(run) : observe(ctx, type, path, () => settle(run));
  });
}

/** A call's result, its errors mapped to tRPC codes (error-edge.ts). */
async function settle<R extends { ok: boolean; error?: unknown }>(run: () => Promise<R>): Promise<R> {
  let result: R;
  try {
    result = await run();
  } catch (cause) {
    throw toTRPCError(getTRPCErrorFromUnknown(cause));
  }
  if (!result.ok) {
    const mapped = toTRPCError(getTRPCErrorFromUnknown(result.error));
    if (mapped !== result.error) throw mapped;
  }
  return result;
}

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(pipeline(anyone));
/** A non-null `ctx.user`, or UNAUTHORIZED (over HTTP with `WWW-Authenticate: Bearer`). */
export const authedProcedure = t.procedure.use(pipeline(signedIn()));
/** Authenticated, and of `role`: others get FORBIDDEN. */
export const requireRole = (role: Role) => t.procedure.use(pipeline(signedIn(role)));
export const adminProcedure = requireRole('ADMIN');
