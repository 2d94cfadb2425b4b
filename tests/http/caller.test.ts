/**
 * The same procedures in-process, through `createCaller`: the middleware and error mapping are the
 * ones HTTP uses, and errors reach the caller as `TRPCError`s with mapped codes (the formatter,
 * which shapes what HTTP clients see, does not apply here).
 */
import { TRPCError } from '@trpc/server';
import { afterAll, describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { createDatabase } from '../../server/src/db/client.js';
import { freePort } from '../../server/src/db/embedded.js';
import { AppError } from '../../server/src/lib/errors.js';
import { VERSION } from '../../server/src/version.js';
import { callerAs, callerWith, contextOf } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { createTestCaller, LEAKY_MESSAGE } from './fixtures.js';

const db = await useTestDatabase();
const deps = db.deps();
const caller = createTestCaller(deps.database.prisma)(contextOf(deps));

/** Runs `call`, expecting it to reject with a TRPCError; returns that error. */
async function trpcErrorOf(call: () => Promise<unknown>): Promise<TRPCError> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return error as TRPCError;
}

describe('createCaller', () => {
  it('system.health returns { status: ok, version, uptimeSeconds }', async () => {
    const health = await callerWith(deps).system.health();
    expect(health).toEqual({ status: 'ok', version: VERSION, uptimeSeconds: expect.any(Number) });
  });

  it('gives the context the request id it was called with', async () => {
    const context = contextOf(deps, { requestId: 'caller-request-1' });
    expect(context.request.requestId).toBe('caller-request-1');
    expect(context.services).toBe(deps.services);
  });

  it('acts as a principal passed in the context, without any token, and refuses the role it lacks', async () => {
    const user = await createUser(deps);
    const principal = { id: user.id, role: user.role, sessionId: '00000000-0000-4000-8000-000000000000' };
    expect((await callerAs(deps, principal).auth.me()).id).toBe(user.id);
    const refused = await trpcErrorOf(() => callerAs(deps, { ...principal, role: 'USER' }).users.list({}));
    expect(refused.code).toBe('FORBIDDEN');
    // Without a principal the same call needs a token.
    expect((await trpcErrorOf(() => callerWith(deps).auth.me())).code).toBe('UNAUTHORIZED');
  });

  it('surfaces invalid input as BAD_REQUEST caused by the ZodError that names each field', async () => {
    const error = await trpcErrorOf(() => caller.register({ email: 'nope', age: 3, nested: { name: '' } }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.cause).toBeInstanceOf(ZodError);
    const paths = (error.cause as ZodError).issues.map((i) => i.path.join('.')).sort();
    expect(paths).toEqual(['age', 'email', 'nested.name']);
  });

  it('surfaces an unexpected error as INTERNAL_SERVER_ERROR with the original error as cause', async () => {
    const error = await trpcErrorOf(() => caller.explode());
    expect(error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toBe(LEAKY_MESSAGE);
  });

  it('surfaces an AppError under its own code, keeping it (and its field errors) as cause', async () => {
    const error = await trpcErrorOf(() => caller.conflict());
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('That name is taken.');
    expect(error.cause).toBeInstanceOf(AppError);
    expect((error.cause as AppError).fieldErrors).toEqual({ name: ['already taken'] });
  });

  it('maps a unique violation in the real database to CONFLICT naming the field', async () => {
    await caller.createUser({ email: 'twice@example.com' });
    const error = await trpcErrorOf(() => caller.createUser({ email: 'twice@example.com' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('A record with this email already exists.');
    expect((error.cause as AppError).fieldErrors).toEqual({ email: ['already exists'] });
  });

  it('maps an update of a missing row (Prisma P2025) to NOT_FOUND', async () => {
    const error = await trpcErrorOf(() => caller.renameMissingUser());
    expect(error.code).toBe('NOT_FOUND');
  });

  it('maps a database nobody listens on to SERVICE_UNAVAILABLE', async () => {
    const url = new URL(db.url);
    url.port = String(await freePort());
    const unreachable = createDatabase(url.toString(), deps.config.database, deps.logger);
    afterAll(() => unreachable.close());
    const offline = createTestCaller(unreachable.prisma)(contextOf(deps));
    const error = await trpcErrorOf(() => offline.userCount());
    expect(error.code).toBe('SERVICE_UNAVAILABLE');
    expect(error.message).toBe('The database is unavailable. Retry later.');
  });
});
