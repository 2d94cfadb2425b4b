/**
 * The instance's end of live updates: one dedicated PostgreSQL connection (never the pool's, never
 * through a transaction pooler) that LISTENs on `keel_live`, where triggers announce every change
 * to a project, a task or a session in the writing transaction (prisma/migrations/*_live_notify).
 *
 * Each notification gets an event id of this instance (`<epoch>:<seq>`, rising in commit order),
 * is kept in a bounded replay window for clients that reconnect with `lastEventId`, and is handed
 * to every open stream, which filters what is its user's. When the connection is lost the window
 * is dropped (a new epoch: older ids get a `resync`), the connection is reopened with back-off,
 * and every open stream is told to resync once it is back, since notifications sent meanwhile are
 * lost. See docs/decisions/0022-live-updates.md.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { z } from 'zod';
import type { Config } from '../config.js';
import { guardClient } from '../db/connections.js';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../logger.js';

export const LIVE_CHANNEL = 'keel_live';

// Any 8-4-4-4-12 id PostgreSQL prints (the triggers send the rows' own ids).
const uuid = z.guid();
/** What the triggers send: ids and versions, nothing of the rows' content. */
export const noticeSchema = z.discriminatedUnion('k', [
  z.object({
    k: z.literal('p'),
    op: z.enum(['created', 'updated', 'archived', 'deleted']),
    id: uuid,
    v: z.number().int(),
    o: uuid,
    po: uuid.optional(),
  }),
  z.object({
    k: z.literal('t'),
    op: z.enum(['created', 'updated', 'deleted']),
    id: uuid,
    v: z.number().int(),
    p: uuid,
    pp: uuid.optional(),
  }),
  z.object({ k: z.literal('s'), id: uuid, u: uuid }),
]);
export type Notice = z.infer<typeof noticeSchema>;

export type ResyncReason = 'too-old' | 'unknown-id' | 'listener-restarted' | 'overflow';

/** What a stream receives: a notice with its sequence number, or the order to resync. */
export type Delivery = { seq: number; notice: Notice } | { resync: ResyncReason } | { closed: true };

interface Entry {
  seq: number;
  at: number;
  notice: Notice;
}

