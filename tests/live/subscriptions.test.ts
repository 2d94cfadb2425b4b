/**
 * Live updates end to end over HTTP: two instances on one database, SDK clients with the SSE
 * subscription transport, writes on one instance seen by subscribers on the other.
 */
import { describe, expect, it } from 'vitest';
import { createKeelClient, isKeelError, type KeelClient, type KeelClientOptions } from '../../client-sdk/src/index.js';
import { keelSubscriptions } from '../../client-sdk/src/live.js';
import type { LiveEvent } from '../../server/src/live/schemas.js';
import { movableClock } from '../support/clock.js';
import { useTestDatabase } from '../support/database.js';
import { createUser, KNOWN_PASSWORD, type TestUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();
const config = { RATE_LIMIT_ENABLED: 'false', LIVE_MAX_STREAMS_PER_USER: '3', LIVE_HEARTBEAT_SECONDS: '1' };
const depsA = db.deps({ config });
const depsB = db.deps({ config });
const a = await startTestServer(depsA);
const b = await startTestServer(depsB);
await Promise.all([depsA.services.live.whenUp(), depsB.services.live.whenUp()]);

type Received = { id: string | undefined; event: LiveEvent };

/** A subscription's events and its end, as promises a test can wait on. */
class Stream {
  readonly events: Received[] = [];
  error: unknown;
  #waiters: (() => void)[] = [];
  unsubscribe: () => void = () => {};

  push(item: Received): void {
    this.events.push(item);
    this.#wake();
  }

  fail(error: unknown): void {
    this.error = error;
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until an event matches (from `from` on); returns it. */
  async next(match: (e: LiveEvent) => boolean, from = 0): Promise<Received> {
    for (;;) {
      const found = this.events.slice(from).find((r) => match(r.event));
      if (found) return found;
      if (this.error !== undefined) throw this.error;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async ended(): Promise<unknown> {
    while (this.error === undefined) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.error;
  }
}

function clientFor(url: string, options: Partial<KeelClientOptions> = {}): KeelClient {
  return createKeelClient({ url, subscriptions: keelSubscriptions({ initialDelayMs: 50, retryMs: 50 }), ...options });
}

async function signedIn(url: string, user: TestUser, options: Partial<KeelClientOptions> = {}): Promise<KeelClient> {
  const client = clientFor(url, options);
  await client.login({ email: user.email, password: KNOWN_PASSWORD });
  return client;
}

function watchProjects(client: KeelClient, input?: { lastEventId?: string }): Stream {
  const stream = new Stream();
  const sub = client.projects.onChange.subscribe(input, {
    onData: (data) => stream.push({ id: data.id, event: data.data }),
    onError: (error) => stream.fail(error),
  });
  stream.unsubscribe = () => sub.unsubscribe();
  return stream;
}

function watchTasks(client: KeelClient, projectId: string, lastEventId?: string): Stream {
  const stream = new Stream();
  const sub = client.tasks.onChange.subscribe(
    { projectId, ...(lastEventId ? { lastEventId } : {}) },
    {
      onData: (data) => stream.push({ id: data.id, event: data.data }),
      onError: (error) => stream.fail(error),
    },
  );
  stream.unsubscribe = () => sub.unsubscribe();
  return stream;
}

const isProject = (op: string, projectId?: string) => (e: LiveEvent) =>
  e.type === 'project' && e.op === op && (projectId === undefined || e.projectId === projectId);

describe('live updates across two instances', () => {
  it('delivers to a subscriber on instance A a project created through instance B, with ids and versions only', async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const onB = await signedIn(b.url, user);
    const stream = watchProjects(onA);
    await stream.next((e) => e.type === 'ready');

    const project = await onB.projects.create.mutate({ name: 'Seen elsewhere' });
    const got = await stream.next(isProject('created', project.id));
    expect(got.event).toEqual({ type: 'project', op: 'created', projectId: project.id, version: 1 });
    expect(got.id).toMatch(/:\d+$/);

    await onB.projects.update.mutate({ id: project.id, version: 1, name: 'Renamed' });
    expect((await stream.next(isProject('updated', project.id))).event).toMatchObject({ version: 2 });
    await onB.projects.archive.mutate({ id: project.id, version: 2 });
    expect((await stream.next(isProject('archived', project.id))).event).toMatchObject({ version: 3 });
    stream.unsubscribe();
  });

  it("shows nobody else's changes, and nothing of a rolled-back write", async () => {
    const user = await createUser(depsA);
    const other = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const stream = watchProjects(onA);
    await stream.next((e) => e.type === 'ready');

    const otherClient = await signedIn(b.url, other);
    await otherClient.projects.create.mutate({ name: 'Not yours' });
    await expect(
      depsB.database.prisma.$transaction(async (tx) => {
        await tx.project.create({ data: { ownerId: user.id, name: 'Rolled back' } });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const onB = await signedIn(b.url, user);
    const kept = await onB.projects.create.mutate({ name: 'Kept' });

    await stream.next(isProject('created', kept.id));
    const projectEvents = stream.events.filter((r) => r.event.type === 'project');
    expect(projectEvents.map((r) => r.event)).toEqual([{ type: 'project', op: 'created', projectId: kept.id, version: 1 }]);
    stream.unsubscribe();
  });
});

describe('resuming', () => {
  it('replays what was missed after lastEventId, in order, on the same instance', async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const first = watchProjects(onA);
    const ready = await first.next((e) => e.type === 'ready');
    first.unsubscribe();

    const p1 = await onA.projects.create.mutate({ name: 'Missed one' });
    const p2 = await onA.projects.create.mutate({ name: 'Missed two' });
    const resumed = watchProjects(onA, { lastEventId: ready.id as string });
    await resumed.next(isProject('created', p2.id));
    expect(resumed.events.map((r) => r.event)).toEqual([
      { type: 'project', op: 'created', projectId: p1.id, version: 1 },
      { type: 'project', op: 'created', projectId: p2.id, version: 1 },
    ]);
    expect(resumed.events.some((r) => r.event.type === 'ready')).toBe(false);
    resumed.unsubscribe();
  });

  it('answers an id of another instance (or none it knows) with a typed resync', async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const onB = await signedIn(b.url, user);
    const first = watchProjects(onA);
    const ready = await first.next((e) => e.type === 'ready');
    first.unsubscribe();

    const elsewhere = watchProjects(onB, { lastEventId: ready.id as string });
    expect((await elsewhere.next((e) => e.type === 'resync')).event).toEqual({ type: 'resync', reason: 'unknown-id' });
    // And it goes on from there.
    const p = await onA.projects.create.mutate({ name: 'After resync' });
    await elsewhere.next(isProject('created', p.id));
    elsewhere.unsubscribe();
  });
});

describe('the replay window', () => {
  it('answers a lastEventId older than the window with resync too-old', async () => {
    const windowDeps = db.deps({ config: { ...config, LIVE_REPLAY_EVENTS: '1' } });
    const small = await startTestServer(windowDeps);
    await windowDeps.services.live.whenUp();
    const user = await createUser(depsA);
    const client = await signedIn(small.url, user);
    const first = watchProjects(client);
    const ready = await first.next((e) => e.type === 'ready');
    first.unsubscribe();
    const [p1, p2] = [
      await client.projects.create.mutate({ name: 'Out of the window' }),
      await client.projects.create.mutate({ name: 'In it' }),
    ];
    const readySeq = Number(ready.id?.split(':').at(-1));
    await waitFor(() => windowDeps.services.live.seq >= readySeq + 2);

    const resumed = watchProjects(client, { lastEventId: ready.id as string });
    expect((await resumed.next((e) => e.type === 'resync')).event).toEqual({ type: 'resync', reason: 'too-old' });
    expect(resumed.events.some((r) => r.event.type === 'project' && [p1.id, p2.id].includes(r.event.projectId))).toBe(false);
    resumed.unsubscribe();
  });
});

describe('ownership', () => {
  it("refuses a stream of another user's project as NOT_FOUND", async () => {
    const owner = await createUser(depsA);
    const stranger = await createUser(depsA);
    const project = await (await signedIn(a.url, owner)).projects.create.mutate({ name: 'Private' });
    const stream = watchTasks(await signedIn(a.url, stranger), project.id);
    const error = await stream.ended();
    expect(isKeelError(error, 'NOT_FOUND')).toBe(true);
  });

  it("streams a project's task changes, and ends with PROJECT_GONE when the project is deleted", async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const onB = await signedIn(b.url, user);
    const project = await onA.projects.create.mutate({ name: 'With tasks' });
    const stream = watchTasks(onA, project.id);
    await stream.next((e) => e.type === 'ready');

    const task = await onB.tasks.create.mutate({ projectId: project.id, title: 'Write tests' });
    expect((await stream.next((e) => e.type === 'task')).event).toEqual({
      type: 'task',
      op: 'created',
      taskId: task.id,
      projectId: project.id,
      version: 1,
    });
    await onB.projects.delete.mutate({ id: project.id, version: 1 });
    const error = await stream.ended();
    expect(isKeelError(error, 'NOT_FOUND')).toBe(true);
    expect((error as { data?: { reason?: string } }).data?.reason).toBe('PROJECT_GONE');
  });

  it('ends the stream when the project is handed to another user', async () => {
    const user = await createUser(depsA);
    const heir = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const project = await onA.projects.create.mutate({ name: 'Handed away' });
    const tasks = watchTasks(onA, project.id);
    const projects = watchProjects(onA);
    await Promise.all([tasks.next((e) => e.type === 'ready'), projects.next((e) => e.type === 'ready')]);

    await depsB.database.prisma.project.update({ where: { id: project.id }, data: { ownerId: heir.id } });
    const error = await tasks.ended();
    expect((error as { data?: { reason?: string } }).data?.reason).toBe('PROJECT_GONE');
    expect((await projects.next(isProject('removed', project.id))).event).toMatchObject({ projectId: project.id });
    projects.unsubscribe();
  });
});

describe('limits and sessions', () => {
  it('refuses a stream beyond LIVE_MAX_STREAMS_PER_USER, and accepts one once a stream closed', async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const open = [watchProjects(onA), watchProjects(onA), watchProjects(onA)];
    await Promise.all(open.map((s) => s.next((e) => e.type === 'ready')));
    const refused = watchProjects(onA);
    const error = await refused.ended();
    expect(isKeelError(error, 'TOO_MANY_REQUESTS')).toBe(true);
    expect((error as { data?: { reason?: string } }).data?.reason).toBe('LIVE_STREAMS_PER_USER_LIMIT');
    // Another instance counts its own streams.
    const elsewhere = watchProjects(await signedIn(b.url, user));
    await elsewhere.next((e) => e.type === 'ready');
    elsewhere.unsubscribe();

    open[0]?.unsubscribe();
    await waitFor(() => depsA.services.live.streamsOf(user.id) < 3);
    const again = watchProjects(onA);
    await again.next((e) => e.type === 'ready');
    for (const s of [...open, again]) s.unsubscribe();
  });

  it('refuses a stream beyond LIVE_MAX_STREAMS on one instance, whoever asks', async () => {
    const smallDeps = db.deps({ config: { ...config, LIVE_MAX_STREAMS: '1' } });
    const small = await startTestServer(smallDeps);
    const first = watchProjects(await signedIn(small.url, await createUser(depsA)));
    await first.next((e) => e.type === 'ready');
    const second = watchProjects(await signedIn(small.url, await createUser(depsA)));
    const error = await second.ended();
    expect(isKeelError(error, 'TOO_MANY_REQUESTS')).toBe(true);
    expect((error as { data?: { reason?: string } }).data?.reason).toBe('LIVE_STREAMS_LIMIT');
    first.unsubscribe();
  });

  it('ends the streams of a session revoked on another instance, and the SDK reports the session over', async () => {
    const user = await createUser(depsA);
    let expired = 0;
    const onA = await signedIn(a.url, user, { onSessionExpired: () => expired++ });
    const stream = watchProjects(onA);
    await stream.next((e) => e.type === 'ready');
    await (await signedIn(b.url, user)).auth.logoutAll.mutate();
    const error = await stream.ended();
    expect(isKeelError(error, 'UNAUTHORIZED')).toBe(true);
    expect(expired).toBe(1);
  });
});

describe('the LISTEN connection', () => {
  it('tells open streams to resync when it comes back after being lost, then delivers again', async () => {
    const user = await createUser(depsA);
    const onA = await signedIn(a.url, user);
    const onB = await signedIn(b.url, user);
    const stream = watchProjects(onA);
    await stream.next((e) => e.type === 'ready');
    const hub = depsA.services.live;
    const pid = hub.backendPid;
    expect(pid).toBeTypeOf('number');

    const restored = new Promise<number>((resolve) => hub.once('up', resolve));
    await db.database.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await restored).not.toBe(pid);
    expect((await stream.next((e) => e.type === 'resync')).event).toEqual({ type: 'resync', reason: 'listener-restarted' });

    const p = await onB.projects.create.mutate({ name: 'After the outage' });
    await stream.next(isProject('created', p.id));
    stream.unsubscribe();
  });
});

/** Waits for a condition the server reaches after an event we cannot await directly (a stream's release). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('stream lifetime', () => {
  /** An instance whose clock the test moves past the access tokens' lifetime (and the 30 s tolerance). */
  const clock = movableClock();
  const lateDeps = db.deps({ config: { ...config, ACCESS_TOKEN_TTL_SECONDS: '60' }, now: clock.now });
  const idleDeps = db.deps({ config: { ...config, LIVE_IDLE_TIMEOUT_SECONDS: '1' } });

  it('ends a stream when its access token expires; the SDK refreshes and resumes without losing an event', async () => {
    const late = await startTestServer(lateDeps);
    const user = await createUser(lateDeps);
    let refreshed!: () => void;
    const refresh = new Promise<void>((resolve) => {
      refreshed = resolve;
    });
    const client = await signedIn(late.url, user, {
      refreshMarginSeconds: 0,
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (url.includes('auth.refresh') && response.ok) refreshed();
        return response;
      },
    });
    const stream = watchProjects(client);
    await stream.next((e) => e.type === 'ready');
    clock.advance(91);
    await refresh;
    const p = await client.projects.create.mutate({ name: 'After expiry' });
    await stream.next(isProject('created', p.id));
    expect(stream.events.filter((r) => r.event.type === 'ready' || r.event.type === 'resync')).toHaveLength(1);
    stream.unsubscribe();
  });

  /** Reads a raw SSE response until `pattern` shows up; returns the text read. */
  async function readUntil(url: string, token: string, pattern: RegExp): Promise<string> {
    const response = await fetch(`${url}/trpc/projects.onChange`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!pattern.test(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    return text;
  }

  it('sends a heartbeat on an open stream', async () => {
    const user = await createUser(depsA);
    const client = await signedIn(a.url, user);
    const token = (await client.getTokens())?.accessToken as string;
    const text = await readUntil(a.url, token, /event: ping/);
    expect(text).toMatch(/event: connected[\s\S]*"type":"ready"[\s\S]*event: ping/);
  });

  it('ends open streams with a retryable error when the server shuts down, without holding the shutdown', async () => {
    const closingDeps = db.deps({ config });
    const closing = await startTestServer(closingDeps);
    const user = await createUser(closingDeps);
    const client = await signedIn(closing.url, user);
    const token = (await client.getTokens())?.accessToken as string;
    const read = readUntil(closing.url, token, /event: serialized-error\ndata: .*\n/);
    await waitFor(() => closingDeps.services.live.streamsOf(user.id) === 1);
    await closing.close();
    const text = await read;
    expect(text).toMatch(/"code":"SERVICE_UNAVAILABLE"/);
    expect(text).toMatch(/"reason":"LIVE_RECONNECT"/);
  });

  it('closes an idle stream with a typed, retryable error', async () => {
    const idle = await startTestServer(idleDeps);
    const user = await createUser(idleDeps);
    const client = await signedIn(idle.url, user);
    const token = (await client.getTokens())?.accessToken as string;
    const text = await readUntil(idle.url, token, /event: serialized-error\ndata: .*\n/);
    expect(text).toMatch(/"code":"SERVICE_UNAVAILABLE"/);
    expect(text).toMatch(/"reason":"LIVE_IDLE"/);
  });
});
