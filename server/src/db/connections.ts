/**
 * pg connections that survive their server going away. pg emits `error` on a client whose
 * connection dies (the server ended it, the host went away), whether the client is idle in the
 * pool, checked out, or in the instant between the two; an `error` event with no listener is an
 * uncaught exception that ends the process. pg-pool listens only while a client is idle, and
 * @prisma/adapter-pg attaches its listener to a transaction's client one `await` after checking it
 * out: a connection terminated in that instant killed the server. Here every client listens from
 * its construction to its end, and pg's code-less failures become `DatabaseConnectionError`s so
 * they can be classified by class (db/faults.ts).
 */
import pg from 'pg';
import type { QueryHook } from '../observability/hooks.js';
import { type ConnectionFailure, DatabaseConnectionError } from './faults.js';

/** Gives a dedicated client (not from a pool) the listener it needs: its failure reaches the pending query, never the process. */
export function guardClient<T extends pg.ClientBase>(client: T, onError: (error: Error) => void = () => {}): T {
  client.on('error', onError);
  return client;
}

const hasCode = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string';

type Callback = (error: Error | null, result?: unknown) => void;
type AnyQuery = (this: pg.Client, ...args: unknown[]) => unknown;
const baseQuery = pg.Client.prototype.query as unknown as AnyQuery;

export interface PooledClientOptions {
  /**
   * How long a query may go without a reply before its connection is closed (0: no limit). Longer
   * than the statement timeout: PostgreSQL cancels slow statements itself; this is for a server
   * that vanished mid-query (a black hole), whose connection would otherwise stay in the pool
   * and stall every query sent on it.
   */
  readTimeoutMs: number;
  /** Called once per connection that fails after it was established. */
  onLost(error: Error): void;
  /** Spans and slow-statement logs (observability/queries.ts); undefined when off. */
  observeQuery?: QueryHook | undefined;
}

/** The pg Client class for Keel's pool: always listened to, code-less failures classified, silent servers cut off. */
export function pooledClientClass(options: PooledClientOptions): typeof pg.Client {
  class PooledClient extends pg.Client {
    lost = false;
    /** Set when Keel closed the connection itself because a reply never came. */
    silent = false;

    constructor(config?: string | pg.ClientConfig) {
      super(config);
      this.on('error', (error: Error) => {
        if (this.lost) return; // pg reports one death twice: the server's message, then the closed socket
        this.lost = true;
        options.onLost(error);
      });
    }

    /**
     * pg-pool's `query()` answers with the error the client emits when its connection dies, ahead
     * of the query's own callback: that error is named here, so it is classified like the rest.
     */
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      const [error] = args;
      if (event === 'error' && error instanceof Error && !hasCode(error) && !(error instanceof DatabaseConnectionError)) {
        return super.emit(event, new DatabaseConnectionError(this.silent ? 'no-reply' : 'lost', { cause: error }));
      }
      return super.emit(event, ...args);
    }

    /** A failed query's error, with pg's code-less connection failures named (the client's own state tells which). */
    explain(error: Error, noReply: boolean): Error {
      if (noReply) return new DatabaseConnectionError('no-reply', { cause: error });
      // A SQLSTATE or socket code classifies it; on a live connection it is a bug (bad values, ...).
      if (hasCode(error) || error instanceof DatabaseConnectionError || !this.lost) return error;
      return new DatabaseConnectionError('lost', { cause: error });
    }
  }

  // Wraps every query's callback (or promise). Typed as a plain function: pg's query() has a dozen overloads.
  const query: AnyQuery = function (this: pg.Client, ...args: unknown[]) {
    const client = this as PooledClient;
    const first = args[0];
    // A Submittable (cursor, stream) manages its own events; neither Keel nor adapter-pg uses one.
    if (typeof first === 'object' && first !== null && typeof (first as { submit?: unknown }).submit === 'function') {
      return baseQuery.apply(this, args);
    }
    const last = args.at(-1);
    let promise: Promise<unknown> | undefined;
    let done: Callback;
    if (typeof last === 'function') {
      done = last as Callback;
      args.pop();
    } else {
      let settle: Callback = () => {};
      promise = new Promise((resolve, reject) => {
        settle = (error, result) => (error ? reject(error) : resolve(result));
      });
      done = settle;
    }
    let noReply = false;
    const finish = options.observeQuery?.(typeof first === 'string' ? first : String((first as { text?: unknown } | null)?.text ?? ''));
    const timer =
      options.readTimeoutMs > 0
        ? setTimeout(() => {
            noReply = true;
            client.silent = true;
            // Closing the socket fails this query and everything queued behind it, and marks the
            // client unusable, so the pool drops it instead of handing it out again.
            client.connection.stream.destroy();
          }, options.readTimeoutMs)
        : undefined;
    baseQuery.call(this, ...args, (error: Error | null, result: unknown) => {
      clearTimeout(timer);
      finish?.(error);
      done(error ? client.explain(error, noReply) : null, result);
    });
    return promise;
  };
  Object.defineProperty(PooledClient.prototype, 'query', { value: query, writable: true, configurable: true });
  return PooledClient;
}

type ConnectCallback = (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

/**
 * The pool Keel hands to Prisma and its own queries: failures to get a connection that pg reports
 * without a code become `DatabaseConnectionError`s ("connect": no new connection could be opened;
 * "pool-timeout": every connection stayed busy for the whole connect timeout).
 */
export class KeelPool extends pg.Pool {
  constructor(
    config: pg.PoolConfig,
    private readonly onConnectFailed: (error: Error, failure: ConnectionFailure | undefined) => void = () => {},
  ) {
    super(config);
  }

  private explain(error: Error): Error {
    if (hasCode(error)) {
      this.onConnectFailed(error, undefined);
      return error;
    }
    // Still full when the wait ended: the wait was for a busy connection, not for a new one that failed.
    const failure: ConnectionFailure = this.totalCount >= (this.options.max ?? 10) ? 'pool-timeout' : 'connect';
    const named = new DatabaseConnectionError(failure, { cause: error });
    this.onConnectFailed(named, failure);
    return named;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    if (!callback) {
      return super.connect().catch((error: Error) => {
        throw this.explain(error);
      });
    }
    super.connect((error, client, done) => callback(error ? this.explain(error) : error, client, done));
    return undefined;
  }
}