/** A stream's registration with the hub: a bounded queue of deliveries and a way to wait for one. */
export class LiveSubscription {
  #queue: Delivery[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(
    readonly user: { id: string; sessionId: string },
    private readonly maxQueue: number,
    private readonly release: (sub: LiveSubscription) => void,
  ) {}

  push(delivery: Delivery): void {
    if (this.#closed) return;
    if ('seq' in delivery && this.#queue.length >= this.maxQueue) {
      // A client that reads slower than changes arrive: drop what it missed and tell it to reload.
      this.#queue = [{ resync: 'overflow' }];
    } else {
      this.#queue.push(delivery);
    }
    this.#wake?.();
  }

  /** The next delivery, or undefined when `ms` passed or `signal` aborted first. */
  async take(ms: number, signal: AbortSignal | undefined): Promise<Delivery | undefined> {
    const ready = this.#queue.shift();
    if (ready) return ready;
    if (this.#closed || signal?.aborted) return { closed: true };
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
    if (signal?.aborted) return { closed: true };
    return this.#queue.shift();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.release(this);
    this.#wake?.();
  }

  get closed(): boolean {
    return this.#closed;
  }
}

export interface LiveHubOptions {
  /** Where to LISTEN: DIRECT_DATABASE_URL, or the database's own URL (undefined: not configured). */
  url: string | undefined;
  config: Config['live'];
  applicationName: string;
  connectTimeoutMs: number;
  logger: Logger;
  now?: () => number;
  /** First and longest wait between attempts to reopen the LISTEN connection. */
  backoff?: { initialMs: number; maxMs: number };
}

type State = 'idle' | 'connecting' | 'up' | 'down' | 'stopped';

/** Notifications kept waiting per stream before it is told to resync instead. */
const MAX_QUEUE = 10_000;

export class LiveHub extends EventEmitter<{ up: [pid: number]; down: [error: Error | undefined]; stopped: [] }> {
  readonly #options: LiveHubOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #instance = randomBytes(6).toString('base64url');
  #generation = 0;
  #seq = 0;
  #buffer: Entry[] = [];
  #bufferStart = 0;
  #client: pg.Client | undefined;
  #state: State = 'idle';
  /** A restart is owed to the streams once the connection is back (notifications were lost). */
  #owedResync = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #started: Promise<void> | undefined;
  #subs = new Set<LiveSubscription>();
  #perUser = new Map<string, number>();

  constructor(options: LiveHubOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    this.#now = options.now ?? Date.now;
  }

  get state(): State {
    return this.#state;
  }

  /** The LISTEN connection's server process id (tests end it to simulate a lost connection). */
  get backendPid(): number | undefined {
    return this.#state === 'up' ? (this.#client as unknown as { processID?: number } | undefined)?.processID : undefined;
  }

  get streamCount(): number {
    return this.#subs.size;
  }

  /** Open streams of one user on this instance. */
  streamsOf(userId: string): number {
    return this.#perUser.get(userId) ?? 0;
  }

  /**
   * Opens the LISTEN connection; resolves once it listens, or (having logged why) once the first
   * attempt failed: later attempts go on in the background. Idempotent.
   */
  start(): Promise<void> {
    this.#started ??= new Promise<void>((resolve) => {
      this.once('up', () => resolve());
      this.once('down', () => resolve());
      this.#connect();
    });
    return this.#started;
  }

  /** Resolves when the LISTEN connection is up (now or later), or when `signal` aborts. */
  whenUp(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'up' || this.#state === 'stopped' || signal?.aborted) return Promise.resolve();
    void this.start();
    return new Promise((resolve) => {
      const done = () => {
        this.off('up', done);
        this.off('stopped', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.on('up', done);
      this.on('stopped', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends every stream (their clients reconnect elsewhere) and closes the connection. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    clearTimeout(this.#retryTimer);
    clearInterval(this.#probeTimer);
    for (const sub of [...this.#subs]) sub.push({ closed: true });
    this.emit('stopped');
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  /** Registers a stream of `user`, or refuses it when a limit is reached. */
  open(user: { id: string; sessionId: string }): LiveSubscription {
    const { maxStreams, maxStreamsPerUser } = this.#options.config;
    if (this.#state === 'stopped') {
      throw new AppError('SERVICE_UNAVAILABLE', 'This server is shutting down. Reconnect.', {
        reason: 'LIVE_RECONNECT',
        retryAfterSeconds: 1,
      });
    }
    if (this.#subs.size >= maxStreams) {
      throw new AppError('TOO_MANY_REQUESTS', 'This server has no room for another live stream. Retry later.', {
        reason: 'LIVE_STREAMS_LIMIT',
        retryAfterSeconds: 5,
      });
    }
    const mine = this.#perUser.get(user.id) ?? 0;
    if (mine >= maxStreamsPerUser) {
      throw new AppError('TOO_MANY_REQUESTS', `You have ${mine} live streams open, the most allowed. Close one first.`, {
        reason: 'LIVE_STREAMS_PER_USER_LIMIT',
      });
    }
    void this.start();
    const sub = new LiveSubscription({ id: user.id, sessionId: user.sessionId }, MAX_QUEUE, (s) => this.#release(s));
    this.#subs.add(sub);
    this.#perUser.set(user.id, mine + 1);
    return sub;
  }

  #release(sub: LiveSubscription): void {
    if (!this.#subs.delete(sub)) return;
    const left = (this.#perUser.get(sub.user.id) ?? 1) - 1;
    if (left > 0) this.#perUser.set(sub.user.id, left);
    else this.#perUser.delete(sub.user.id);
  }

  /** The server's clock (ms), which tests may move. */
  now(): number {
    return this.#now();
  }

  /** The sequence number of the latest notification. */
  get seq(): number {
    return this.#seq;
  }

  idOf(seq: number): string {
    return this.#idOf(seq);
  }

  #idOf(seq: number): string {
    return `${this.#instance}.${this.#generation}:${seq}`;
  }

  /** What happened after `lastEventId` within the replay window, or why the client must resync. */
  since(lastEventId: string): { entries: readonly Entry[]; last: number } | { resync: ResyncReason } {
    const colon = lastEventId.lastIndexOf(':');
    const epoch = lastEventId.slice(0, colon);
    const seq = Number(lastEventId.slice(colon + 1));
    if (colon < 0 || epoch !== `${this.#instance}.${this.#generation}` || !Number.isSafeInteger(seq) || seq < 0 || seq > this.#seq) {
      return { resync: 'unknown-id' };
    }
    if (this.#state !== 'up') return { resync: 'listener-restarted' };
    this.#trim();
    const oldest = this.#buffer[this.#bufferStart]?.seq ?? this.#seq + 1;
    if (seq + 1 < oldest) return { resync: 'too-old' };
    const from = this.#bufferStart + Math.max(0, seq + 1 - oldest);
    return { entries: this.#buffer.slice(from), last: this.#seq };
  }

  #trim(): void {
    const { replayEvents, replayMs } = this.#options.config;
    const cutoff = this.#now() - replayMs;
    while (this.#bufferStart < this.#buffer.length) {
      const entry = this.#buffer[this.#bufferStart] as Entry;
      if (this.#buffer.length - this.#bufferStart <= replayEvents && entry.at >= cutoff) break;
      this.#bufferStart++;
    }
    // Compact once the dead head is as long as the live part (amortised O(1) per event).
    if (this.#bufferStart > 1024 && this.#bufferStart * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#bufferStart);
      this.#bufferStart = 0;
    }
  }

  #onNotification(payload: string | undefined): void {
    let notice: Notice;
    try {
      notice = noticeSchema.parse(JSON.parse(payload ?? ''));
    } catch {
      this.#log.warn({ payload: payload?.slice(0, 200) }, 'live: ignored a malformed notification');
      return;
    }
    const seq = ++this.#seq;
    this.#buffer.push({ seq, at: this.#now(), notice });
    this.#trim();
    for (const sub of this.#subs) sub.push({ seq, notice });
  }

  #connect(): void {
    if (this.#state === 'stopped') return;
    const url = this.#options.url;
    if (!url) {
      this.#log.error('live: no database URL to LISTEN on (set DATABASE_URL or DIRECT_DATABASE_URL)');
      this.emit('down', undefined);
      return;
    }
    this.#state = 'connecting';
    let lost = false;
    // The error listener (guardClient) is there from the start: an error before it would crash the process.
    const options: pg.ClientConfig = {
      connectionString: url,
      application_name: `${this.#options.applicationName}:live`.slice(0, 63),
      connectionTimeoutMillis: this.#options.connectTimeoutMs,
      keepAlive: true,
    };
    const client = guardClient(new pg.Client(options), (error) => onLost(error));
    this.#client = client;
    const onLost = (error: Error | undefined) => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      if (this.#client === client) this.#client = undefined;
      this.#lost(error);
    };
    client.on('end', () => onLost(undefined));
    client.on('notification', (message) => {
      if (message.channel === LIVE_CHANNEL) this.#onNotification(message.payload);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${LIVE_CHANNEL}`))
      .then(async () => {
        if (lost || this.#state === 'stopped') return;
        this.#state = 'up';
        this.#attempt = 0;
        const pid = (client as unknown as { processID: number }).processID;
        this.#log.info({ pid }, `live: listening on ${LIVE_CHANNEL} (dedicated connection, pid ${pid})`);
        this.#probe(client);
        if (this.#owedResync) {
          this.#owedResync = false;
          await this.#afterRestore(client);
        }
        this.emit('up', pid);
      })
      .catch((error: unknown) => onLost(error instanceof Error ? error : new Error(String(error))));
  }

  /** A dead peer sends nothing: a query on the connection now and then finds out. */
  #probe(client: pg.Client): void {
    clearInterval(this.#probeTimer);
    const every = Math.max(1_000, this.#options.config.heartbeatMs);
    this.#probeTimer = setInterval(() => {
      const timeout = setTimeout(
        () => client.emit('error', new Error('live: the LISTEN connection stopped answering')),
        this.#options.connectTimeoutMs,
      );
      client
        .query('SELECT 1')
        .catch(() => {})
        .finally(() => clearTimeout(timeout));
    }, every);
    this.#probeTimer.unref();
  }

  #lost(error: Error | undefined): void {
    clearInterval(this.#probeTimer);
    if (this.#state === 'stopped') return;
    const wasUp = this.#state === 'up';
    this.#state = 'down';
    // Notifications sent from now on are lost: the replay window no longer describes what happened.
    this.#generation++;
    this.#buffer = [];
    this.#bufferStart = 0;
    this.#owedResync = true;
    const delay = Math.min(
      this.#options.backoff?.maxMs ?? 5_000,
      (this.#options.backoff?.initialMs ?? 100) * 2 ** Math.min(this.#attempt, 10),
    );
    this.#attempt++;
    const log = wasUp ? this.#log.warn.bind(this.#log) : this.#log.error.bind(this.#log);
    log(
      { err: error, retryInMs: delay },
      `live: the LISTEN connection is down (${error?.message ?? 'closed'}); reconnecting in ${delay} ms`,
    );
    this.emit('down', error);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#retryTimer.unref();
  }

  /**
   * Back after an outage: every stream reloads, and streams of sessions revoked meanwhile (whose
   * notification was lost) end now.
   */
  async #afterRestore(client: pg.Client): Promise<void> {
    const sessions = [...new Set([...this.#subs].map((s) => s.user.sessionId))];
    const ended: Notice[] = [];
    if (sessions.length > 0) {
      try {
        const { rows } = await client.query<{ id: string }>(
          'SELECT q.id FROM unnest($1::uuid[]) AS q(id) LEFT JOIN sessions s ON s.id = q.id WHERE s.id IS NULL OR s.revoked_at IS NOT NULL',
          [sessions],
        );
        const gone = new Set(rows.map((r) => r.id));
        for (const sub of this.#subs) {
          if (gone.has(sub.user.sessionId)) ended.push({ k: 's', id: sub.user.sessionId, u: sub.user.id });
        }
      } catch (error) {
        this.#log.warn({ err: error }, 'live: could not re-check the sessions of open streams after reconnecting');
      }
    }
    for (const sub of this.#subs) sub.push({ resync: 'listener-restarted' });
    for (const notice of ended) this.#onNotification(JSON.stringify(notice));
    this.#log.info({ streams: this.#subs.size, sessionsEnded: ended.length }, 'live: LISTEN restored; open streams told to resync');
  }
}
