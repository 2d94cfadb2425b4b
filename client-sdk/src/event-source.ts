/**
 * An EventSource over `fetch`, so that a stream's request carries headers: the access token goes
 * in `Authorization`, never in the URL (browsers' EventSource can send no header). It follows the
 * WHATWG model tRPC's httpSubscriptionLink relies on: `readyState`, `open`/`error`/named events,
 * reconnection after a dropped connection with `Last-Event-ID`, and a failed (non-200) answer
 * closing the source. The headers are read again for each connection: a reconnect sends the
 * access token of that moment.
 */
import type { FetchLike } from './client.js';

type Listener = (event: KeelSourceEvent) => void;

/** The events this source dispatches (message events carry `data` and `lastEventId`). */
export interface KeelSourceEvent {
  type: string;
  data?: string;
  lastEventId?: string;
  /** On `error` after a refused connection: the HTTP status. */
  status?: number;
}

export interface FetchEventSourceOptions {
  fetch: FetchLike;
  headers: () => Promise<Record<string, string>>;
  credentials?: RequestCredentials | undefined;
  /** Wait before reconnecting a dropped stream (the server may change it with `retry:`). */
  retryMs?: number | undefined;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/** A class tRPC's link can construct (`new EventSource(url, init)`), bound to these options. */
export function fetchEventSource(options: FetchEventSourceOptions) {
  return class KeelEventSource {
    static readonly CONNECTING = CONNECTING;
    static readonly OPEN = OPEN;
    static readonly CLOSED = CLOSED;
    readonly CONNECTING = CONNECTING;
    readonly OPEN = OPEN;
    readonly CLOSED = CLOSED;
    readyState: number = CONNECTING;
    readonly url: string;
    readonly withCredentials: boolean;
    #listeners = new Map<string, Set<Listener>>();
    #abort = new AbortController();
    #lastEventId = '';
    #retryMs = options.retryMs ?? 1_000;

    constructor(url: string, init?: { withCredentials?: boolean }) {
      this.url = url;
      this.withCredentials = init?.withCredentials ?? options.credentials === 'include';
      void this.#run();
    }

    addEventListener(type: string, listener: Listener): void {
      const set = this.#listeners.get(type) ?? new Set();
      this.#listeners.set(type, set);
      set.add(listener);
    }

    removeEventListener(type: string, listener: Listener): void {
      this.#listeners.get(type)?.delete(listener);
    }

    close(): void {
      this.readyState = CLOSED;
      this.#abort.abort();
    }

    #dispatch(event: KeelSourceEvent): void {
      for (const listener of [...(this.#listeners.get(event.type) ?? [])]) listener(event);
    }

    async #run(): Promise<void> {
      const signal = this.#abort.signal;
      while (this.readyState !== CLOSED) {
        let response: Response;
        try {
          const headers: Record<string, string> = { accept: 'text/event-stream', ...(await options.headers()) };
          if (this.#lastEventId) headers['last-event-id'] = this.#lastEventId;
          response = await options.fetch(this.url, {
            headers,
            signal,
            cache: 'no-store',
            ...(options.credentials ? { credentials: options.credentials } : {}),
          });
        } catch {
          if (!(await this.#retry())) return;
          continue;
        }
        const type = response.headers.get('content-type') ?? '';
        if (response.status !== 200 || !type.toLowerCase().startsWith('text/event-stream') || !response.body) {
          await response.body?.cancel().catch(() => {});
          if (this.readyState === CLOSED) return;
          this.readyState = CLOSED;
          this.#dispatch({ type: 'error', status: response.status });
          return;
        }
        this.readyState = OPEN;
        this.#dispatch({ type: 'open' });
        try {
          await this.#read(response.body);
        } catch {
          // A dropped connection: reconnect below.
        }
        if (!(await this.#retry())) return;
      }
    }

    /** Back to CONNECTING after a wait; false when closed meanwhile. */
    async #retry(): Promise<boolean> {
      if (this.readyState === CLOSED) return false;
      this.readyState = CONNECTING;
      this.#dispatch({ type: 'error' });
      if (this.readyState === CLOSED) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#retryMs);
        this.#abort.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      return this.readyState !== CLOSED;
    }

    /** Parses text/event-stream (the WHATWG algorithm) and dispatches each event. */
    async #read(body: ReadableStream<Uint8Array>): Promise<void> {
      const reader = body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let data: string[] = [];
      let eventType = '';
      const onLine = (line: string) => {
        if (line === '') {
          if (data.length > 0) {
            this.#dispatch({ type: eventType || 'message', data: data.join('\n'), lastEventId: this.#lastEventId });
          }
          data = [];
          eventType = '';
          return;
        }
        if (line.startsWith(':')) return;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'event') eventType = value;
        else if (field === 'id' && !value.includes('\0')) this.#lastEventId = value;
        else if (field === 'retry' && /^\d+$/.test(value)) this.#retryMs = Number(value);
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (this.readyState === CLOSED) {
          await reader.cancel().catch(() => {});
          return;
        }
        buffer += decoder.decode(value, { stream: true });
        let start = 0;
        for (let i = 0; i < buffer.length; i++) {
          const c = buffer[i];
          if (c !== '\n' && c !== '\r') continue;
          // A CR at the very end may be half of a CRLF: wait for the next chunk.
          if (c === '\r' && i === buffer.length - 1) break;
          onLine(buffer.slice(start, i));
          if (c === '\r' && buffer[i + 1] === '\n') i++;
          start = i + 1;
        }
        buffer = buffer.slice(start);
      }
    }
  };
}
