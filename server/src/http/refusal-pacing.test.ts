import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRefusalPacer, type HeldAnswer, retryAfterOf } from './refusal-pacing.js';

/** Whether a promise has settled, after the microtasks already queued ran. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('refusal pacing', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds a refusal between half and all of the delay, spread by the random draw', async () => {
    let draw = 0;
    const pacer = createRefusalPacer({ delayMs: 1_000, maxHeld: 10, random: () => draw });
    const soonest = (pacer.hold(5) as HeldAnswer).released;
    draw = 0.999_999;
    const latest = (pacer.hold(5) as HeldAnswer).released;
    expect(pacer.held).toBe(2);

    vi.advanceTimersByTime(499);
    expect(await settled(soonest)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(soonest)).toBe(true);
    expect(await settled(latest)).toBe(false);
    vi.advanceTimersByTime(500);
    expect(await settled(latest)).toBe(true);
    expect(pacer.held).toBe(0);
  });

  it('never holds past the answer’s own Retry-After', async () => {
    const pacer = createRefusalPacer({ delayMs: 10_000, maxHeld: 10, random: () => 0.999_999 });
    const held = (pacer.hold(1) as HeldAnswer).released;
    vi.advanceTimersByTime(1_000);
    expect(await settled(held)).toBe(true);
    // Retry-After: 0 asks for an immediate retry: nothing to hold.
    expect(pacer.hold(0)).toBeUndefined();
  });

  it('answers at once when off, and when `maxHeld` answers are already held', () => {
    expect(createRefusalPacer({ delayMs: 0, maxHeld: 10 }).hold(5)).toBeUndefined();
    const pacer = createRefusalPacer({ delayMs: 1_000, maxHeld: 2 });
    expect(pacer.hold(5)?.released).toBeInstanceOf(Promise);
    expect(pacer.hold(undefined)?.released).toBeInstanceOf(Promise);
    expect(pacer.hold(5)).toBeUndefined();
    expect(pacer.held).toBe(2);
  });

  it('sends every held answer on releaseAll, and holds none after it', async () => {
    const pacer = createRefusalPacer({ delayMs: 60_000, maxHeld: 10 });
    const held = [pacer.hold(60), pacer.hold(60)].map((h) => (h as HeldAnswer).released);
    pacer.releaseAll();
    for (const answer of held) expect(await settled(answer)).toBe(true);
    expect(pacer.held).toBe(0);
    expect(pacer.hold(60)).toBeUndefined();
  });

  it('frees the place of a cancelled hold at once (its client left), and sends it then', async () => {
    const pacer = createRefusalPacer({ delayMs: 60_000, maxHeld: 1 });
    const held = pacer.hold(60) as HeldAnswer;
    expect(pacer.hold(60)).toBeUndefined(); // full
    held.cancel();
    expect(await settled(held.released)).toBe(true);
    expect(pacer.held).toBe(0);
    expect(pacer.hold(60)).toBeDefined(); // the place is free again
  });

  it('reads Retry-After headers as whole seconds, and nothing else', () => {
    expect(retryAfterOf('3')).toBe(3);
    expect(retryAfterOf(['7'])).toBe(7);
    expect(retryAfterOf(undefined)).toBeUndefined();
    expect(retryAfterOf('Wed, 21 Oct 2026 07:28:00 GMT')).toBeUndefined();
    expect(retryAfterOf('-1')).toBeUndefined();
  });
});
