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
