/** A clock for the server under test that tests move forward instead of sleeping. */
export interface MovableClock {
  /** Now, moved by everything `advance` added so far. */
  now: () => Date;
  advance(seconds: number): void;
}

export function movableClock(): MovableClock {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance(seconds) {
      offsetMs += seconds * 1000;
    },
  };
}
