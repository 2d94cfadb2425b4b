/**
 * Lines that repeat by the thousand under a flood (a refusal per request) are written once per key
 * and window: the first in full, the rest counted and written as one line when the window ends.
 * An operator still sees who was refused, how often and until when; a flood no longer writes one
 * line per request (a log pipeline to fill, and most of what a refusal cost to make).
 */

/** Writes the line for `repeated` occurrences after the first, from `first` to `last` (epoch ms). */
export type RepeatSink = (repeated: number, window: { first: number; last: number }) => void;

interface Window {
  opened: number;
  last: number;
  repeated: number;
  /** Writes the summary: kept from the latest occurrence, so it goes where that one's line would have. */
  sink: RepeatSink;
}

export interface RepeatsOptions {
  windowMs: number;
  /** Keys tracked at once; the oldest is summarized and dropped first. */
  maxKeys?: number;
  /** Epoch ms. */
  now?: () => number;
}

export class Repeats {
  readonly #windows = new Map<string, Window>();
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(options: RepeatsOptions) {
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * One occurrence of `key`: true when its line should be written now (the first of a window),
   * false when it was counted instead. `sink` writes the window's summary when it ends.
   */
  occur(key: string, sink: RepeatSink): boolean {
    const now = this.#now();
    const open = this.#windows.get(key);
    if (open && now - open.opened < this.#windowMs) {
      open.repeated += 1;
      open.last = now;
      open.sink = sink;
      return false;
    }
    if (open) this.#close(key, open);
    if (this.#windows.size >= this.#maxKeys) {
      const [oldestKey, oldest] = this.#windows.entries().next().value as [string, Window];
      this.#close(oldestKey, oldest);
    }
    this.#windows.set(key, { opened: now, last: now, repeated: 0, sink });
    return true;
  }

  /** Summarizes and forgets the windows that have ended (all of them with `all`, e.g. at shutdown). */
  flush(all = false): void {
    const now = this.#now();
    for (const [key, window] of this.#windows) {
      if (all || now - window.opened >= this.#windowMs) this.#close(key, window);
    }
  }

  /** Keys with an open window. */
  get size(): number {
    return this.#windows.size;
  }

  #close(key: string, window: Window): void {
    this.#windows.delete(key);
    if (window.repeated > 0) window.sink(window.repeated, { first: window.opened, last: window.last });
  }
}

/** Where repeated lines go: the two levels refusals are logged at. */
export interface RepeatedLineSink {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Log lines under that rule: `write` logs the first of a key's window in full and counts the rest;
 * the count goes out as one `<message> (repeated)` line with `repeated`, `since` and `until` when
 * the window ends, closed by the next occurrence or by a sweeper that runs only while windows are
 * open (unref'd: it never keeps a process alive). `flush` writes every open summary now (a stop).
 */
export class RepeatedLines {
  readonly #repeats: Repeats;
  readonly #windowMs: number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
    this.#repeats = new Repeats({ windowMs });
  }

  write(log: RepeatedLineSink, level: 'info' | 'warn', key: string, fields: Record<string, unknown>, message: string): void {
    const first = this.#repeats.occur(key, (repeated, window) =>
      log[level](
        { ...fields, repeated, since: new Date(window.first).toISOString(), until: new Date(window.last).toISOString() },
        `${message} (repeated)`,
      ),
    );
    if (first) log[level](fields, message);
    else this.#sweepLater();
  }

  flush(): void {
    this.#repeats.flush(true);
  }

  #sweepLater(): void {
    this.#sweeper ??= setInterval(() => {
      this.#repeats.flush();
      if (this.#repeats.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, this.#windowMs).unref();
  }
}
