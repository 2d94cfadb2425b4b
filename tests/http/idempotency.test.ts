/**
 * Retries that lose nothing: a mutation sent with an Idempotency-Key runs once per caller, key and
 * input; its retry gets the first answer, byte for byte, marked `Idempotent-Replayed: true`.
 */
import { randomUUID } from 'node:crypto';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SECRET_CALLS } from '../../client-sdk/src/idempotency-link.js';
import { appRouter } from '../../server/src/router.js';
import { publicProcedure, router } from '../../server/src/trpc/init.js';
import { signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { decodeTrpcError, type SuperJsonEnvelope } from '../support/trpc-http.js';

const db = await useTestDatabase();
let clock = new Date('2026-06-01T10:00:00.000Z');
const deps = db.deps({ now: () => clock });
const server = await startTestServer(deps);
const prisma = deps.database.prisma;

/** A mutation that waits for a gate: two calls with one key can then overlap for sure. */
let gate: { opened: Promise<void>; open: () => void } | undefined;
let gatedRuns = 0;
const gatedRouter = router({
  slowCreate: publicProcedure.input(z.object({ n: z.number() })).mutation(async ({ input }) => {
    gatedRuns += 1;
    await gate?.opened;
    return { n: input.n, at: new Date(0) };
  }),
});
const gatedServer = await startTestServer(deps, { router: gatedRouter });

async function signedIn() {
  const user = await createUser(deps);
  return { user, authorization: `Bearer ${(await signIn(deps, user)).accessToken}` };
}

const trpcPost = (base: string, path: string, input: unknown, headers: Record<string, string>) =>
  fetch(`${base}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(superjson.serialize(input)),
  });

const errorOf = async (response: Response) => decodeTrpcError(((await response.json()) as { error: SuperJsonEnvelope }).error);
const projectsOf = (ownerId: string) => prisma.project.count({ where: { ownerId } });

describe('Idempotency-Key on mutations', () => {
  it('runs a retried tRPC create once and answers the retry with the same bytes, marked as replayed', async () => {
    const { user, authorization } = await signedIn();
    const key = randomUUID();
    const first = await trpcPost(server.url, 'projects.create', { name: 'Once' }, { authorization, 'idempotency-key': key });
    const retry = await trpcPost(server.url, 'projects.create', { name: 'Once' }, { authorization, 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.text()).toBe(await first.text());
    expect(await projectsOf(user.id)).toBe(1);
  });

  it('does the same over REST, and a new key makes a new call', async () => {
    const { user, authorization } = await signedIn();
    const post = (key: string) =>
      fetch(`${server.url}/api/projects`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization, 'idempotency-key': key },
        body: JSON.stringify({ name: 'Over REST' }),
      });
    const key = randomUUID();
    const first = await post(key);
    const retry = await post(key);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(await first.json());
    expect(await projectsOf(user.id)).toBe(1);
    expect((await post(randomUUID())).status).toBe(409); // a real second call: the name is taken
  });

  it('refuses the same key with another input as a CONFLICT that says why, and runs nothing', async () => {
    const { user, authorization } = await signedIn();
    const key = randomUUID();
    await trpcPost(server.url, 'projects.create', { name: 'First input' }, { authorization, 'idempotency-key': key });
    const reused = await trpcPost(server.url, 'projects.create', { name: 'Other input' }, { authorization, 'idempotency-key': key });
    expect(reused.status).toBe(409);
    expect((await errorOf(reused)).data).toMatchObject({ code: 'CONFLICT', reason: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await projectsOf(user.id)).toBe(1);
  });

  it("keeps each caller's keys apart: another user's call with the same key runs as its own", async () => {
    const a = await signedIn();
    const b = await signedIn();
    const key = randomUUID();
    await trpcPost(server.url, 'projects.create', { name: 'Same' }, { authorization: a.authorization, 'idempotency-key': key });
    const other = await trpcPost(
      server.url,
      'projects.create',
      { name: 'Same' },
      { authorization: b.authorization, 'idempotency-key': key },
    );
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(await projectsOf(b.user.id)).toBe(1);
  });

  it('forgets a call that failed, so that its retry runs again', async () => {
    const { authorization } = await signedIn();
    const key = randomUUID();
    const missing = { id: randomUUID(), version: 1, name: 'x' };
    const first = await trpcPost(server.url, 'projects.update', missing, { authorization, 'idempotency-key': key });
    expect(first.status).toBe(404);
    expect(await prisma.idempotencyKey.count({ where: { key } })).toBe(0);
    const retry = await trpcPost(server.url, 'projects.update', missing, { authorization, 'idempotency-key': key });
    expect(retry.status).toBe(404);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
  });

  it('answers a retry that overlaps the running call with CONFLICT and Retry-After, then replays once it is done', async () => {
    let open = () => {};
    gate = { opened: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
    gatedRuns = 0;
    const key = randomUUID();
    const running = trpcPost(gatedServer.url, 'slowCreate', { n: 1 }, { 'idempotency-key': key });
    // The first call has claimed the key once it runs.
    for (let i = 0; i < 200 && gatedRuns === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const overlapping = await trpcPost(gatedServer.url, 'slowCreate', { n: 1 }, { 'idempotency-key': key });
    expect(overlapping.status).toBe(409);
    expect(overlapping.headers.get('retry-after')).toBe('1');
    expect((await errorOf(overlapping)).data.reason).toBe('IDEMPOTENCY_KEY_IN_PROGRESS');
    gate.open();
    const first = await running;
    const later = await trpcPost(gatedServer.url, 'slowCreate', { n: 1 }, { 'idempotency-key': key });
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(await later.text()).toBe(await first.text());
    expect(gatedRuns).toBe(1);
  });

  it('keys each call of a batch on its own: the batch sent again is replayed call by call', async () => {
    const { user, authorization } = await signedIn();
    const key = randomUUID();
    const batch = () =>
      fetch(`${server.url}/trpc/projects.create,projects.create?batch=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization, 'idempotency-key': key },
        body: JSON.stringify({ 0: superjson.serialize({ name: 'B1' }), 1: superjson.serialize({ name: 'B2' }) }),
      });
    const first = await batch();
    const again = await batch();
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
    expect(await projectsOf(user.id)).toBe(2);
  });

  it('runs the call again once the key has expired (IDEMPOTENCY_TTL_SECONDS, 24 h)', async () => {
    const { user, authorization } = await signedIn();
    const key = randomUUID();
    await trpcPost(server.url, 'projects.create', { name: 'Old' }, { authorization, 'idempotency-key': key });
    clock = new Date(clock.getTime() + 86_400_000 + 1_000);
    try {
      const { authorization: fresh } = { authorization: `Bearer ${(await signIn(deps, user)).accessToken}` };
      const later = await trpcPost(server.url, 'projects.create', { name: 'Old' }, { authorization: fresh, 'idempotency-key': key });
      expect(later.headers.get('idempotent-replayed')).toBeNull();
      expect(later.status).toBe(409); // it ran: the name is taken by the first call
    } finally {
      clock = new Date('2026-06-01T10:00:00.000Z');
    }
  });

  it('takes over a claim left unanswered by a crash once a request could no longer be running', async () => {
    const { user, authorization } = await signedIn();
    const key = randomUUID();
    await prisma.idempotencyKey.create({
      data: {
        scope: `user:${user.id}`,
        key,
        path: 'projects.create',
        fingerprint: 'f'.repeat(64),
        createdAt: new Date(clock.getTime() - 10 * 60_000),
        expiresAt: new Date(clock.getTime() + 3_600_000),
      },
    });
    const call = await trpcPost(server.url, 'projects.create', { name: 'After a crash' }, { authorization, 'idempotency-key': key });
    expect(call.status).toBe(200);
    expect(await projectsOf(user.id)).toBe(1);
  });

  it('refuses a key on calls that handle credentials (their inputs and answers are never stored) and a malformed key', async () => {
    const { user } = await signedIn();
    const login = await trpcPost(
      server.url,
      'auth.login',
      { email: user.email, password: user.password },
      { 'idempotency-key': randomUUID() },
    );
    expect(login.status).toBe(400);
    expect((await errorOf(login)).data.reason).toBe('IDEMPOTENCY_NOT_SUPPORTED');
    const { authorization } = await signedIn();
    for (const key of ['', 'x'.repeat(256), 'naïve']) {
      const bad = await trpcPost(server.url, 'projects.create', { name: `k${key.length}` }, { authorization, 'idempotency-key': key });
      expect(bad.status, JSON.stringify(key)).toBe(400);
      expect((await errorOf(bad)).data.reason).toBe('INVALID_IDEMPOTENCY_KEY');
    }
    expect(await prisma.idempotencyKey.count({ where: { path: 'auth.login' } })).toBe(0);
  });

  it("keeps the SDK's list of calls without a key equal to the procedures that handle secrets", () => {
    const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { meta?: { handlesSecrets?: boolean } } }>;
    const secret = Object.entries(procedures)
      .filter(([, procedure]) => procedure._def.meta?.handlesSecrets === true)
      .map(([path]) => path)
      .sort();
    expect([...SECRET_CALLS].sort()).toEqual(secret);
  });
});
